"""Many fixed action sequences through one env's trading rules, in one compiled call.

A benchmark of random policies walks the same window 100 times; through
:class:`rsc_env.TradingEnv` that is ~14 us of Python per step (and ~0.5 s per window).
:func:`replay_actions` runs the env's rules in their compiled form
(:func:`rsc_env.compiled.env_step`) on all the sequences in one call and returns what the
figures of an episode need (the equity curve, positions, completed trades, traded value).
``tests/env/test_action_replay.py`` holds it equal to stepping the env, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from rsc_env.compiled import (
    P_WINDOW,
    S_CLOSED,
    S_POSITION,
    S_PV,
    S_TRADED,
    STATE_SIZE,
    env_param_vector,
    env_reset,
    env_step,
)


@dataclass(frozen=True)
class ReplayedRuns:
    """``n`` replayed episodes of ``T`` steps: ``values`` ``[n, T + 1]`` (the starting balance,
    then the portfolio value after each step), ``positions`` ``[n, T]`` (-1/0/1 after each
    step), ``trades`` ``[n]`` (completed round trips), ``traded_value`` ``[n]`` (sum of
    |shares| x price over every entry and exit)."""

    values: np.ndarray
    positions: np.ndarray
    trades: np.ndarray
    traded_value: np.ndarray


def replay_actions(env: Any, actions: np.ndarray) -> ReplayedRuns:
    """Run each row of ``actions`` (``[n, T]``, 0 flat / 1 long / 2 short, ``T`` = the env's
    episode length) through ``env``'s trading rules from its reset state."""
    env = env.unwrapped
    actions = np.ascontiguousarray(actions, dtype=np.int64)
    if actions.ndim != 2 or actions.shape[1] != env.episode_length:
        raise ValueError(f"actions must be [n, {env.episode_length}] (one per step of the "
                         f"episode), got shape {actions.shape}")
    if actions.size and (actions.min() < 0 or actions.max() > 2):
        raise ValueError("actions must be 0 (flat), 1 (long) or 2 (short)")
    market = env.market
    values, positions, trades, traded = _replay(
        market.observations, np.asarray(market.close, dtype=np.float64), actions,
        env_param_vector(env))
    return ReplayedRuns(values, positions, trades, traded)


@njit(cache=True)
def _replay(observations, close, actions, prm):
    """:func:`rsc_env.compiled.env_step` over each row of ``actions`` from the reset state."""
    n, steps = actions.shape
    values = np.empty((n, steps + 1))
    positions = np.zeros((n, steps), dtype=np.int8)
    trades = np.zeros(n, dtype=np.int64)
    traded = np.zeros(n)
    state = np.zeros(STATE_SIZE)
    window = np.zeros(int(prm[P_WINDOW]))  # the rolling-Sharpe ring and fsum's scratch
    partials = np.zeros(int(prm[P_WINDOW]))
    obs = np.empty(observations.shape[1], dtype=np.float32)
    for i in range(n):
        env_reset(state, prm, observations, close, obs)
        values[i, 0] = state[S_PV]
        for s in range(steps):
            env_step(state, prm, observations, close, actions[i, s], window, partials, obs)
            values[i, s + 1] = state[S_PV]
            positions[i, s] = state[S_POSITION]
        trades[i] = int(state[S_CLOSED])
        traded[i] = state[S_TRADED]
    return values, positions, trades, traded
