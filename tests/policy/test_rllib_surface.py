"""StrategyAgentAlgo as an RLlib user meets it: RLlib's defaults and names are honoured, the
learner is reached through LearnerGroup (local or a remote actor), evaluation runs inside
RLlib, failures surface, and the documented metric names are there from the first iteration."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ray.rllib.core import DEFAULT_MODULE_ID

from rsc_env import TradingEnv
from rsc_policy import StrategyAgentConfig
from rsc_policy.rllib.algorithm import DOCUMENTED_METRICS


def _small(env_name, env_config, **training):
    return (StrategyAgentConfig()
            .environment(env_name, env_config=env_config)
            .training(**training)
            .reporting(min_sample_timesteps_per_iteration=64)
            .debugging(seed=2))


def test_plainest_parallel_config_trains_on_data_it_never_saw(ray_local, train_env_config,
                                                              held_out_env_config):
    # The config, as an RLlib user writes it: no `exact`, no fragment length.
    algo = (StrategyAgentConfig()
            .environment(TradingEnv, env_config=train_env_config)
            .env_runners(num_env_runners=2)
            .evaluation(evaluation_interval=1,
                        evaluation_config={"env_config": held_out_env_config,
                                           "explore": False})
            .build_algo())
    try:
        assert not algo.config.is_exact
        result = algo.train()
        assert result["rsc"]["global_env_steps"] >= 256
        ev = result["evaluation"]
        assert ev["steps"] == 251  # the whole held-out year (2016), greedy
        for key in ("pnl", "total_return", "sharpe", "max_drawdown", "trades"):
            assert math.isfinite(ev[key]) and math.isfinite(ev["buy_and_hold"][key])
        # buy-and-hold of the whole balance: the index rose in 2016
        assert ev["buy_and_hold"]["total_return"] > 0.05
        assert ev["excess_return"] == pytest.approx(
            ev["total_return"] - ev["buy_and_hold"]["total_return"])
    finally:
        algo.stop()


def test_documented_metrics_exist_from_the_first_iteration(rsc_env_name, train_env_config):
    algo = _small(rsc_env_name, train_env_config).build_algo()
    try:
        result = algo.train()  # 64 steps: no 251-step episode has ended yet
        assert set(DOCUMENTED_METRICS) <= set(result["rsc"])
        assert math.isnan(result["rsc"]["episode_return_mean"])
        assert "episode_return_mean" in result["env_runners"]
        for _ in range(4):
            result = algo.train()
        assert math.isfinite(result["rsc"]["episode_return_mean"])
        assert result["rsc"]["episodes_total"] == 1
    finally:
        algo.stop()


def test_lr_is_honoured_by_the_optimizer(rsc_env_name, train_env_config, learner_of):
    algo = _small(rsc_env_name, train_env_config, lr=0.5).build_algo()
    try:
        assert learner_of(algo).current_lr() == 0.5
        algo.train()
        assert learner_of(algo).current_lr() == 0.5
    finally:
        algo.stop()


def test_fcnet_hiddens_and_activation_build_that_network(rsc_env_name, train_env_config,
                                                         learner_of):
    algo = (_small(rsc_env_name, train_env_config)
            .rl_module(model_config={"fcnet_hiddens": [32, 16, 8], "fcnet_activation": "tanh"})
            .build_algo())
    try:
        q = learner_of(algo).module[DEFAULT_MODULE_ID].q
        widths = [m.out_features for m in q if isinstance(m, torch.nn.Linear)]
        assert widths == [32, 16, 8, 3]
        assert any(isinstance(m, torch.nn.Tanh) for m in q)
        assert not learner_of(algo).uses_fast_step
        before = [p.detach().clone() for p in q.parameters()]
        algo.train()
        assert algo.num_learning_steps == 64 - 32
        assert any(not torch.equal(a, b) for a, b in zip(before, q.parameters(), strict=True))
    finally:
        algo.stop()


def test_generic_autograd_path_equals_the_fast_step_on_the_default_shape(
        rsc_env_name, train_env_config, learner_of):
    # fused_learning_step=False sends the default shape through RLlib's generic path
    # (autograd, torch.optim.Adam, RLlib's clipping); it must learn what the fused step learns.
    fast = _small(rsc_env_name, train_env_config).build_algo()
    generic = _small(rsc_env_name, train_env_config, fused_learning_step=False).build_algo()
    try:
        assert learner_of(fast).uses_fast_step and not learner_of(generic).uses_fast_step
        for _ in range(3):
            r_fast, r_gen = fast.train(), generic.train()
            assert r_fast["rsc"]["loss"] == pytest.approx(r_gen["rsc"]["loss"], rel=1e-4)
        # Adam divides by sqrt(v): where a gradient is ~0, float32 rounding differences of the
        # two paths are scaled up to ~lr-sized steps; the agent-level test (random batches,
        # tests/policy/test_fused.py) holds 1e-6 over 200 steps.
        q_fast = learner_of(fast).module[DEFAULT_MODULE_ID]
        q_gen = learner_of(generic).module[DEFAULT_MODULE_ID]
        for a, b in zip(q_fast.q.parameters(), q_gen.q.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-4)
        for a, b in zip(q_fast.target.parameters(), q_gen.target.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-4)
    finally:
        fast.stop()
        generic.stop()


def test_grad_clip_is_applied(rsc_env_name, train_env_config, learner_of):
    free = _small(rsc_env_name, train_env_config).build_algo()
    clipped = _small(rsc_env_name, train_env_config, grad_clip=1e-6,
                     grad_clip_by="value").build_algo()
    try:
        p0 = [p.detach().clone() for p in
              learner_of(clipped).module[DEFAULT_MODULE_ID].q.parameters()]
        free.train()
        clipped.train()
        q_free = learner_of(free).module[DEFAULT_MODULE_ID].q
        q_clip = learner_of(clipped).module[DEFAULT_MODULE_ID].q
        assert any(not torch.allclose(a, b) for a, b in
                   zip(q_free.parameters(), q_clip.parameters(), strict=True))
        # Adam normalises the step: clipping by value still moves weights, by at most lr/step
        moved = max(float((p - q).abs().max()) for p, q in zip(q_clip.parameters(), p0,
                                                                strict=True))
        assert 0 < moved <= 1e-3 * 32 * 1.01
    finally:
        free.stop()
        clipped.stop()


def test_min_train_timesteps_per_iteration_returns(rsc_env_name, train_env_config):
    algo = (_small(rsc_env_name, train_env_config)
            .reporting(min_sample_timesteps_per_iteration=16,
                       min_train_timesteps_per_iteration=32 * 40).build_algo())
    try:
        result = algo.train()  # needs >= 40 learning steps of batch 32: 72+ env steps
        assert algo.num_learning_steps >= 40
        assert result["learners"]["__all_modules__"]["num_env_steps_trained_lifetime"] >= 1280
    finally:
        algo.stop()


def test_remote_learner_actor_trains_like_the_local_learner(rsc_env_name, train_env_config,
                                                            learner_of):
    # num_learners=1: the learner (and its replay memory) is an actor; the losses and weights
    # equal the local learner's on the same data (same seeds, local runner sampling).
    def cfg(n):
        return (_small(rsc_env_name, train_env_config)
                .env_runners(num_envs_per_env_runner=2, rollout_fragment_length=16)
                .learners(num_learners=n))

    local, remote = cfg(0).build_algo(), cfg(1).build_algo()
    try:
        assert remote.learner_group.is_remote and local.learner_group.is_local
        for _ in range(3):
            r_local, r_remote = local.train(), remote.train()
            assert r_local["rsc"]["loss"] == r_remote["rsc"]["loss"]
        assert local.num_learning_steps == remote.num_learning_steps > 0
        w_local = local.learner_group.get_weights()[DEFAULT_MODULE_ID]
        w_remote = remote.learner_group.get_weights()[DEFAULT_MODULE_ID]
        for key in w_local:
            np.testing.assert_array_equal(w_local[key], w_remote[key])
    finally:
        local.stop()
        remote.stop()


class ExplodingEnv(TradingEnv):
    """Raises on the 20th step of every episode."""

    def step(self, action):
        if getattr(self, "_n", 0) >= 20:
            raise RuntimeError("market data feed broke")
        self._n = getattr(self, "_n", 0) + 1
        return super().step(action)


def test_env_error_in_remote_runners_surfaces_after_bounded_restarts(ray_local,
                                                                     train_env_config):
    algo = (StrategyAgentConfig()
            .environment(ExplodingEnv, env_config=train_env_config)
            .env_runners(num_env_runners=2, num_envs_per_env_runner=1, rollout_fragment_length=8)
            .fault_tolerance(max_num_env_runner_restarts=2)
            .reporting(min_sample_timesteps_per_iteration=64)
            .build_algo())
    try:
        with pytest.raises(RuntimeError, match=r"max_num_env_runner_restarts=2.*feed broke"):
            for _ in range(10):
                algo.train()
    finally:
        algo.stop()


@pytest.mark.parametrize(("error", "status"), [(RuntimeError, "failed"),
                                               (KeyboardInterrupt, "interrupted")])
def test_owned_db_run_ends_failed_or_interrupted_when_training_raised(
        rsc_env_name, train_env_config, tmp_path, error, status):
    from rsc_db import runs_frame

    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    algo = _small(rsc_env_name, train_env_config).database(url=url).build_algo()
    run_id = algo.db_run_id

    def explode(*_a, **_k):
        raise error("stop here")

    algo.training_step = explode  # the next iteration raises inside train()
    with pytest.raises(error):
        algo.train()
    algo.stop()
    runs = runs_frame(url)
    assert runs.set_index("run_id").loc[run_id, "status"] == status

    clean = _small(rsc_env_name, train_env_config).database(url=url).build_algo()
    clean.train()
    clean.stop()
    assert runs_frame(url).set_index("run_id").loc[clean.db_run_id, "status"] == "completed"
