"""Performance figures of an equity curve, annualised from the bar frequency.

Return (CAGR), volatility, Sharpe, Sortino, max drawdown and Calmar come from
``empyrical`` (the maintained ``empyrical-reloaded``); this module only decides the
annualisation and adds the trading figures (trades, exposure, turnover) from the env's log.

Annualisation: ``periods_per_year`` = bars / calendar years spanned by the bars' dates
(``(last - first) / 365.25 days``), so daily stock bars give ~252, hourly bars ~1,600, crypto
daily bars ~365. Sharpe and Sortino use a zero risk-free rate; a curve that never moves (never
invested) has Sharpe, Sortino and Calmar 0 rather than undefined.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

FIGURES = ("total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar",
           "trades", "exposure", "turnover", "pnl")


def periods_per_year(dates: Sequence[Any]) -> float:
    """Bars per year from the bars' dates (bars / calendar years spanned)."""
    idx = pd.DatetimeIndex(dates)
    years = (idx[-1] - idx[0]).total_seconds() / (365.25 * 86400)
    return float((len(idx) - 1) / years) if years > 0 else float("nan")


def performance(values: Sequence[float], dates: Sequence[Any], *, trades: int = 0,
                positions: Sequence[float] | None = None,
                traded_value: float = 0.0) -> dict[str, float]:
    """Figures of the equity curve ``values`` (one value per bar, the first the starting
    balance) at ``dates``. ``positions`` (per bar, 0 = flat) gives the exposure;
    ``traded_value`` (sum of |shares traded| x price) the annual turnover (traded value /
    mean portfolio value / years)."""
    import empyrical as ep

    v = np.asarray(values, dtype=float)
    idx = pd.DatetimeIndex(dates)
    ann = periods_per_year(idx)
    # a plain array, not a dated Series: empyrical gives the same figures ~3x faster (a
    # window's 100 random policies are 100 calls)
    returns = v[1:] / v[:-1] - 1.0
    years = max(len(returns) / ann, 1e-12) if np.isfinite(ann) else float("nan")
    flat = bool(np.all(returns == 0.0))  # never invested: ratios are 0, not NaN
    out = {
        "total_return": float(v[-1] / v[0] - 1.0),
        "cagr": float(ep.annual_return(returns, annualization=ann)),
        "volatility": float(ep.annual_volatility(returns, annualization=ann)),
        "sharpe": float(ep.sharpe_ratio(returns, annualization=ann)),
        "sortino": float(ep.sortino_ratio(returns, annualization=ann)),
        "max_drawdown": float(-ep.max_drawdown(returns)),
        "calmar": float(ep.calmar_ratio(returns, annualization=ann)),
        "trades": float(trades),
        "exposure": float(np.mean(np.asarray(positions) != 0)) if positions is not None
        else float("nan"),
        "turnover": float(traded_value / np.mean(v) / years),
        "pnl": float(v[-1] - v[0]),
        "periods_per_year": ann,
    }
    if flat:
        out.update(sharpe=0.0, sortino=0.0, calmar=0.0)
    return out


def episode_performance(info: dict[str, Any], start_date: Any = None) -> dict[str, float]:
    """:func:`performance` of a TradingEnv episode from its terminal ``info``; ``start_date``
    is the reset bar's date (default: one bar spacing before the first step)."""
    log = info["episode_log"]
    initial = float(info["initial_portfolio_value"])
    values = np.concatenate([[initial], log["portfolio_value"]])
    first = np.datetime64(start_date) if start_date is not None else \
        log["date"][0] - (log["date"][1] - log["date"][0])
    dates = np.concatenate([[first], log["date"]]).astype("datetime64[ns]")
    traded = sum(abs(size) * price for _, _, size, price in log.get("operations", []))
    return performance(values, dates, trades=len(info.get("completed_trades", [])),
                       positions=np.asarray(log["position"]), traded_value=traded)
