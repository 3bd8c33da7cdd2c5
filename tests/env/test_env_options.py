"""Env learning options (default off): ``trade_penalty_mode`` and ``observe_position``.

Hand-computed rewards and observations on a tiny table, then parity of the fast env with the
reference env under the options on real data, every branch exercised.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env

from rsc_env import EnvParams, ReferenceTradingEnv, TradingEnv, prepare_market_data

CLOSE = [100.0, 101.0, 102.0, 100.0, 99.0, 97.0, 103.0, 105.0]
#: long, hold, flat, short, hold, reverse to long, hold
ACTIONS = [1, 1, 0, 2, 2, 1, 1]
TFP = 0.01
PLAIN = {"initial_balance": 10_000.0, "transaction_fee_percent": 0.0, "use_sharpe_ratio": False,
         "drawdown_penalty": 0.0, "trading_frequency_penalty": TFP, "risk_fraction": 0.1,
         "window_size": 2, "normalization_window_size": 3}


@pytest.fixture(scope="module")
def tiny() -> pd.DataFrame:
    idx = pd.date_range("2020-01-01", periods=len(CLOSE), freq="D")
    c = np.array(CLOSE)
    return pd.DataFrame({"open": c, "high": c + 1, "low": c - 1, "close": c,
                         "volume": np.arange(1.0, len(c) + 1) * 1e3}, index=idx)


# Portfolio values by hand (no fee, 10% sizing): long int(1000/101)=9 @101 -> cash 9091;
# flat @100 -> 9991; short int(999.1/99)=10 @99 -> cash 10981; cover 10 @103 -> 9951, long
# int(995.1/103)=9 @103 -> cash 9024.
PV = [10_000.0, 9091 + 9 * 101, 9091 + 9 * 102, 9991.0, 10981 - 10 * 99, 10981 - 10 * 97,
      9024 + 9 * 103, 9024 + 9 * 105]
RETURNS = [(b - a) / a for a, b in zip(PV[:-1], PV[1:], strict=True)]
CUMULATIVE_COUNT = [1, 1, 2, 3, 3, 4, 4]  # trade_count after each step (reversal counts 1)
TRADES_THIS_STEP = [1, 0, 1, 1, 0, 1, 0]
POSITION = [1, 1, 0, -1, -1, 1, 1]
UNREALISED = [0.0, (102 - 101) * 9, 0.0, 0.0, (99 - 97) * 10, 0.0, (105 - 103) * 9]


def _episode(env) -> tuple[list[float], list[np.ndarray], list[dict]]:
    obs0, _ = env.reset()
    rewards, obs, infos = [], [obs0], []
    for a in ACTIONS:
        o, r, terminated, _, info = env.step(a)
        rewards.append(r)
        obs.append(o)
        infos.append(info)
    assert terminated
    return rewards, obs, infos


@pytest.mark.parametrize("cls", [TradingEnv, ReferenceTradingEnv])
def test_cumulative_default_is_the_spec_rule(tiny, cls):
    assert EnvParams().trade_penalty_mode == "cumulative"
    rewards, _, infos = _episode(cls({"df": tiny, **PLAIN}))
    assert [i["portfolio_value"] for i in infos] == pytest.approx(PV[1:], abs=1e-9)
    want = [r - TFP * n for r, n in zip(RETURNS, CUMULATIVE_COUNT, strict=True)]
    assert rewards == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("cls", [TradingEnv, ReferenceTradingEnv])
def test_per_trade_charges_only_the_steps_that_trade(tiny, cls):
    rewards, _, infos = _episode(cls({"df": tiny, **PLAIN, "trade_penalty_mode": "per_trade"}))
    assert [i["portfolio_value"] for i in infos] == pytest.approx(PV[1:], abs=1e-9)
    want = [r - TFP * n for r, n in zip(RETURNS, TRADES_THIS_STEP, strict=True)]
    assert rewards == pytest.approx(want, abs=1e-12)
    # the holding steps pay nothing; the episode pays penalty * final trade count in all
    assert rewards[1] == pytest.approx(RETURNS[1], abs=1e-15)
    assert sum(want) == pytest.approx(sum(RETURNS) - TFP * CUMULATIVE_COUNT[-1])


@pytest.mark.parametrize("cls", [TradingEnv, ReferenceTradingEnv])
def test_observe_position_appends_position_and_unrealised_pnl(tiny, cls):
    plain = cls({"df": tiny, **PLAIN})
    env = cls({"df": tiny, **PLAIN, "observe_position": True})
    assert env.observation_space.shape == (plain.observation_space.shape[0] + 2,)
    _, obs_plain, _ = _episode(plain)
    _, obs, _ = _episode(env)
    np.testing.assert_array_equal(obs[0][-2:], [0.0, 0.0])  # reset: flat
    for t, o in enumerate(obs[1:]):
        np.testing.assert_array_equal(o[:-2], obs_plain[t + 1])  # the spec's part unchanged
        assert o[-2] == POSITION[t]
        assert o[-1] == pytest.approx(UNREALISED[t] / 10_000.0, rel=1e-6)
        assert env.observation_space.contains(o)


def test_options_validated():
    with pytest.raises(ValueError, match="trade_penalty_mode"):
        EnvParams(trade_penalty_mode="per_step")
    with pytest.raises(ValueError, match="observe_position"):
        EnvParams(observe_position=1)  # type: ignore[arg-type]


def test_check_env_with_options(tiny):
    check_env(TradingEnv({"df": tiny, **PLAIN, "observe_position": True,
                          "trade_penalty_mode": "per_trade"}), skip_render_check=True)


@pytest.fixture(scope="module")
def sp500_2015():
    return prepare_market_data("sp500", start="2015-01-01", end="2015-12-31")


OPTIONS = {"per_trade": {"trade_penalty_mode": "per_trade"},
           "observe_position": {"observe_position": True},
           "both": {"trade_penalty_mode": "per_trade", "observe_position": True}}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_env_options_parity_with_reference(sp500_2015, option, seed):
    """Fast == reference with the option, over the tight stop/take-profit set (every branch:
    stop-loss, take-profit, reversals), and the option does change what it should."""
    params = {"initial_balance": 100_000.0, "stop_loss_pct": 1.0, "take_profit_pct": 1.5,
              "risk_fraction": 0.5, "use_sharpe_ratio": seed == 0, **OPTIONS[option]}
    rng = np.random.default_rng(seed)
    actions, a = [], 1
    for _ in range(len(sp500_2015) - 1):
        if rng.random() < 0.15:
            a = int(rng.integers(3))
        actions.append(a)
    fast, ref = TradingEnv({"df": sp500_2015, **params}), ReferenceTradingEnv(
        {"df": sp500_2015, **params})
    base = TradingEnv({"df": sp500_2015, **{k: v for k, v in params.items()
                                            if k not in OPTIONS["both"]}})
    of, _ = fast.reset()
    orf, _ = ref.reset()
    base.reset()
    np.testing.assert_array_equal(of, orf)
    reward_diff = obs_nonzero = 0
    for act in actions:
        of, rf, tf, _, inf = fast.step(act)
        orf, rr, tr, _, inr = ref.step(act)
        ob, rb, *_ = base.step(act)
        np.testing.assert_allclose(of, orf, rtol=2e-7, atol=1e-6)
        assert rf == pytest.approx(rr, abs=1e-9) and tf == tr
        for key in ("operations", "current_position", "shares_held"):
            assert inf[key] == inr[key]
        reward_diff += abs(rf - rb) > 1e-12
        if fast.params.observe_position:
            obs_nonzero += of[-1] != 0
            assert of[-2] == inf["current_position"]
        if tf:
            break
    assert tf and inf["completed_trades"] == inr["completed_trades"]
    assert inf["total_reward"] == pytest.approx(inr["total_reward"], abs=1e-9)
    if fast.params.trade_penalty_mode == "per_trade":
        assert reward_diff > 0
    else:
        assert reward_diff == 0  # observing the position leaves the rewards alone
    if fast.params.observe_position:
        assert obs_nonzero > 0
