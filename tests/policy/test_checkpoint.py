"""Checkpoints restore networks, optimizer, replay memory and counters; export for serving."""

from __future__ import annotations

import numpy as np
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.core import DEFAULT_MODULE_ID

from rsc_policy import StrategyAgentConfig, export_policy, load_policy
from rsc_policy.rllib.algorithm import SAMPLE_TAG

EPISODE_LEN = 251


def _config(env_name, env_config):
    # Iterations end on episode boundaries: the env's position inside an episode is not
    # part of a checkpoint (a restored runner starts a fresh episode), see the README.
    return (StrategyAgentConfig()
            .environment(env_name, env_config=env_config)
            .training(memory_size=300, target_update_freq=40)
            .reporting(min_sample_timesteps_per_iteration=EPISODE_LEN)
            .debugging(seed=5))


def _state(algo, learner_of):
    learner = learner_of(algo)
    module = learner.module[DEFAULT_MODULE_ID]
    return module.q.state_dict(), module.target.state_dict(), learner


def test_save_restore_continues_like_uninterrupted(rsc_env_name, train_env_config, tmp_path,
                                                  learner_of):
    straight = _config(rsc_env_name, train_env_config).build_algo()
    first = _config(rsc_env_name, train_env_config).build_algo()
    try:
        for _ in range(4):
            straight.train()
        for _ in range(2):
            first.train()
        path = first.save_to_path(tmp_path / "ckpt")
    finally:
        first.stop()
    restored = Algorithm.from_checkpoint(path)
    try:
        assert restored.global_env_steps == 2 * EPISODE_LEN
        assert learner_of(restored).dqn.num_updates == 2 * EPISODE_LEN - 32
        assert restored.num_learning_steps == 2 * EPISODE_LEN - 32
        assert len(learner_of(restored).memory) == 300
        for _ in range(2):
            restored.train()
        q_a, t_a, learner_a = _state(straight, learner_of)
        q_b, t_b, learner_b = _state(restored, learner_of)
        for name in q_a:
            torch.testing.assert_close(q_a[name], q_b[name], rtol=0, atol=0)
            torch.testing.assert_close(t_a[name], t_b[name], rtol=0, atol=0)
        assert learner_a.dqn.num_updates == learner_b.dqn.num_updates
        opt_a = learner_a.dqn.optimizer.state[learner_a.dqn.params]
        opt_b = learner_b.dqn.optimizer.state[learner_b.dqn.params]
        assert torch.equal(opt_a["exp_avg_sq"], opt_b["exp_avg_sq"])
        mem_a, mem_b = learner_a.memory, learner_b.memory
        assert np.array_equal(mem_a.rows, mem_b.rows)
        assert mem_a.rng.bit_generator.state == mem_b.rng.bit_generator.state
        assert straight.global_env_steps == restored.global_env_steps == 4 * EPISODE_LEN

        export_policy(restored, tmp_path / "policy")
        policy = load_policy(tmp_path / "policy")
        assert policy.metadata["env_config"] == train_env_config
        assert policy.metadata["agent_params"]["memory_size"] == 300
        obs = np.random.default_rng(1).standard_normal((16, 102)).astype(np.float32)
        with torch.no_grad():
            expected = learner_b.module[DEFAULT_MODULE_ID].q(
                torch.from_numpy(obs)).argmax(1).numpy()
        assert np.array_equal(policy.act_batch(obs), expected)
        assert [policy.act(o) for o in obs] == expected.tolist()
    finally:
        restored.stop()
        straight.stop()


def _throughput(env_name, env_config, runners, **training):
    return (StrategyAgentConfig()
            .environment(env_name, env_config=env_config)
            .env_runners(num_env_runners=runners, num_envs_per_env_runner=2,
                         rollout_fragment_length=16)
            .training(memory_size=300, **training)
            .reporting(min_sample_timesteps_per_iteration=128)
            .debugging(seed=8))


def test_replay_is_its_own_checkpoint_component_and_can_be_left_out(
        rsc_env_name, train_env_config, tmp_path, learner_of):
    algo = _config(rsc_env_name, train_env_config).build_algo()
    lean = _config(rsc_env_name, train_env_config).training(
        store_buffer_in_checkpoints=False).build_algo()
    try:
        algo.train()
        lean.train()
        full_path = algo.save_to_path(tmp_path / "full")
        lean_path = lean.save_to_path(tmp_path / "lean")
    finally:
        algo.stop()
        lean.stop()
    replay_dir = "learner_group/learner/replay"
    assert (tmp_path / "full" / replay_dir).is_dir()
    assert not (tmp_path / "lean" / replay_dir).exists()
    size = lambda p: sum(f.stat().st_size for f in p.rglob("*") if f.is_file())  # noqa: E731
    rows_bytes = EPISODE_LEN * (2 * 102 + 3) * 4  # the stored transitions, float32
    assert size(tmp_path / "full") - size(tmp_path / "lean") >= rows_bytes
    restored = Algorithm.from_checkpoint(full_path)
    restored_lean = Algorithm.from_checkpoint(lean_path)
    try:
        assert len(learner_of(restored).memory) == EPISODE_LEN
        assert len(learner_of(restored_lean).memory) == 0
        assert restored_lean.global_env_steps == EPISODE_LEN
        learned = restored_lean.num_learning_steps
        restored_lean.train()  # refills its memory first, then learns again
        assert len(learner_of(restored_lean).memory) == EPISODE_LEN
        assert restored_lean.num_learning_steps == learned + EPISODE_LEN - 32
    finally:
        restored.stop()
        restored_lean.stop()


def test_throughput_checkpoint_restores_into_another_runner_count_with_new_settings(
        rsc_env_name, train_env_config, tmp_path, learner_of):
    two = _throughput(rsc_env_name, train_env_config, 2).build_algo()
    try:
        for _ in range(2):
            two.train()
        steps, learned = two.global_env_steps, two.num_learning_steps
        path = two.save_to_path(tmp_path / "ckpt")
        saved_rows = learner_of(two).memory.transitions()["obs"]
    finally:
        two.stop()
    # One runner, another lr and a smaller memory: both are applied, not silently kept.
    one = _throughput(rsc_env_name, train_env_config, 1, lr=0.02).training(
        memory_size=200).build_algo()
    try:
        one.restore_from_path(path)
        learner = learner_of(one)
        assert learner.current_lr() == 0.02
        assert len(learner.memory) == 200 and learner.memory.resized == (300, 200)
        np.testing.assert_array_equal(learner.memory.transitions()["obs"], saved_rows[-200:])
        assert one.global_env_steps == steps and one.num_learning_steps == learned
        result = one.train()
        assert one.global_env_steps >= steps + 128
        assert result["rsc"]["lr"] == 0.02
    finally:
        one.stop()


def test_fragments_in_flight_at_restore_are_discarded(rsc_env_name, train_env_config, tmp_path,
                                                      learner_of):
    algo = _throughput(rsc_env_name, train_env_config, 2).build_algo()
    try:
        algo.train()
        path = algo.save_to_path(tmp_path / "ckpt")
        saved_steps = algo.global_env_steps
        algo.train()  # leaves each runner with a request in flight
        assert algo.env_runner_group.num_in_flight_async_reqs(tag=SAMPLE_TAG) >= 1
        algo.restore_from_path(path)
        assert algo.env_runner_group.num_in_flight_async_reqs(tag=SAMPLE_TAG) == 0
        assert algo.global_env_steps == saved_steps
        assert len(learner_of(algo).memory) == min(saved_steps, 300)
        algo.train()  # only fragments requested after the restore are ingested
        assert algo.global_env_steps >= saved_steps + 128
    finally:
        algo.stop()
