"""Keyed exploration: each epsilon-greedy draw is a pure function of its key."""

from __future__ import annotations

from collections.abc import Sequence

from rsc_policy.agent.network import N_ACTIONS

_MASK64 = (1 << 64) - 1
_TWO_M53 = 2.0**-53


def _splitmix64(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def exploration_draw(seed: int, runner_index: int, t: int, env_index: int = 0,
                     n_actions: int = N_ACTIONS) -> tuple[float, int]:
    """``(u, random_action)`` for one selection, a pure function of its key.

    ``u`` is uniform in [0, 1) (53 bits) and decides "explore if ``u < epsilon``";
    ``random_action`` is uniform over ``n_actions`` (modulo bias < 1e-18). splitmix64 is a
    counter-based hash with good avalanche; about 2 µs per call, no generator object.
    """
    h = _splitmix64(_splitmix64(_splitmix64(_splitmix64(seed & _MASK64) ^ runner_index) ^ t)
                    ^ env_index)
    return (h >> 11) * _TWO_M53, _splitmix64(h) % n_actions


def epsilon_greedy(greedy: Sequence[int], epsilon: float, seed: int, runner_index: int,
                   t: int, n_actions: int = N_ACTIONS) -> list[int]:
    """Epsilon-greedy for a batch of rows, row ``j`` keyed on ``(seed, runner_index, t, j)``.

    ``greedy`` holds each row's greedy action.
    """
    out = []
    for j, g in enumerate(greedy):
        u, a = exploration_draw(seed, runner_index, t, j, n_actions)
        out.append(a if u < epsilon else int(g))
    return out
