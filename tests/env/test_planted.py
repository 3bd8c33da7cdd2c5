"""The planted-pattern generators: shape, reproducibility, and hand-checkable oracles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rsc_env import planted, prepare_market_data, validate_ohlcv
from rsc_env.planted import GENERATORS, strategy_figures


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_shape_reproducible_consistent(name: str) -> None:
    a = planted.planted(name, seed=3, n=400)
    b = planted.planted(name, seed=3, n=400)
    c = planted.planted(name, seed=4, n=400)
    pd.testing.assert_frame_equal(a.ohlcv, b.ohlcv)
    pd.testing.assert_series_equal(a.oracle, b.oracle)
    assert not a.ohlcv["close"].equals(c.ohlcv["close"])
    t = validate_ohlcv(a.ohlcv)  # the loader's own checks: positive prices, sorted dates...
    assert list(t.columns) == ["open", "high", "low", "close", "volume"] and len(t) == 400
    assert np.isfinite(t.to_numpy()).all()
    assert (t["low"] <= t[["open", "close"]].min(axis=1)).all()
    assert (t["high"] >= t[["open", "close"]].max(axis=1)).all()
    assert set(np.unique(a.oracle)) <= {-1, 0, 1} and a.oracle.iloc[-1] == 0
    assert a.oracle.index.equals(a.ohlcv.index)
    prepared = prepare_market_data(a.ohlcv)  # the indicators accept it
    assert len(prepared) == 400 - 33


def test_noiseless_sine_oracle_is_the_sign_of_the_next_move() -> None:
    s = planted.sine(n=300, period=20, amplitude=0.05, noise=0.0, seed=1)
    close = s.ohlcv["close"].to_numpy()
    nxt = np.sign(np.round(np.diff(close), 9))
    assert np.array_equal(s.oracle.to_numpy()[:-1], nxt)
    fig = s.oracle_figures()
    # Every held bar earns |move|: the total return is the product of (1 + |r|).
    moves = np.abs(close[1:] / close[:-1] - 1.0)
    assert fig["total_return"] == pytest.approx(np.prod(1.0 + moves) - 1.0)
    assert fig["exposure"] == pytest.approx(1.0)
    assert fig["sharpe"] > 10


def test_strategy_figures_by_hand() -> None:
    dates = pd.bdate_range("2020-01-01", periods=4)
    close = np.array([100.0, 110.0, 99.0, 99.0])
    # long +10 %, short the -10 % drop (+10 %), flat: 1.1 * 1.1 - 1 = 0.21 without fees.
    fig = strategy_figures(close, np.array([1, -1, 0]), dates)
    assert fig["total_return"] == pytest.approx(0.21)
    assert fig["trades"] == 3 and fig["exposure"] == pytest.approx(2 / 3)
    r = np.array([0.1, 0.1, 0.0])
    ann = 3 / ((dates[-1] - dates[0]).days / 365.25)
    assert fig["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(ann))
    # A 1 % fee per unit of position change: 1 + 2 + 1 units traded.
    fee = strategy_figures(close, np.array([1, -1, 0]), dates, fee_percent=1.0)
    assert fee["total_return"] == pytest.approx(1.09 * 1.08 * 0.99 - 1.0)
    flat = strategy_figures(close, np.zeros(3), dates)
    assert flat["sharpe"] == 0.0 and flat["total_return"] == 0.0


def test_oracle_figures_over_a_period_and_the_null() -> None:
    s = planted.regimes(n=600, seed=2)
    whole, tail = s.oracle_figures(), s.oracle_figures(s.ohlcv.index[300])
    assert whole["sharpe"] > 3 and tail["sharpe"] > 3
    assert tail["trades"] <= whole["trades"]
    rw = planted.random_walk(n=600, seed=2)
    assert (rw.oracle == 0).all() and rw.oracle_figures()["sharpe"] == 0.0


def test_regime_and_mean_reversion_oracles_follow_their_state() -> None:
    r = planted.regimes(n=2000, drift=0.004, vol=0.0, seed=5)  # no noise: drift only
    moves = np.sign(np.diff(np.log(r.ohlcv["close"].to_numpy())))
    assert np.array_equal(r.oracle.to_numpy()[:-1], moves)
    m = planted.mean_reversion(n=2000, seed=5)
    dev = np.log(m.ohlcv["close"].to_numpy() / 100.0)
    assert np.array_equal(m.oracle.to_numpy()[:-1], -np.sign(dev[:-1]))
    assert m.oracle_figures()["sharpe"] > 2


def test_unknown_series() -> None:
    with pytest.raises(ValueError, match="unknown planted series"):
        planted.planted("nope")
