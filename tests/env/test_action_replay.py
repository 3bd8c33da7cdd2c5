"""The compiled replay of fixed action sequences equals stepping TradingEnv, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from rsc_env import TradingEnv
from rsc_env.action_replay import replay_actions

WINDOW = {"data": "sp500", "start": "2008-01-01", "end": "2009-06-30"}  # a crash: stops fire

SETTINGS = [
    {},
    {"position_sizing_method": "all_in"},
    {"position_sizing_method": "all_in", "transaction_fee_percent": 0.0},
    {"risk_fraction": 0.9, "transaction_fee_percent": 1.0, "stop_loss_pct": 2.0},
    {"position_sizing_method": "all_in", "stop_loss_pct": 3.0, "take_profit_pct": 4.0},
    {"take_profit_pct": 1.0, "initial_balance": 3000.0, "position_sizing_method": "all_in"},
]


def _stepped(env: TradingEnv, actions: np.ndarray) -> tuple[list, list, int, float]:
    env.reset()
    values, positions = [env.params.initial_balance], []
    for a in actions:
        _, _, term, _, info = env.step(int(a))
        values.append(env.portfolio_value)
        positions.append(env.position)
    ops = info["episode_log"]["operations"]
    traded = sum(abs(size) * price for _, _, size, price in ops)
    assert term
    return values, positions, len(info["completed_trades"]), traded


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: ",".join(s) or "defaults")
def test_replay_equals_stepping_the_env(settings):
    env = TradingEnv({**WINDOW, **settings})
    rng = np.random.default_rng(7)
    # random policies, and ones that hold a position long enough for stops and failed covers
    steps = env.episode_length
    held = np.repeat(rng.integers(3, size=(6, steps // 20 + 1)), 20, axis=1)[:, :steps]
    actions = np.concatenate([rng.integers(3, size=(6, steps)), held])
    runs = replay_actions(env, actions)
    for i, row in enumerate(actions):
        values, positions, trades, traded = _stepped(env, row)
        assert runs.values[i].tolist() == values
        assert runs.positions[i].tolist() == positions
        assert runs.trades[i] == trades
        assert runs.traded_value[i] == traded
    assert runs.trades.sum() > 0


def test_random_draws_replayed_equal_random_draws_stepped():
    from rsc_policy.evaluation.benchmarks import random_draws

    cfg = {**WINDOW, "stop_loss_pct": 2.0, "position_sizing_method": "all_in"}
    replayed = random_draws(cfg, 12)
    stepped = random_draws(cfg, 12, make_env=TradingEnv)
    assert replayed.keys() == stepped.keys()
    for key in replayed:
        np.testing.assert_array_equal(replayed[key], stepped[key], err_msg=key)


def test_replay_refuses_actions_of_the_wrong_length():
    env = TradingEnv(WINDOW)
    with pytest.raises(ValueError, match="one per step"):
        replay_actions(env, np.zeros((2, env.episode_length - 1), dtype=int))
    with pytest.raises(ValueError, match="0 \\(flat\\)"):
        replay_actions(env, np.full((1, env.episode_length), 3))
