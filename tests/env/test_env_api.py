"""TradingEnv as a gymnasium/RLlib environment: checker, config handling, errors, pickling."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rsc_env import NoTradeWarning, ReferenceTradingEnv, TradingEnv, prepare_market_data


@pytest.fixture(scope="module")
def small():
    return prepare_market_data("sp500", start="2016-01-01", end="2016-03-31")


@pytest.mark.parametrize("cls", [TradingEnv, ReferenceTradingEnv])
def test_check_env(cls, small):
    check_env(cls({"df": small}), skip_render_check=True)


def test_env_config_with_data_path(googl_csv):
    env = TradingEnv({"data": str(googl_csv), "start": "2012-01-01", "end": "2012-06-30"})
    obs, info = env.reset()
    assert obs.shape == (5 * 20 + 2,) and obs.dtype == np.float32
    assert info["starting_step"] == 0 and info["portfolio_value"] == 10_000.0
    assert env.df.index[0] >= np.datetime64("2012-01-01")


def test_unknown_key_and_bad_parameter_are_named(small):
    with pytest.raises(ValueError, match="unknown env_config key.*'windw_size'"):
        TradingEnv({"df": small, "windw_size": 3})
    with pytest.raises(ValueError, match="risk_fraction=0"):
        TradingEnv({"df": small, "risk_fraction": 0})
    with pytest.raises(ValueError, match="position_sizing_method"):
        TradingEnv({"df": small, "position_sizing_method": "kelly"})


def test_step_after_termination_raises(small):
    env = TradingEnv({"df": small})
    env.reset()
    terminated = False
    steps = 0
    while not terminated:
        _, _, terminated, truncated, info = env.step(0)
        assert not truncated
        steps += 1
    assert steps == len(small) - 1 == info["total_steps"]
    with pytest.raises(RuntimeError, match="terminated"):
        env.step(0)
    with pytest.raises(ValueError, match="action must be"):
        env.reset()
        env.step(5)


def test_open_position_at_end_is_not_a_trade(small):
    env = TradingEnv({"df": small, "initial_balance": 100_000.0})
    env.reset()
    done = False
    while not done:
        _, _, done, _, info = env.step(1)
    assert info["current_position"] == 1
    assert info["completed_trades"] == [] and info["win_rate"] == 0.0
    assert info["final_portfolio_value"] != 100_000.0


def test_pickle_and_shared_arrays(small):
    a = TradingEnv({"df": small})
    b = TradingEnv({"df": small})
    assert a.market is b.market  # copies built from one table share the precomputed arrays
    clone = pickle.loads(pickle.dumps(a))
    oa, _ = a.reset()
    oc, _ = clone.reset()
    np.testing.assert_array_equal(oa, oc)
    assert clone.step(1)[1] == a.step(1)[1]


def test_trade_penalty_grows_with_cumulative_count(small):
    """Spec (keep): the trading penalty is rate x the episode's cumulative trade count."""
    params = {
        "df": small,
        "initial_balance": 100_000.0,
        "use_sharpe_ratio": False,
        "drawdown_penalty": 0.0,
        "trading_frequency_penalty": 0.01,
    }
    env = TradingEnv(params)
    env.reset()
    for a in (1, 0, 1, 0):
        last_pv = env.portfolio_value
        _, reward, _, _, info = env.step(a)
        r = (info["portfolio_value"] - last_pv) / last_pv
        assert reward == pytest.approx(r - 0.01 * env.trade_count, abs=1e-12)
    assert env.trade_count == 4


def test_step_info_off_keeps_the_terminal_info(small):
    full, lean = TradingEnv({"df": small}), TradingEnv({"df": small, "step_info": False})
    full.reset()
    lean.reset()
    done = False
    while not done:
        _, r_full, done, _, info_full = full.step(1)
        obs, r_lean, done_lean, _, info_lean = lean.step(1)
        assert r_full == r_lean and done == done_lean
        if not done:
            assert info_lean == {}
    assert info_lean["total_reward"] == info_full["total_reward"]
    np.testing.assert_array_equal(
        info_lean["episode_log"]["reward"], info_full["episode_log"]["reward"]
    )


def test_registered_with_gymnasium_as_rsc_trading_v0():
    import subprocess
    import sys

    code = ("import gymnasium as gym; "
            "e = gym.make('rsc_env:rsc/Trading-v0', env_config={'data': 'sp500', "
            "'start': '2015-01-01', 'end': '2015-03-31'}); "
            "from rsc_env import TradingEnv; assert isinstance(e.unwrapped, TradingEnv); "
            "print(e.reset(seed=0)[0].shape, gym.make('rsc/Trading-v0').spec.id)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["(102,)", "rsc/Trading-v0"]


@pytest.mark.parametrize(("params", "named"), [
    ({}, "risk_fraction 0.1 x initial_balance 10,000.00 = 1,000.00"),
    ({"position_sizing_method": "all_in", "initial_balance": 1_000.0}, "all_in spends"),
])
def test_sizing_that_buys_no_share_warns_and_the_env_never_trades(small, params, named):
    """The team's defaults on the S&P 500 index (closes above 1,800 in 2016): 10 % of 10,000
    buys no share, so every buy and short is skipped. The env says so when it is built,
    naming the sizing, the balance and the lowest close; a sizing that buys shares is
    quiet."""
    low = f"{small['close'].min():,.2f}"
    with pytest.warns(NoTradeWarning, match="buys no share") as record:
        env = TradingEnv({"df": small, **params})
    assert named in str(record[0].message) and low in str(record[0].message)
    env.reset(seed=0)
    for t in range(env.episode_length):
        *_, info = env.step(1 if t % 2 else 2)
    assert env.trade_count == 0 == info["shares_held"] and info["completed_trades"] == []
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoTradeWarning)
        TradingEnv({"df": small, "initial_balance": 100_000.0})  # 10,000 buys 4-5 shares
