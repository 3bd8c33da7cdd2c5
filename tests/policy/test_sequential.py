"""The sequential reference loop, export/load and evaluation -- no Ray involved."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from rsc_policy import evaluate, export_policy, load_policy, train_sequential
from rsc_policy.agent.schedule import EpsilonSchedule


def test_sequential_follows_the_rule_and_is_reproducible(train_env_config):
    seen = []
    a = train_sequential(train_env_config, episodes=2, seed=4, on_episode_end=seen.append)
    b = train_sequential(train_env_config, episodes=2, seed=4)
    c = train_sequential(train_env_config, episodes=2, seed=5)
    n = a.env_steps
    assert n == 2 * a.episodes[0]["total_steps"] and len(a.episodes) == 2
    assert np.array_equal(a.actions, b.actions) and a.losses == b.losses
    assert not np.array_equal(a.actions, c.actions)
    for k, v in a.state_dict.items():
        assert torch.equal(v, b.state_dict[k])
    # one learning step per env step once the memory holds more than batch_size (32)
    assert [x is None for x in a.losses] == [k + 1 <= 32 for k in range(n)]
    assert a.num_updates == n - 32
    sched = EpsilonSchedule()
    assert a.epsilons.tolist() == [sched(k) for k in range(n)]
    assert len(seen) == 2 and "episode_log" in seen[0] and "pnl" in seen[0]
    # a learning agent does not end where it started
    assert a.num_updates > 0 and np.isfinite([x for x in a.losses if x is not None]).all()


def test_sequential_needs_a_stop_condition(train_env_config):
    with pytest.raises(ValueError, match="episodes= or env_steps="):
        train_sequential(train_env_config, seed=0)


def test_export_load_and_evaluate_without_ray(tmp_path, train_env_config, held_out_env_config):
    res = train_sequential(train_env_config, env_steps=300, seed=1)
    export_policy(res.agent, tmp_path / "pol", env_config=train_env_config)
    policy = load_policy(tmp_path / "pol")
    assert policy.metadata["obs_dim"] == 102 and policy.metadata["env_config"]["data"] == "sp500"
    rng = np.random.default_rng(0)
    for obs in rng.standard_normal((20, 102)).astype(np.float32):
        assert policy.act(obs) == res.agent.greedy(obs)
    report = evaluate(policy, held_out_env_config, n_random=10)
    for side in ("agent", "buy and hold"):
        for key in ("pnl", "total_return", "sharpe", "max_drawdown", "trades", "cagr"):
            assert np.isfinite(report["rows"][side][key]), (side, key)
    assert report["rows"]["buy and hold"]["exposure"] == 1.0
    again = evaluate(res.agent, held_out_env_config, n_random=10)
    assert again["rows"]["agent"]["total_return"] == pytest.approx(
        report["rows"]["agent"]["total_return"])


def test_reference_modules_do_not_import_ray():
    code = ("import sys, rsc_policy, rsc_policy.agent.sequential, rsc_policy.agent.update, "
            "rsc_policy.agent.replay, rsc_policy.agent.export, rsc_policy.evaluation.episode; "
            "assert 'ray' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ,
                   "PYTHONPATH": os.pathsep.join(sys.path)})


def test_load_policy_rejects_other_directories(tmp_path):
    with pytest.raises(FileNotFoundError, match="policy.json"):
        load_policy(tmp_path)
