"""Keyed exploration: each epsilon-greedy draw is a pure function of its key."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

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


_U64 = np.uint64


def _splitmix64_array(z: np.ndarray) -> np.ndarray:
    """:func:`_splitmix64` over a ``uint64`` array (numpy wraps modulo 2**64, as the mask does)."""
    z = z + _U64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


def exploration_draws(seed: int, runner_index: int, t: int, n: int, n_actions: int = N_ACTIONS
                      ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`exploration_draw` for env indices ``0 .. n-1`` at once (bit-identical).

    The first three hash levels are one scalar key; the last level runs over the batch.
    """
    base = _splitmix64(_splitmix64(_splitmix64(seed & _MASK64) ^ runner_index) ^ (t & _MASK64))
    h = _splitmix64_array(np.arange(n, dtype=np.uint64) ^ _U64(base))
    u = (h >> _U64(11)).astype(np.float64) * _TWO_M53
    return u, (_splitmix64_array(h) % _U64(n_actions)).astype(np.int64)


def epsilon_greedy(greedy: Sequence[int] | np.ndarray, epsilon: float, seed: int,
                   runner_index: int, t: int, n_actions: int = N_ACTIONS) -> np.ndarray:
    """Epsilon-greedy for a batch of rows, row ``j`` keyed on ``(seed, runner_index, t, j)``.

    ``greedy`` holds each row's greedy action; returns the chosen actions (``int64``).
    """
    greedy = np.asarray(greedy, dtype=np.int64)
    u, random_actions = exploration_draws(seed, runner_index, t, len(greedy), n_actions)
    return np.where(u < epsilon, random_actions, greedy)


def seed_keys(seeds: Sequence[int]) -> np.ndarray:
    """Seeds as the ``uint64`` keys :func:`exploration_draw` hashes (``seed mod 2**64``)."""
    return np.array([int(s) & _MASK64 for s in seeds], dtype=np.uint64)


@njit(cache=True)
def _mix(z):
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def keyed_action(greedy, epsilon, seed, runner_index, t, env_index, n_actions):
    """One selection: :func:`exploration_draw` keyed on ``(seed, runner_index, t,
    env_index)`` (bit-identical), the random action if ``u < epsilon``, else ``greedy``."""
    h = _mix(_mix(_mix(_mix(np.uint64(seed)) ^ np.uint64(runner_index)) ^ np.uint64(t))
             ^ np.uint64(env_index))
    u = np.float64(h >> np.uint64(11)) * _TWO_M53
    return np.int64(_mix(h) % np.uint64(n_actions)) if u < epsilon else np.int64(greedy)


@njit(cache=True)
def keyed_epsilon_greedy(greedy, epsilon, seed, runner_index, t, env_index, n_actions):
    """Row ``i``: :func:`keyed_action` keyed on ``(seed[i], runner_index[i], t[i],
    env_index[i])``. One compiled call for a whole population's vector step."""
    out = np.empty(greedy.shape[0], dtype=np.int64)
    for i in range(greedy.shape[0]):
        out[i] = keyed_action(greedy[i], epsilon[i], seed[i], runner_index[i], t[i],
                              env_index[i], n_actions)
    return out
