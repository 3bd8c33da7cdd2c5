"""Parity of the fast TradingEnv with the literal reference (the spec's oracle), on real data.

Observations must agree to float32 rounding, rewards, portfolio values and every summary
figure to 1e-9, trade records and operations exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from rsc_env import ReferenceTradingEnv, TradingEnv, prepare_market_data

RICH = {"initial_balance": 100_000.0}  # the index trades at 1,200-2,900: 10% of 10k buys 0
PARAM_SETS = {
    "spec_defaults_zero_size": {},
    "defaults_sharpe_on": RICH,
    "team_training": {
        **RICH,
        "transaction_fee_percent": 0.001,
        "sharpe_window_size": 100,
        "drawdown_penalty": 0.005,
        "trading_frequency_penalty": 0.002,
        "stop_loss_pct": 5.0,
        "use_sharpe_ratio": False,
    },
    "sl_tp_tight": {**RICH, "stop_loss_pct": 1.0, "take_profit_pct": 1.5, "risk_fraction": 0.5},
    "all_in_sharpe_rf": {
        "position_sizing_method": "all_in",
        "risk_free_rate": 0.0001,
        "sharpe_window_size": 7,
        "window_size": 3,
        "normalization_window_size": 10,
    },
}


def _actions(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.integers(0, 3, n)
    if kind == "sticky":
        out = np.empty(n, dtype=np.int64)
        a = int(rng.integers(3))
        for i in range(n):
            if rng.random() < 0.15:
                a = int(rng.integers(3))
            out[i] = a
        return out
    if kind == "always_long":
        return np.ones(n, dtype=np.int64)
    raise ValueError(kind)


def run_side_by_side(df, params: dict, actions) -> dict:
    """Step both envs with the same actions and assert agreement at every step."""
    fast, ref = TradingEnv({"df": df, **params}), ReferenceTradingEnv({"df": df, **params})
    of, inf = fast.reset()
    orf, inr = ref.reset()
    np.testing.assert_array_equal(of, orf)
    assert inf == inr
    seen: dict[str, int] = {}
    for a in actions:
        of, rf, tf, trf, inf = fast.step(int(a))
        orf, rr, tr, trr, inr = ref.step(int(a))
        np.testing.assert_allclose(of, orf, rtol=2e-7, atol=1e-6)
        assert rf == pytest.approx(rr, abs=1e-9)
        assert (tf, trf) == (tr, trr)
        for key in ("balance", "portfolio_value", "current_price", "execution_price"):
            assert inf[key] == pytest.approx(inr[key], rel=1e-12, abs=1e-9), key
        for key in (
            "shares_held",
            "current_position",
            "step",
            "date",
            "action_taken",
            "original_action",
            "sl_triggered",
            "tp_triggered",
            "operation_type",
            "shares_transacted",
            "operations",
        ):
            assert inf[key] == inr[key], key
        for op in inf["operations"]:
            seen[op[0]] = seen.get(op[0], 0) + 1
        seen["sl"] = seen.get("sl", 0) + inf["sl_triggered"]
        seen["tp"] = seen.get("tp", 0) + inf["tp_triggered"]
        if len(inf["operations"]) == 2:
            seen["reversal"] = seen.get("reversal", 0) + 1
        if tf:
            break
    assert tf, "action sequence shorter than the episode"
    for key in (
        "initial_portfolio_value",
        "final_portfolio_value",
        "pnl",
        "win_rate",
        "max_drawdown",
        "sharpe_ratio",
        "total_reward",
    ):
        assert inf[key] == pytest.approx(inr[key], abs=1e-9), key
    assert inf["total_steps"] == inr["total_steps"] == len(df) - 1
    assert inf["completed_trades"] == inr["completed_trades"]
    log_f, log_r = inf["episode_log"], inr["episode_log"]
    for key in ("date", "action", "position"):
        np.testing.assert_array_equal(log_f[key], log_r[key])
    assert log_f["operations"] == log_r["operations"]
    assert log_f["reward"].sum() == pytest.approx(inf["total_reward"], abs=1e-9)
    return seen


@pytest.fixture(scope="module")
def sp500_2015():
    return prepare_market_data("sp500", start="2015-01-01", end="2015-12-31")


@pytest.fixture(scope="module")
def googl_2010(googl_csv):
    return prepare_market_data(googl_csv, start="2010-01-01", end="2010-12-31")


@pytest.mark.parametrize("kind", ["uniform", "sticky", "always_long"])
@pytest.mark.parametrize("param_set", sorted(PARAM_SETS))
def test_env_parity_sp500(sp500_2015, param_set, kind):
    seen = run_side_by_side(sp500_2015, PARAM_SETS[param_set], _actions(kind, 400, seed=7))
    if param_set == "spec_defaults_zero_size":
        assert not any(k.startswith(("ENTRY", "EXIT")) for k in seen), "size must be 0"
    elif kind != "always_long":
        assert seen.get("ENTRY_LONG") and seen.get("ENTRY_SHORT")


@pytest.mark.parametrize("kind", ["uniform", "sticky"])
@pytest.mark.parametrize("param_set", ["defaults_sharpe_on", "sl_tp_tight", "all_in_sharpe_rf"])
def test_env_parity_googl(googl_2010, param_set, kind):
    run_side_by_side(
        googl_2010,
        {**PARAM_SETS[param_set], "initial_balance": 10_000.0},
        _actions(kind, 400, seed=11),
    )


def test_env_parity_exercises_every_branch(sp500_2015):
    """The branch counters over the tight stop/take-profit runs: each rule fires at least once."""
    total: dict[str, int] = {}
    for seed in range(3):
        seen = run_side_by_side(
            sp500_2015, PARAM_SETS["sl_tp_tight"], _actions("sticky", 400, seed)
        )
        for k, v in seen.items():
            total[k] = total.get(k, 0) + v
    for key in ("sl", "tp", "reversal", "ENTRY_LONG", "ENTRY_SHORT", "EXIT_LONG", "EXIT_SHORT"):
        assert total.get(key, 0) > 0, f"branch {key} never exercised: {total}"


def test_env_parity_failed_cover(googl_csv):
    """Short all-in at the first bar, hold until the price doubles, then ask for flat: the cover
    cannot be paid, nothing happens and the short stays open (spec: keep)."""
    df = prepare_market_data(googl_csv, start="2009-07-01", end="2013-12-31")
    close = df["close"].to_numpy()
    doubled = int(np.argmax(close > 2.2 * close[1]))
    assert doubled > 0
    actions = np.r_[np.full(doubled, 2), np.zeros(len(df), dtype=int)]
    params = {"position_sizing_method": "all_in"}
    run_side_by_side(df, params, actions)
    env = TradingEnv({"df": df, **params})
    env.reset()
    for a in actions[: doubled + 3]:
        *_, info = env.step(int(a))
    assert info["current_position"] == -1 and info["operation_type"] == "HOLD"
    assert info["original_action"] == 0 and env.trades == []
