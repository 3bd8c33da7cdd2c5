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


def random_transitions(env_config: dict, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` transitions of a uniformly random policy on the real env, as learner columns."""
    env, rng = TradingEnv(env_config), np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    cols: dict[str, list] = {"obs": [], "actions": [], "rewards": [], "new_obs": [],
                             "terminateds": []}
    for _ in range(n):
        action = int(rng.integers(3))
        nxt, reward, term, trunc, _ = env.step(action)
        for key, value in zip(cols, (obs, action, reward, nxt, term), strict=True):
            cols[key].append(value)
        obs = env.reset()[0] if term or trunc else nxt
    return {k: np.asarray(v, dtype=np.float32) for k, v in cols.items()}


def test_generic_autograd_path_equals_the_fast_step_on_the_default_shape(
        rsc_env_name, train_env_config, learner_of, adopt_state):
    # fused_learning_step=False sends the default shape through RLlib's generic path
    # (compute_loss_for_module, autograd, torch.optim.Adam, RLlib's clipping). Both learners
    # get the same transitions and sample the same batches. Lock-step: before each step the
    # fast learner takes the generic one's weights and Adam moments, and the step must agree
    # to 1e-6. (Free-running, float32 rounding differences of the two paths are amplified by
    # Adam where a gradient is ~0 and by ReLU pre-activations near 0, so trajectories drift
    # apart by ~1e-4 after a few hundred steps: chaos, not a different rule.)
    fast = _small(rsc_env_name, train_env_config).build_algo()
    generic = _small(rsc_env_name, train_env_config, fused_learning_step=False).build_algo()
    try:
        lf, lg = learner_of(fast), learner_of(generic)
        assert lf.uses_fast_step and not lg.uses_fast_step
        columns = random_transitions(train_env_config, 400)
        lf.add_transitions(columns)
        lg.add_transitions(columns)
        m_gen = lg.module[DEFAULT_MODULE_ID]
        adam = lg.get_optimizers_for_module(DEFAULT_MODULE_ID)[0][1]
        for i in range(150):  # crosses target syncs (target_update_freq)
            if i:
                adopt_state(lf.dqn, m_gen.q, m_gen.target, adam)
            (loss_fast,), (loss_gen,) = lf.learn(1), lg.learn(1)
            assert loss_fast == pytest.approx(loss_gen, rel=5e-6, abs=1e-9)
            m_fast = lf.module[DEFAULT_MODULE_ID]
            for a, b in zip([*m_fast.q.parameters(), *m_fast.target.parameters()],
                            [*m_gen.q.parameters(), *m_gen.target.parameters()],
                            strict=True):
                torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
        assert lf.target_sync_counter == lg.target_sync_counter == 150
        # and through the algorithm: the generic path trains (weights move, loss finite)
        before = [p.detach().clone() for p in m_gen.q.parameters()]
        result = generic.train()
        assert math.isfinite(result["rsc"]["loss"])
        assert any(not torch.equal(a, b) for a, b in zip(before, m_gen.q.parameters(),
                                                         strict=True))
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
