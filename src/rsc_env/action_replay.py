"""Many fixed action sequences through one env's trading rules, in one compiled call.

A benchmark of random policies walks the same window 100 times; through
:class:`rsc_env.TradingEnv` that is ~14 us of Python per step (and ~0.5 s per window).
:func:`replay_actions` runs the env's trading rules -- stop-loss/take-profit, the position
target of each action, sizing, fees, failed short covers, marking to market -- on all the
sequences at once with numba, and returns what the figures of an episode need (the equity
curve, positions, completed trades, traded value). Rewards and observations are not computed
(no policy here looks at them). ``tests/env/test_action_replay.py`` holds it equal to stepping
the env, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit


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
    p = env.params
    actions = np.ascontiguousarray(actions, dtype=np.int64)
    if actions.ndim != 2 or actions.shape[1] != env.episode_length:
        raise ValueError(f"actions must be [n, {env.episode_length}] (one per step of the "
                         f"episode), got shape {actions.shape}")
    if actions.size and (actions.min() < 0 or actions.max() > 2):
        raise ValueError("actions must be 0 (flat), 1 (long) or 2 (short)")
    values, positions, trades, traded = _replay(
        np.asarray(env.market.close, dtype=np.float64), actions, float(p.initial_balance),
        float(p.transaction_fee_percent), p.position_sizing_method == "all_in",
        float(p.risk_fraction), -1.0 if p.stop_loss_pct is None else p.stop_loss_pct / 100.0,
        -1.0 if p.take_profit_pct is None else p.take_profit_pct / 100.0)
    return ReplayedRuns(values, positions, trades, traded)


@njit(cache=True)
def _size(balance, price, all_in, fee_rate, risk_fraction):
    if all_in:
        return int(balance / (price * (1.0 + fee_rate)))
    return int(balance * risk_fraction / price)


@njit(cache=True)
def _replay(close, actions, initial, pct, all_in, risk_fraction, sl, tp):
    """The env's ``step`` (``_execute``, ``_open``, ``_close``) with the same float operations
    in the same order; ``sl``/``tp`` < 0: off."""
    n, steps = actions.shape
    fee_rate = pct / 100
    values = np.empty((n, steps + 1))
    positions = np.zeros((n, steps), dtype=np.int8)
    trades = np.zeros(n, dtype=np.int64)
    traded = np.zeros(n)
    for i in range(n):
        balance, shares_held, position, entry = initial, 0, 0, 0.0
        values[i, 0] = initial
        for s in range(steps):
            price = close[s + 1]
            action = actions[i, s]
            if position != 0 and entry > 0:
                if position == 1:
                    sl_hit = sl >= 0 and price <= entry * (1 - sl)
                    tp_hit = not sl_hit and tp >= 0 and price >= entry * (1 + tp)
                else:
                    sl_hit = sl >= 0 and price >= entry * (1 + sl)
                    tp_hit = not sl_hit and tp >= 0 and price <= entry * (1 - tp)
                if sl_hit or tp_hit:
                    action = 0
            target = 0 if action == 0 else (1 if action == 1 else -1)
            if target != position:
                reopen = True
                if position != 0:  # close first (a failed short cover keeps the position)
                    qty = abs(shares_held)
                    value = qty * price
                    fee = value * pct / 100
                    if position == 1:
                        balance += value - fee
                    elif balance < value + fee:
                        reopen = False
                    else:
                        balance -= value + fee
                    if reopen:
                        traded[i] += qty * price
                        trades[i] += 1
                        shares_held, position, entry = 0, 0, 0.0
                if reopen and target != 0:
                    shares = _size(balance, price, all_in, fee_rate, risk_fraction)
                    if target == 1:
                        shares = min(shares, int(balance / (price * (1.0 + fee_rate))))
                    if not (shares <= 0 or (target == -1 and balance <= 0)):
                        value = shares * price
                        fee = value * pct / 100
                        if target == 1:
                            balance -= value + fee
                            shares_held += shares
                        else:
                            balance += value - fee
                            shares_held = -shares
                        position, entry = target, price
                        traded[i] += shares * price
            values[i, s + 1] = balance + shares_held * price
            positions[i, s] = position
    return values, positions, trades, traded
