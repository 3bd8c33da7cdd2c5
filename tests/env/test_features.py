"""TA-Lib indicators against plain pandas computations on the bundled S&P 500 data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rsc_env import INDICATOR_COLUMNS, add_indicators, load_sample

WARM = 300  # compare well after the exponential warm-ups have decayed


@pytest.fixture(scope="module")
def table():
    raw = load_sample("sp500")
    return raw, add_indicators(raw)


def test_columns_and_no_nan(table):
    raw, out = table
    assert list(out.columns) == [*raw.columns, *INDICATOR_COLUMNS] and len(INDICATOR_COLUMNS) == 15
    assert not out.isna().any().any()
    assert len(raw) - len(out) == 33  # MACD 26 + signal 9 warm-up


def test_rsi_matches_wilder(table):
    raw, out = table
    delta = raw["close"].diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    loss = (-delta.clip(upper=0)).ewm(alpha=1 / 14, adjust=False).mean()
    rsi = 100 - 100 / (1 + gain / loss)
    np.testing.assert_allclose(out["rsi_14"].iloc[WARM:], rsi.loc[out.index].iloc[WARM:], atol=1e-6)


def test_macd_matches_ewm(table):
    raw, out = table
    close = raw["close"]
    macd = close.ewm(span=12, adjust=False).mean() - close.ewm(span=26, adjust=False).mean()
    signal = macd.ewm(span=9, adjust=False).mean()
    idx = out.index[WARM:]
    np.testing.assert_allclose(out.loc[idx, "macd_12_26"], macd.loc[idx], atol=1e-6)
    np.testing.assert_allclose(out.loc[idx, "macd_signal_9"], signal.loc[idx], atol=1e-6)
    np.testing.assert_allclose(out.loc[idx, "macd_hist"], (macd - signal).loc[idx], atol=1e-6)


def test_bollinger_and_volatility(table):
    raw, out = table
    close = raw["close"]
    mid = close.rolling(20).mean()
    std = close.rolling(20).std(ddof=0)
    idx = out.index
    np.testing.assert_allclose(out["bb_middle_20"], mid.loc[idx], rtol=1e-9)
    np.testing.assert_allclose(out["bb_upper_20"], (mid + 2 * std).loc[idx], rtol=1e-6)
    np.testing.assert_allclose(out["bb_lower_20"], (mid - 2 * std).loc[idx], rtol=1e-6)
    vol = close.pct_change().rolling(20).std() * np.sqrt(252)
    np.testing.assert_allclose(out["hist_volatility_20"], vol.loc[idx], rtol=1e-12)


def test_ranges_of_bounded_indicators(table):
    _, out = table
    for col in ("rsi_14", "adx_14", "plus_di_14", "minus_di_14", "aroon_up_14", "aroon_down_14"):
        assert out[col].between(0, 100).all(), col
    assert out["aroon_osc_14"].equals(out["aroon_up_14"] - out["aroon_down_14"]) or np.allclose(
        out["aroon_osc_14"], out["aroon_up_14"] - out["aroon_down_14"]
    )
    assert (out["atr_14"] > 0).all()
    assert isinstance(out.index, pd.DatetimeIndex)


def test_indicators_are_computed_once_per_file_and_callers_get_copies():
    """A sweep builds an env per fold, seed and validation window: the whole file's
    indicators are computed once per process and sliced; what a caller does to its slice
    never reaches the cache."""
    from rsc_env import features, prepare_market_data

    features._with_indicators.cache_clear()
    first = prepare_market_data("sp500", start="2010-01-01", end="2010-12-31")
    second = prepare_market_data("sp500", start="2011-01-01", end="2011-12-31")
    info = features._with_indicators.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    fresh = add_indicators(load_sample("sp500")).loc["2011-01-01":"2011-12-31"]
    pd.testing.assert_frame_equal(second, fresh)
    first["close"] = -1.0
    assert (prepare_market_data("sp500", start="2010-01-01", end="2010-12-31")["close"] > 0).all()
