"""The TradingEnv rules as compiled functions over plain arrays, for compiled training loops.

:class:`rsc_env.TradingEnv` runs its rules on Python scalars (~5 us a step); a population
trained in one compiled loop per member (``rsc_policy.agent.compiled_loop``) needs the same
rules inside numba. :func:`env_reset` / :func:`env_step` are ``TradingEnv.reset`` /
``TradingEnv.step`` with the same float operations in the same order, on a state vector
(:data:`STATE_SIZE` float64) and a parameter vector (:func:`env_param_vector`): the
observation, reward and done flag only (no info dict, trades list or episode log).
``tests/env/test_compiled_env.py`` holds them equal to the env, bit for bit, over every
option. The rolling-Sharpe reward's correctly rounded sums are CPython's ``math.fsum``
(:func:`fsum`, ported).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

# state vector layout (S_CLOSED: completed round trips, S_TRADED: sum of |shares| x price of
# every entry and exit -- what an episode's figures need besides the equity curve)
(S_T, S_BALANCE, S_SHARES, S_POSITION, S_ENTRY, S_TRADES, S_PV, S_MAX_PV, S_WN, S_WHEAD,
 S_CLOSED, S_TRADED) = range(12)
STATE_SIZE = 12
# parameter vector layout
(P_IB, P_PCT, P_FEE_RATE, P_ALL_IN, P_RISK, P_SL, P_TP, P_USE_SHARPE, P_RF, P_FREQ, P_DD,
 P_PER_TRADE, P_OBS_POS, P_WINDOW) = range(14)
PARAM_SIZE = 14


def env_param_vector(env: Any) -> np.ndarray:
    """The parameters of a :class:`rsc_env.TradingEnv` as the vector :func:`env_step` reads
    (``sl``/``tp`` < 0: off)."""
    p = env.unwrapped.params
    v = np.zeros(PARAM_SIZE)
    v[P_IB] = p.initial_balance
    v[P_PCT] = p.transaction_fee_percent
    v[P_FEE_RATE] = p.transaction_fee_percent / 100
    v[P_ALL_IN] = p.position_sizing_method == "all_in"
    v[P_RISK] = p.risk_fraction
    v[P_SL] = -1.0 if p.stop_loss_pct is None else p.stop_loss_pct / 100.0
    v[P_TP] = -1.0 if p.take_profit_pct is None else p.take_profit_pct / 100.0
    v[P_USE_SHARPE] = p.use_sharpe_ratio
    v[P_RF] = p.risk_free_rate
    v[P_FREQ] = p.trading_frequency_penalty
    v[P_DD] = p.drawdown_penalty
    v[P_PER_TRADE] = p.trade_penalty_mode == "per_trade"
    v[P_OBS_POS] = p.observe_position
    v[P_WINDOW] = p.sharpe_window_size
    return v


@njit(cache=True)
def fsum(x: np.ndarray, n: int, partials: np.ndarray) -> float:
    """``math.fsum(x[:n])`` of finite values, bit for bit (CPython 3.11's algorithm:
    Shewchuk's partials, then the half-even correction across partials). ``partials``: a
    scratch array of at least ``n`` floats."""
    m = 0
    for k in range(n):
        v = x[k]
        i = 0
        for j in range(m):
            y = partials[j]
            if abs(v) < abs(y):
                v, y = y, v
            hi = v + y
            lo = y - (hi - v)
            if lo != 0.0:
                partials[i] = lo
                i += 1
            v = hi
        m = i
        if v != 0.0:
            partials[m] = v
            m += 1
    hi = 0.0
    if m > 0:
        m -= 1
        hi = partials[m]
        lo = 0.0
        while m > 0:
            v = hi
            m -= 1
            y = partials[m]
            hi = v + y
            yr = hi - v
            lo = y - yr
            if lo != 0.0:
                break
        if m > 0 and ((lo < 0.0 and partials[m - 1] < 0.0) or
                      (lo > 0.0 and partials[m - 1] > 0.0)):
            y = lo * 2.0
            v = hi + y
            yr = v - hi
            if y == yr:
                hi = v
    return hi


@njit(cache=True, inline="always")
def copy_into(dst, src):
    """``dst[:] = src`` for 1-D arrays as a plain loop: numba's slice assignment checks the
    two for overlap first, which made a replay batch's 32-row gather 3.6 us instead of 1.5
    (measured in a compiled loop, 207-float rows)."""
    for j in range(dst.shape[0]):
        dst[j] = src[j]


@njit(cache=True)
def observe(state, prm, observations, close, out):
    """``TradingEnv._observation`` into ``out`` (float32)."""
    t = int(state[S_T])
    copy_into(out, observations[t])
    ib = prm[P_IB]
    price = close[t]
    d = out.shape[0]
    if prm[P_OBS_POS] != 0.0:
        out[d - 4] = state[S_BALANCE] / ib
        out[d - 3] = state[S_SHARES] * price / ib
        out[d - 2] = state[S_POSITION]
        out[d - 1] = ((price - state[S_ENTRY]) * state[S_SHARES] / ib
                      if state[S_POSITION] != 0.0 else 0.0)
    else:
        out[d - 2] = state[S_BALANCE] / ib
        out[d - 1] = state[S_SHARES] * price / ib


@njit(cache=True)
def env_reset(state, prm, observations, close, out):
    """``TradingEnv.reset``: the first bar, the starting balance; the observation in ``out``."""
    state[:] = 0.0
    state[S_BALANCE] = prm[P_IB]
    state[S_PV] = prm[P_IB]
    state[S_MAX_PV] = prm[P_IB]
    observe(state, prm, observations, close, out)


@njit(cache=True)
def _open(state, prm, side, price):
    balance = state[S_BALANCE]
    if prm[P_ALL_IN] != 0.0:
        shares = float(int(balance / (price * (1.0 + prm[P_FEE_RATE]))))
    else:
        shares = float(int(balance * prm[P_RISK] / price))
    if side == 1:
        shares = min(shares, float(int(balance / (price * (1.0 + prm[P_FEE_RATE])))))
    if shares <= 0 or (side == -1 and balance <= 0):
        return
    value = shares * price
    fee = value * prm[P_PCT] / 100
    if side == 1:
        state[S_BALANCE] = balance - (value + fee)
        state[S_SHARES] += shares
    else:
        state[S_BALANCE] = balance + (value - fee)
        state[S_SHARES] = -shares
    state[S_POSITION] = side
    state[S_ENTRY] = price
    state[S_TRADES] += 1
    state[S_TRADED] += shares * price


@njit(cache=True)
def _close(state, prm, price, count):
    """Returns False for a failed short cover (the short stays open)."""
    qty = abs(state[S_SHARES])
    value = qty * price
    fee = value * prm[P_PCT] / 100
    if state[S_POSITION] == 1:
        state[S_BALANCE] = state[S_BALANCE] + (value - fee)
    else:
        if state[S_BALANCE] < value + fee:
            return False
        state[S_BALANCE] = state[S_BALANCE] - (value + fee)
    state[S_SHARES] = 0.0
    state[S_POSITION] = 0.0
    state[S_ENTRY] = 0.0
    if count:
        state[S_TRADES] += 1
    state[S_CLOSED] += 1
    state[S_TRADED] += qty * price
    return True


@njit(cache=True)
def env_step(state, prm, observations, close, action, window, partials, out):
    """``TradingEnv.step(action)``: the next observation into ``out``; returns
    ``(reward, terminated)``. ``window``: the rolling-Sharpe ring (``sharpe_window_size``
    floats), ``partials``: :func:`fsum` scratch of the same size."""
    last_pv = state[S_PV]
    t = int(state[S_T]) + 1
    state[S_T] = t
    price = close[t]
    terminated = t >= close.shape[0] - 1
    position = int(state[S_POSITION])
    entry = state[S_ENTRY]
    sl, tp = prm[P_SL], prm[P_TP]
    hit = False
    if position != 0 and entry > 0:
        if position == 1:
            sl_hit = sl >= 0 and price <= entry * (1 - sl)
            tp_hit = not sl_hit and tp >= 0 and price >= entry * (1 + tp)
        else:
            sl_hit = sl >= 0 and price >= entry * (1 + sl)
            tp_hit = not sl_hit and tp >= 0 and price <= entry * (1 - tp)
        hit = sl_hit or tp_hit
    taken = 0 if hit else action
    target = 0 if taken == 0 else (1 if taken == 1 else -1)
    count_before = state[S_TRADES]
    if target != position:
        if position == 0:
            _open(state, prm, target, price)
        elif _close(state, prm, price, target == 0) and target != 0:
            _open(state, prm, target, price)
    pv = state[S_BALANCE] + state[S_SHARES] * price
    state[S_PV] = pv
    if pv > state[S_MAX_PV]:
        state[S_MAX_PV] = pv
    if last_pv == 0:
        reward = 0.0
    else:
        r = (pv - last_pv) / last_pv
        risk = r
        if prm[P_USE_SHARPE] != 0.0:
            risk = _push_sharpe(state, window, partials, r, prm[P_RF])
        max_pv = state[S_MAX_PV]
        drawdown = max(0.0, (max_pv - pv) / max_pv)
        trades = (state[S_TRADES] - count_before if prm[P_PER_TRADE] != 0.0
                  else state[S_TRADES])
        reward = risk - prm[P_FREQ] * trades - prm[P_DD] * drawdown
    observe(state, prm, observations, close, out)
    return reward, terminated


@njit(cache=True)
def _push_sharpe(state, window, partials, r, risk_free):
    size = window.shape[0]
    head = int(state[S_WHEAD])
    window[head] = r
    state[S_WHEAD] = (head + 1) % size
    n = min(int(state[S_WN]) + 1, size)
    state[S_WN] = n
    if n < 2:
        return r
    mean = fsum(window, n, partials) / n
    dev = np.empty(n)
    for k in range(n):
        dev[k] = (window[k] - mean) * (window[k] - mean)
    std = math.sqrt(fsum(dev, n, partials) / n)
    return mean if std == 0 else (mean - risk_free) / std
