"""Technical indicators (TA-Lib) and the prepared market table the environment reads."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import talib

from rsc_env.data import SAMPLES, MarketDataError, load_ohlcv, load_sample, validate_ohlcv

INDICATOR_COLUMNS: tuple[str, ...] = (
    "rsi_14",
    "macd_12_26",
    "macd_signal_9",
    "macd_hist",
    "bb_lower_20",
    "bb_middle_20",
    "bb_upper_20",
    "hist_volatility_20",
    "adx_14",
    "plus_di_14",
    "minus_di_14",
    "aroon_down_14",
    "aroon_up_14",
    "aroon_osc_14",
    "atr_14",
)
"""The 15 indicator columns :func:`add_indicators` appends, in order."""

WARMUP_ROWS = 33
"""Leading rows that are NaN for at least one indicator (MACD 26 + signal 9 - 2)."""


def add_indicators(df: pd.DataFrame, source: str = "<DataFrame>") -> pd.DataFrame:
    """Append the 15 indicator columns (TA-Lib) and drop rows that contain any NaN.

    RSI 14; MACD 12/26/9 line, signal, histogram; Bollinger 20/2 lower, middle, upper;
    historical volatility (20-bar sample std of close-to-close returns x sqrt(252));
    ADX 14 with +DI/-DI; Aroon 14 down, up, oscillator; ATR 14.
    """
    if len(df) <= WARMUP_ROWS:
        raise MarketDataError(
            f"{source}: {len(df)} rows is too few: the indicators need more than "
            f"{WARMUP_ROWS} rows"
        )
    high, low, close = (df[c].to_numpy(np.float64) for c in ("high", "low", "close"))
    out = df.copy()
    out["rsi_14"] = talib.RSI(close, timeperiod=14)
    macd, signal, hist = talib.MACD(close, fastperiod=12, slowperiod=26, signalperiod=9)
    out["macd_12_26"], out["macd_signal_9"], out["macd_hist"] = macd, signal, hist
    upper, middle, lower = talib.BBANDS(close, timeperiod=20, nbdevup=2, nbdevdn=2, matype=0)
    out["bb_lower_20"], out["bb_middle_20"], out["bb_upper_20"] = lower, middle, upper
    returns = df["close"].pct_change()
    out["hist_volatility_20"] = returns.rolling(20).std().to_numpy() * np.sqrt(252.0)
    out["adx_14"] = talib.ADX(high, low, close, timeperiod=14)
    out["plus_di_14"] = talib.PLUS_DI(high, low, close, timeperiod=14)
    out["minus_di_14"] = talib.MINUS_DI(high, low, close, timeperiod=14)
    aroon_down, aroon_up = talib.AROON(high, low, timeperiod=14)
    out["aroon_down_14"], out["aroon_up_14"] = aroon_down, aroon_up
    out["aroon_osc_14"] = talib.AROONOSC(high, low, timeperiod=14)
    out["atr_14"] = talib.ATR(high, low, close, timeperiod=14)
    return out.dropna()


def prepare_market_data(
    data: str | Path | pd.DataFrame,
    *,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    date_column: str | None = None,
    date_format: str | None = None,
    min_rows: int = 2,
) -> pd.DataFrame:
    """Load (a bundled sample name, a CSV path or an OHLCV DataFrame), add indicators, slice.

    Indicators are computed on the whole history before slicing, so the first bars of
    ``start..end`` already have warmed-up indicators.
    """
    if isinstance(data, pd.DataFrame):
        source = "<DataFrame>"
        table = add_indicators(validate_ohlcv(data), source)
    else:
        source = str(data)
        table = _with_indicators(source, date_column, date_format)
    lo = pd.Timestamp(start) if start is not None else None
    hi = pd.Timestamp(end) if end is not None else None
    if lo is not None and hi is not None and lo > hi:
        raise MarketDataError(f"start {lo.date()} is after end {hi.date()}")
    sliced = table.loc[lo:hi].copy()  # the cached table stays untouched
    if len(sliced) < min_rows:
        span = f"{table.index[0].date()} to {table.index[-1].date()}"
        raise MarketDataError(
            f"{source}: {len(sliced)} usable rows between {start} and {end} (need at least "
            f"{min_rows}; after indicator warm-up the data runs {span})"
        )
    return sliced


@lru_cache(maxsize=8)
def _load_cached(name: str, date_column: str | None, date_format: str | None) -> pd.DataFrame:
    if name in SAMPLES:
        return load_sample(name)
    return load_ohlcv(name, date_column=date_column, date_format=date_format)


@lru_cache(maxsize=8)
def _with_indicators(name: str, date_column: str | None, date_format: str | None
                     ) -> pd.DataFrame:
    """The whole file with its indicators, once per process: every env of a sweep's trials
    (each fold, seed and validation window) slices this table instead of recomputing the
    indicators of the whole history (~35 ms each on msft's 8,000 bars). Read-only: callers
    get copies of slices."""
    return add_indicators(_load_cached(name, date_column, date_format), name)


def _load(name: str, date_column: str | None, date_format: str | None) -> tuple[pd.DataFrame, str]:
    return _load_cached(name, date_column, date_format).copy(), name
