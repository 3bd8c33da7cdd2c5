"""rsc-tune's test-period verdict: the interval rule, and a collapsed policy said plainly."""

from __future__ import annotations

from rsc_policy.tuning import report


def _seed(seed: int, sharpe: float, entries: int) -> dict:
    """One seed's test-period result as ``final_test`` builds it (``entries``: positions
    opened; a policy that buys once and holds has 1 entry and 0 completed trades)."""
    return {"seed": seed, "period": ["2017-01-03", "2018-12-31"], "fee_bp": 10.0,
            "entries": entries,
            "rows": {"agent": {"sharpe": sharpe, "total_return": 0.0, "trades": 0},
                     "buy and hold": {"sharpe": 0.47, "total_return": 0.2}}}


def test_a_policy_that_stays_flat_is_said_to_measure_no_edge() -> None:
    flat = report.test_period_verdict([_seed(s, 0.0, 0) for s in range(3)])
    assert not flat["beats_buy_and_hold"] and flat["flat_seeds"] == 3
    assert "In 3 of 3 seeds the retrained policy never opened a position" in flat["text"]
    mixed = report.test_period_verdict([_seed(0, 0.0, 0), _seed(1, 0.9, 12), _seed(2, 0.8, 9)])
    assert mixed["flat_seeds"] == 1 and "In 1 of 3 seeds" in mixed["text"]


def test_trading_policies_get_only_the_interval_verdict() -> None:
    v = report.test_period_verdict([_seed(0, 1.5, 10), _seed(1, 1.7, 8), _seed(2, 1.6, 11)])
    assert v["beats_buy_and_hold"] and v["flat_seeds"] == 0
    assert v["difference_ci95"][0] > 0 and "never opened" not in v["text"]
