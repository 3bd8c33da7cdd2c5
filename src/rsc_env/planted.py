"""Planted-pattern price series: daily OHLCV with a known edge and a known oracle policy.

Each generator is seeded and returns a :class:`PlantedSeries`: the OHLCV table (the shape
:func:`rsc_env.load_ohlcv` returns and :func:`rsc_env.prepare_market_data` accepts), the
oracle's position per bar and :meth:`PlantedSeries.oracle_figures` over any period.

* :func:`sine`: log price = amplitude x sin(2 pi t / period) + iid noise. Oracle: the sign of
  the sine's next move.
* :func:`regimes`: a hidden two-state Markov chain (up / down drift) with Gaussian returns.
  Oracle: the sign of the drift of the state that governs the next return.
* :func:`mean_reversion`: the log price is an Ornstein-Uhlenbeck process around a constant
  level. Oracle: against the deviation (expected next return ``-theta * deviation``).
* :func:`random_walk`: Gaussian log returns without drift: no edge; the oracle stays flat.

Convention: ``oracle[t]`` is the position (-1 short, 0 flat, 1 long) held over the return
from ``close[t]`` to ``close[t + 1]``; it uses the generating process's state (its known
part), never the noise of that return. The last bar's position is 0 (no next return).

The oracle's figures use the annualisation of ``rsc_policy.evaluation.metrics``: bars per
year = bars / calendar years spanned by the dates; Sharpe = mean / sample std (ddof 1) of the
per-bar strategy returns x sqrt(bars per year), zero risk-free rate, 0 if never invested.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

START_DATE = "2000-01-03"
"""First bar of every planted series (business days follow)."""


@dataclass(frozen=True)
class PlantedSeries:
    """A planted series: ``ohlcv`` (float64, ``DatetimeIndex`` named ``date``), ``oracle``
    (int positions per bar, same index) and the generator's ``name`` and ``params``."""

    name: str
    ohlcv: pd.DataFrame
    oracle: pd.Series
    params: dict[str, Any]

    def oracle_figures(self, start: Any = None, end: Any = None, *,
                       fee_percent: float = 0.0) -> dict[str, float]:
        """The oracle's figures over the bars ``start..end`` (dates, inclusive; default: all).

        The oracle holds ``oracle[t]`` over ``close[t] -> close[t + 1]`` for every bar of the
        period but its last, with the whole balance, paying ``fee_percent`` (a percent) of
        the traded value at each position change (a reversal trades twice). Returns
        ``total_return, sharpe, periods_per_year, trades`` (position changes) and
        ``exposure`` (fraction of held bars not flat).
        """
        close = self.ohlcv["close"].loc[start:end]
        pos = self.oracle.loc[start:end].to_numpy(dtype=float)[:-1]
        return strategy_figures(close.to_numpy(), pos, close.index, fee_percent=fee_percent)


def strategy_figures(close: np.ndarray, positions: np.ndarray, dates: Any, *,
                     fee_percent: float = 0.0) -> dict[str, float]:
    """Figures of holding ``positions[i]`` over ``close[i] -> close[i + 1]`` (see
    :meth:`PlantedSeries.oracle_figures`); ``len(positions) == len(close) - 1``."""
    c = np.asarray(close, dtype=float)
    p = np.asarray(positions, dtype=float)
    if len(p) != len(c) - 1 or len(c) < 3:
        raise ValueError("need len(positions) == len(close) - 1 and at least 3 bars")
    moves = c[1:] / c[:-1] - 1.0
    changes = np.abs(np.diff(np.concatenate([[0.0], p])))
    returns = p * moves - changes * fee_percent / 100.0
    idx = pd.DatetimeIndex(dates)
    years = (idx[-1] - idx[0]).total_seconds() / (365.25 * 86400)
    ann = (len(idx) - 1) / years if years > 0 else float("nan")
    std = float(np.std(returns, ddof=1))
    invested = bool(np.any(returns != 0.0))
    sharpe = float(np.mean(returns) / std * np.sqrt(ann)) if invested and std > 0 else 0.0
    return {"total_return": float(np.prod(1.0 + returns) - 1.0), "sharpe": sharpe,
            "periods_per_year": float(ann), "trades": float(np.count_nonzero(changes)),
            "exposure": float(np.mean(p != 0))}


def _table(log_close: np.ndarray, rng: np.random.Generator, bar_range: float,
           start: str) -> pd.DataFrame:
    """OHLCV from log closes: open = previous close, high/low beyond both by a random
    fraction of ``bar_range``, volume lognormal around 1e6."""
    close = np.exp(log_close)
    open_ = np.concatenate([[close[0]], close[:-1]])
    top = np.maximum(open_, close)
    bottom = np.minimum(open_, close)
    high = top * np.exp(np.abs(rng.normal(0.0, bar_range, len(close))))
    low = bottom * np.exp(-np.abs(rng.normal(0.0, bar_range, len(close))))
    volume = np.round(1e6 * np.exp(rng.normal(0.0, 0.3, len(close))))
    index = pd.bdate_range(start, periods=len(close), name="date")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": volume}, index=index)


def _series(name: str, log_close: np.ndarray, oracle: np.ndarray, rng: np.random.Generator,
            params: dict[str, Any], bar_range: float) -> PlantedSeries:
    table = _table(log_close, rng, bar_range, START_DATE)
    pos = np.asarray(oracle, dtype=np.int64)
    pos[-1] = 0
    return PlantedSeries(name, table, pd.Series(pos, index=table.index, name="oracle"), params)


def sine(n: int = 3000, *, period: float = 40.0, amplitude: float = 0.05, noise: float = 0.003,
         seed: int = 0, price: float = 100.0) -> PlantedSeries:
    """Log close = log(price) + amplitude * sin(2 pi t / period) + N(0, noise) per bar (iid,
    not cumulative). Oracle: sign of the sine's next move (0 where it does not move)."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0.0, 2.0 * np.pi)
    wave = amplitude * np.sin(2.0 * np.pi * np.arange(n + 1) / period + phase)
    log_close = np.log(price) + wave[:n] + rng.normal(0.0, noise, n)
    oracle = np.sign(np.round(np.diff(wave), 12))
    return _series("sine", log_close, oracle, rng, {"n": n, "period": period,
                   "amplitude": amplitude, "noise": noise, "seed": seed}, noise)


def regimes(n: int = 3000, *, drift: float = 0.004, vol: float = 0.01,
            mean_duration: float = 60.0, seed: int = 0, price: float = 100.0) -> PlantedSeries:
    """Log returns N(+drift or -drift, vol); the sign follows a hidden two-state Markov chain
    that switches with probability ``1 / mean_duration`` per bar. Oracle: the sign of the
    drift of the next return's state."""
    rng = np.random.default_rng(seed)
    switch = rng.random(n) < 1.0 / mean_duration
    state = np.where(np.cumsum(switch) % 2 == 0, 1, -1) * (1 if rng.random() < 0.5 else -1)
    steps = state[1:] * drift + rng.normal(0.0, vol, n - 1)  # return t-1 -> t: state[t]
    log_close = np.log(price) + np.concatenate([[0.0], np.cumsum(steps)])
    oracle = np.concatenate([state[1:], [0]])
    return _series("regimes", log_close, oracle, rng, {"n": n, "drift": drift, "vol": vol,
                   "mean_duration": mean_duration, "seed": seed}, vol / 2)


def mean_reversion(n: int = 3000, *, theta: float = 0.2, vol: float = 0.01, seed: int = 0,
                   price: float = 100.0) -> PlantedSeries:
    """Log close = log(price) + x, ``x[t+1] = (1 - theta) x[t] + N(0, vol)`` (discrete OU).
    Oracle: ``-sign(x[t])`` (the expected next log return is ``-theta * x[t]``)."""
    rng = np.random.default_rng(seed)
    x = np.empty(n)
    x[0] = rng.normal(0.0, vol / np.sqrt(1.0 - (1.0 - theta) ** 2))  # stationary start
    shocks = rng.normal(0.0, vol, n)
    for t in range(1, n):
        x[t] = (1.0 - theta) * x[t - 1] + shocks[t]
    return _series("mean_reversion", np.log(price) + x, -np.sign(x), rng,
                   {"n": n, "theta": theta, "vol": vol, "seed": seed}, vol / 2)


def random_walk(n: int = 3000, *, vol: float = 0.01, seed: int = 0,
                price: float = 100.0) -> PlantedSeries:
    """Log returns N(0, vol): no edge; the oracle is flat throughout (Sharpe 0)."""
    rng = np.random.default_rng(seed)
    log_close = np.log(price) + np.concatenate([[0.0], np.cumsum(rng.normal(0.0, vol, n - 1))])
    return _series("random_walk", log_close, np.zeros(n), rng,
                   {"n": n, "vol": vol, "seed": seed}, vol / 2)


GENERATORS: dict[str, Callable[..., PlantedSeries]] = {
    "sine": sine, "regimes": regimes, "mean_reversion": mean_reversion,
    "random_walk": random_walk}
"""The planted generators by name; ``random_walk`` is the null (no edge)."""

NULL_SERIES = "random_walk"


def planted(name: str, *, seed: int = 0, **kwargs: Any) -> PlantedSeries:
    """The planted series ``name`` (a key of :data:`GENERATORS`) with ``seed``."""
    if name not in GENERATORS:
        raise ValueError(f"unknown planted series {name!r}; known: {sorted(GENERATORS)}")
    return GENERATORS[name](seed=seed, **kwargs)
