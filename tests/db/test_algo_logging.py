"""StrategyAgentAlgo with database logging: parallel runners, parity with the sequential
trainer, runner faults. Real Ray (the session's local instance), real SQLite and PostgreSQL."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, text

from rsc_db import RunLogger, comparable_rows
from rsc_env import TradingEnv
from rsc_policy import StrategyAgentConfig, train_sequential

ENV = {"data": "sp500", "start": "2015-07-01", "end": "2015-12-31",
       "position_sizing_method": "all_in"}  # fmt: skip


def _config(url: str | None, run_id: str | None = None, **training) -> StrategyAgentConfig:
    cfg = (
        StrategyAgentConfig()
        .environment(TradingEnv, env_config=ENV)
        .env_runners(num_env_runners=2, num_envs_per_env_runner=2, rollout_fragment_length=32)
        .training(exact=False, **training)
        .reporting(min_sample_timesteps_per_iteration=512)
        .debugging(seed=3)
        .fault_tolerance(restart_failed_env_runners=True)
    )
    return cfg.database(url=url, run_id=run_id) if url else cfg


def _db_episodes(url: str, run_id: str) -> pd.DataFrame:
    eng = create_engine(url)
    with eng.connect() as conn:
        eps = pd.read_sql(text(
            "SELECT e.episode_id, e.rllib_episode_id, e.total_steps, e.total_reward, "
            "COUNT(s.step_id) AS n_steps, SUM(s.reward) AS step_reward_sum "
            "FROM episodes e LEFT JOIN steps s ON s.episode_id = e.episode_id "
            "WHERE e.run_id = :r GROUP BY e.episode_id, e.rllib_episode_id, e.total_steps, "
            "e.total_reward"), conn, params={"r": run_id})
    eng.dispose()
    return eps


def _assert_complete(eps: pd.DataFrame) -> None:
    assert (eps["n_steps"] == eps["total_steps"]).all(), "an episode is missing step rows"
    np.testing.assert_allclose(eps["step_reward_sum"], eps["total_reward"], atol=1e-9)
    assert eps["rllib_episode_id"].is_unique


def test_two_runner_run_logs_exactly_the_finished_episodes(ray_local, db_url):
    algo = _config(db_url).build_algo()
    returns: list[float] = []
    try:
        for _ in range(4):
            algo.train()
            returns += algo.pop_episode_returns()
        run_id = algo.db_run_id
    finally:
        algo.stop()
    eps = _db_episodes(db_url, run_id)
    assert len(returns) >= 8 and len(eps) == len(returns)
    _assert_complete(eps)
    # the logged totals are the returns the runners reported, episode for episode
    np.testing.assert_allclose(sorted(eps["total_reward"]), sorted(returns), atol=1e-9)
    with create_engine(db_url).connect() as conn:
        status = conn.execute(text("SELECT status FROM training_runs WHERE run_id = :r"),
                              {"r": run_id}).scalar()
    assert status == "completed"


def test_db_rows_parity_sequential_vs_parallel(ray_local, tmp_path):
    """A frozen greedy policy (epsilon 0, memory_size == batch_size, so no learning step is
    ever due) acts identically in every runner and in the sequential loop: the two runs must
    log the same rows, table by table, up to ids and wall-clock times."""
    frozen = {"epsilon": 0.0, "epsilon_min": 0.0, "memory_size": 32, "batch_size": 32}
    par_url = f"sqlite:///{tmp_path / 'par.sqlite'}"
    algo = _config(par_url, **frozen).build_algo()
    try:
        algo.train()
        par_run = algo.db_run_id
    finally:
        algo.stop()
    n_par = len(_db_episodes(par_url, par_run))
    assert n_par >= 2
    seq_url = f"sqlite:///{tmp_path / 'seq.sqlite'}"
    with RunLogger(seq_url, parameters={"mode": "sequential"}) as logger:
        count = iter(range(10**6))
        res = train_sequential(ENV, episodes=n_par, seed=3,
                               on_episode_end=lambda info: logger.log_episode(
                                   f"seq-{next(count)}", info), **frozen)
        seq_run = logger.run_id
    assert res.num_updates == 0
    par, seq = comparable_rows(par_url, par_run), comparable_rows(seq_url, seq_run)
    for table in ("episodes", "steps", "trades", "trading_operations"):
        assert len(par[table]) == len(seq[table]) > 0 or table == "trades", table
        pd.testing.assert_frame_equal(par[table].reset_index(drop=True),
                                      seq[table].reset_index(drop=True), check_exact=False,
                                      rtol=1e-12, atol=1e-12, obj=table)


def test_killed_runner_leaves_no_partial_or_duplicate_episode(ray_local, tmp_path):

    url = f"sqlite:///{tmp_path / 'kill.sqlite'}"
    algo = _config(url).build_algo()
    returns: list[float] = []
    try:
        algo.train()
        returns += algo.pop_episode_returns()
        group = algo.env_runner_group
        victim_id = group.healthy_env_runner_ids()[0]
        # the runner's process dies (mid-episode: its envs are inside their episodes); Ray
        # restarts the actor; the call's result is never awaited (the failure is seen by the
        # algorithm's next fetch, as with any crash)
        group.foreach_env_runner(lambda _runner: os._exit(1), local_env_runner=False,
                                 remote_worker_ids=[victim_id], return_obj_refs=True)
        for _ in range(6):  # the failure is seen by a fetch, the restore happens next iteration
            algo.train()
            returns += algo.pop_episode_returns()
            if group.num_remote_worker_restarts():
                break
        assert group.num_healthy_remote_workers() == 2  # restarted
        for _ in range(2):  # both runners, the restored one included, finish more episodes
            algo.train()
            returns += algo.pop_episode_returns()
        run_id = algo.db_run_id
    finally:
        algo.stop()
    eps = _db_episodes(url, run_id)
    assert len(eps) == len(returns)
    _assert_complete(eps)
