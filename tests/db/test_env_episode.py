"""Real episodes of rsc_env.TradingEnv logged and read back."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rsc_db import RunLogger, comparable_rows, run_tables
from rsc_env import TradingEnv

CONFIG = {"data": "sp500", "start": "2015-01-01", "end": "2015-12-31"}


def _episode(env: TradingEnv, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    while True:
        _, _, terminated, truncated, info = env.step(int(rng.integers(3)))
        if terminated or truncated:
            return info


@pytest.fixture(scope="module")
def env_infos() -> dict[str, list[dict[str, Any]]]:
    default = TradingEnv(CONFIG)
    all_in = TradingEnv(CONFIG, position_sizing_method="all_in", stop_loss_pct=2.0)
    return {
        "default": [_episode(default, 0)],
        "all_in": [_episode(all_in, s) for s in range(3)],
    }


def test_real_env_episodes_read_back(db_url: str, env_infos: dict[str, Any]) -> None:
    infos = env_infos["default"] + env_infos["all_in"]
    with RunLogger(db_url, parameters={"env": CONFIG}, run_id="env") as logger:
        for i, info in enumerate(infos):
            assert logger.log_episode(f"env-{i}", info)
    tables = run_tables(db_url, "env")
    eps = tables["episodes"]
    assert len(eps) == len(infos)
    total_ops = 0
    for row, info in zip(eps.itertuples(), infos, strict=True):
        for key in ("pnl", "sharpe_ratio", "max_drawdown", "win_rate", "total_reward",
                    "total_steps", "initial_portfolio_value", "final_portfolio_value"):  # fmt: skip
            assert getattr(row, key) == info[key], key
        steps = tables["steps"][tables["steps"].episode_id == row.episode_id]
        assert len(steps) == info["total_steps"] == len(info["episode_log"]["date"])
        assert math.isclose(steps["reward"].sum(), info["total_reward"], abs_tol=1e-9)
        first_bar = pd.Timestamp(info["episode_log"]["date"][0]).tz_localize("UTC")
        assert steps["timestamp"].iloc[0] == first_bar
        trades = tables["trades"][tables["trades"].episode_id == row.episode_id]
        assert len(trades) == len(info["completed_trades"])
        assert trades["pnl"].tolist() == [t["pnl"] for t in info["completed_trades"]]
        ops = tables["trading_operations"][
            tables["trading_operations"].episode_id == row.episode_id
        ]
        assert len(ops) == len(info["episode_log"]["operations"])
        total_ops += len(ops)
    assert total_ops > 0 and len(tables["trades"]) > 0  # the all-in episodes do trade


def test_real_env_rows_independent_of_logging_order(
    sqlite_url: str, env_infos: dict[str, Any]
) -> None:
    infos = env_infos["all_in"]
    for run_id, order in (("fwd", [0, 1, 2]), ("rev", [2, 0, 1])):
        with RunLogger(sqlite_url, parameters={}, run_id=run_id) as logger:
            for i in order:
                logger.log_episode(f"{run_id}-{i}", infos[i])
    a, b = comparable_rows(sqlite_url, "fwd"), comparable_rows(sqlite_url, "rev")
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)
