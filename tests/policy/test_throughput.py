"""Throughput mode with remote runners and a killed runner being restored."""

from __future__ import annotations

import os

import pytest

from rsc_policy import StrategyAgentConfig


def _throughput_config(env_name, env_config, *, steps=400, seed=3):
    return (StrategyAgentConfig()
            .environment(env_name, env_config=env_config)
            .training(exact=False)
            .env_runners(num_env_runners=2, num_envs_per_env_runner=2, rollout_fragment_length=8)
            .reporting(min_sample_timesteps_per_iteration=steps)
            .debugging(seed=seed))


def test_throughput_mode_learns_at_the_configured_ratio(rsc_env_name, train_env_config,
                                                       learner_of):
    algo = _throughput_config(rsc_env_name, train_env_config).build_algo()
    try:
        result = algo.train()
        steps = algo.global_env_steps
        assert steps >= 400
        # updates_per_step=1.0: one learning step per transition beyond the first batch_size
        learner = learner_of(algo)
        assert learner.dqn.num_updates == algo.num_learning_steps == steps - 32
        assert len(learner.memory) == steps
        assert sorted(algo.env_runner_group.foreach_env_runner(
            lambda r: r.module.runner_index, local_env_runner=False)) == [1, 2]
        assert 0.01 < result["rsc"]["epsilon"] < 1.0
        assert result["learners"]["__all_modules__"]["num_learning_steps_lifetime"] == steps - 32
        assert {"sample_s", "learn_step_s", "sync_s"} <= set(result["timers"])
        assert result["rsc"]["policy_lag"] >= 0
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 400
        # runners explore differently: the two runners' actions are not identical
        acts = learner.memory.transitions()["actions"]
        assert len(set(acts.tolist())) == 3
    finally:
        algo.stop()


def test_throughput_mode_half_ratio(rsc_env_name, train_env_config):
    config = _throughput_config(rsc_env_name, train_env_config, steps=200).training(
        updates_per_step=0.5)
    algo = config.build_algo()
    try:
        algo.train()
        eligible = algo.global_env_steps - 32
        assert algo.num_learning_steps in (eligible // 2, eligible // 2 + 1)
    finally:
        algo.stop()


@pytest.mark.slow
def test_killed_env_runner_is_restored(rsc_env_name, train_env_config):
    config = _throughput_config(rsc_env_name, train_env_config, steps=200).fault_tolerance(
        restart_failed_env_runners=True)
    algo = config.build_algo()
    try:
        algo.train()
        group = algo.env_runner_group
        victim_id = group.healthy_env_runner_ids()[0]
        # the runner's process dies (mid-episode: its envs are inside their episodes); Ray
        # restarts the actor; the call's result is never awaited (the failure is seen by the
        # algorithm's next fetch, as with any crash)
        group.foreach_env_runner(lambda _runner: os._exit(1), local_env_runner=False,
                                 remote_worker_ids=[victim_id], return_obj_refs=True)
        before = algo.global_env_steps
        for _ in range(6):  # the failure is seen by a fetch, the restore happens next iteration
            algo.train()
            if group.num_remote_worker_restarts():
                break
        assert group.num_remote_worker_restarts() >= 1
        assert group.num_healthy_remote_workers() == 2
        after_restore = algo.global_env_steps
        algo.train()  # both runners, the restored one included, sample again
        assert algo.global_env_steps >= after_restore + 200 > before
        assert victim_id in group.healthy_env_runner_ids()
        assert group.num_remote_worker_restarts() >= 1
    finally:
        algo.stop()
