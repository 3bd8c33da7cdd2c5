"""The compiled env rules (rsc_env.compiled) equal TradingEnv step for step, bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rsc_env import TradingEnv
from rsc_env.compiled import STATE_SIZE, env_param_vector, env_reset, env_step, fsum

WINDOW = {"data": "sp500", "start": "2008-01-01", "end": "2009-12-31"}

OPTIONS = [
    {},
    {"trade_penalty_mode": "per_trade", "observe_position": True},
    {"position_sizing_method": "all_in", "stop_loss_pct": 2.0, "take_profit_pct": 3.0},
    {"use_sharpe_ratio": False, "drawdown_penalty": 0.5, "transaction_fee_percent": 1.0},
    {"sharpe_window_size": 3, "risk_free_rate": 0.001, "window_size": 10,
     "initial_balance": 3000.0, "position_sizing_method": "all_in"},
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "defaults")
def test_compiled_steps_equal_the_env(options):
    env = TradingEnv({**WINDOW, **options})
    prm = env_param_vector(env)
    observations = env.unwrapped.market.observations
    close = np.asarray(env.unwrapped.market.close, dtype=np.float64)
    state = np.zeros(STATE_SIZE)
    window = np.zeros(env.params.sharpe_window_size)
    partials = np.zeros(env.params.sharpe_window_size)
    out = np.zeros(env.observation_space.shape, dtype=np.float32)
    rng = np.random.default_rng(3)
    for episode in range(2):
        obs, _ = env.reset()
        env_reset(state, prm, observations, close, out)
        np.testing.assert_array_equal(out, obs)
        # runs of held actions too, so stops fire and shorts may fail to cover
        actions = np.repeat(rng.integers(3, size=env.episode_length // 7 + 1), 7)
        for t in range(env.episode_length):
            obs, reward, terminated, _, _ = env.step(int(actions[t]))
            r, done = env_step(state, prm, observations, close, int(actions[t]), window,
                               partials, out)
            assert r == reward, (episode, t)
            assert done == terminated
            np.testing.assert_array_equal(out, obs, err_msg=f"step {t}")
        assert done


def test_fsum_is_math_fsum():
    rng = np.random.default_rng(0)
    scratch = np.zeros(64)
    for _ in range(2000):
        n = int(rng.integers(1, 40))
        x = rng.standard_normal(n) * 10.0 ** rng.integers(-20, 20, n)
        if rng.random() < 0.3:  # heavy cancellation
            x = np.concatenate([x, -x[: n // 2] * (1 + 1e-16)])[:40]
        assert fsum(x, len(x), scratch) == math.fsum(x)
    assert fsum(np.array([1e100, 1.0, -1e100, 1e-100]), 4, scratch) == math.fsum(
        [1e100, 1.0, -1e100, 1e-100])
