"""Benchmarks and figures equal hand-computed values on a tiny series; the comparison report
states the fee and a plain verdict."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rsc_policy.evaluation.benchmarks import (
    buy_and_hold,
    compare,
    markdown,
    percentile_among,
    random_draws,
)
from rsc_policy.evaluation.metrics import performance, periods_per_year

DATES = pd.date_range("2021-01-01", periods=5, freq="D")  # 4 daily steps over 4 days
PRICES = np.array([100.0, 110.0, 99.0, 121.0, 121.0])


def test_periods_per_year_follow_the_bar_frequency():
    assert periods_per_year(DATES) == pytest.approx(365.25)
    hourly = pd.date_range("2021-01-01", periods=24 * 30 + 1, freq="h")
    assert periods_per_year(hourly) == pytest.approx(24 * 365.25)
    business = pd.bdate_range("2015-01-01", "2016-12-31")
    assert 250 < periods_per_year(business) < 262


def test_buy_and_hold_and_its_figures_by_hand():
    fee_pct = 0.1  # percent: 10 bp
    got = buy_and_hold(PRICES, DATES, 1000.0, fee_pct)
    shares = 1000.0 / (100.0 * 1.001)
    values = np.array([1000.0, shares * 110, shares * 99, shares * 121, shares * 121 * 0.999])
    r = values[1:] / values[:-1] - 1
    ann = 365.25
    assert got["total_return"] == pytest.approx(values[-1] / 1000.0 - 1)
    assert got["pnl"] == pytest.approx(values[-1] - 1000.0)
    assert got["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(ann))
    assert got["volatility"] == pytest.approx(r.std(ddof=1) * math.sqrt(ann))
    downside = np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))
    assert got["sortino"] == pytest.approx(r.mean() * ann / (downside * math.sqrt(ann)))
    peak = np.maximum.accumulate(values)
    assert got["max_drawdown"] == pytest.approx(((peak - values) / peak).max())
    years = 4 / ann
    cagr = (values[-1] / 1000.0) ** (1 / years) - 1
    assert got["cagr"] == pytest.approx(cagr)
    assert got["calmar"] == pytest.approx(cagr / got["max_drawdown"])
    assert got["exposure"] == 1.0 and got["trades"] == 1


def test_performance_exposure_and_turnover():
    got = performance([100.0, 101.0, 102.0], pd.date_range("2021-01-01", periods=3),
                      positions=[1, 0], traded_value=202.0)
    assert got["exposure"] == 0.5
    assert got["turnover"] == pytest.approx(202.0 / 101.0 / (2 / 365.25))


def test_compare_on_real_data_reports_true_benchmarks():
    cfg = {"data": "sp500", "start": "2015-01-01", "end": "2016-12-31",
           "initial_balance": 100_000.0, "transaction_fee_percent": 0.001,
           "stop_loss_pct": 5.0}
    res = compare(lambda obs: 0, cfg, n_random=20)
    rows = res["rows"]
    # the S&P 500 index rose 8.78 % over 2015-16 (close 2015-01-02 -> 2016-12-30)
    assert rows["buy and hold"]["total_return"] == pytest.approx(0.0877, abs=0.001)
    assert rows["agent"]["total_return"] == 0.0 and rows["agent"]["trades"] == 0
    assert any(name.startswith("always long (env sizing") for name in rows)
    assert "SMA 50/200 crossover" in rows
    assert res["random"]["p5"]["total_return"] <= res["random"]["mean"]["total_return"] \
        <= res["random"]["p95"]["total_return"]
    text = markdown(res)
    assert "fee 0.1 bp" in text and "below 1 bp" in text
    assert rows["agent"]["sharpe"] == 0.0  # never invested: 0, not NaN
    assert "Beats buy-and-hold's Sharpe on this period: no" in text  # a flat agent cannot
    assert "random (20 seeds, 5th pct)" in text


def test_random_policies_drawn_once_give_the_same_comparison():
    """A sweep or walk-forward draws a window's random policies once and hands them to every
    seed's comparison: the figures equal those of a comparison that draws them itself."""
    cfg = {"data": "sp500", "start": "2016-01-01", "end": "2016-12-31",
           "position_sizing_method": "all_in", "transaction_fee_percent": 0.1}
    policy = lambda obs: 1 if obs.sum() > 0 else 2  # noqa: E731 - any deterministic policy
    drawn_here = compare(policy, cfg, n_random=20)
    draws = random_draws(cfg, 20)
    handed_in = compare(policy, cfg, random=draws)
    assert handed_in["random"] == drawn_here["random"]
    assert handed_in["agent_percentile"] == drawn_here["agent_percentile"]
    assert handed_in["n_random"] == 20 and len(draws["sharpe"]) == 20
    assert np.ptp(draws["total_return"]) > 0  # 20 different policies, not one draw
    assert drawn_here["agent_percentile"]["sharpe"] == percentile_among(
        drawn_here["rows"]["agent"]["sharpe"], draws["sharpe"])


def test_percentile_among_counts_strictly_lower_draws():
    assert percentile_among(2.0, np.array([1.0, 2.0, 3.0, 0.0])) == 50.0
    assert percentile_among(-9.0, np.array([1.0, 2.0])) == 0.0
    assert math.isnan(percentile_among(math.nan, np.array([1.0])))
