"""Agent learning options (defaults keep the team's rule): epsilon schedules, double-DQN and
Huber through ``train_sequential``, ``StrategyAgentConfig.training`` and rsc-train settings,
and the env options through the fused learning step."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from ray.rllib.core import DEFAULT_MODULE_ID

from rsc_env import TradingEnv
from rsc_policy import StrategyAgentConfig, train_sequential
from rsc_policy.agent.schedule import (
    EpisodeSchedule,
    EpsilonSchedule,
    LinearSchedule,
    build_schedule,
)
from rsc_policy.agent.sequential import AgentParams, StrategyAgent
from rsc_policy.rllib.sampling import group_episode_length
from rsc_policy.settings import load_settings

SHORT: dict[str, Any] = {"data": "sp500", "start": "2015-01-01", "end": "2015-02-28",
                         "position_sizing_method": "all_in"}
SEED = 5


@pytest.fixture(scope="module")
def episode_len() -> int:
    return TradingEnv(SHORT).episode_length


# ------------------------------------------------------------------ schedules by hand
def test_default_schedule_is_todays_multiplication():
    sched = build_schedule()
    assert isinstance(sched, EpsilonSchedule)
    assert AgentParams().epsilon_schedule == "multiplicative"
    eps, want = 1.0, []
    for _ in range(1200):
        want.append(eps)
        if eps > 0.01:
            eps *= 0.995
    assert [sched(k) for k in range(1200)] == want  # bit for bit
    assert isinstance(StrategyAgent(4).schedule, EpsilonSchedule)


def test_linear_schedule_by_hand():
    sched = build_schedule("linear", 1.0, 0.5, 0.1, fraction=0.5, total_steps=10)
    assert isinstance(sched, LinearSchedule) and sched.horizon == 5
    want = [1.0, 0.82, 0.64, 0.46, 0.28, 0.1, 0.1, 0.1]
    assert [sched(k) for k in range(8)] == pytest.approx(want, abs=1e-15)
    assert sched(4) > 0.1 and sched(5) == 0.1 and sched(10**9) == 0.1  # min exactly at 5


def test_per_episode_schedule_by_hand():
    counted = build_schedule("per_episode", 1.0, 0.5, 0.2)
    assert isinstance(counted, EpisodeSchedule)
    counted.episode_finished(3)  # an episode ended after selections 0, 1, 2
    counted.episode_finished(5)
    counted.episode_finished(9)
    counted.episode_finished(12)
    want = [1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.125, 0.125, 0.125, 0.125]
    assert [counted(k) for k in range(13)] == want  # stops once epsilon <= min (0.125)
    fixed = EpisodeSchedule(1.0, 0.5, 0.2, episode_length=4)  # k // 4 episodes
    assert [fixed(k) for k in range(10)] == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]


@pytest.mark.parametrize("bad, match", [
    ({"epsilon_schedule": "cosine"}, "epsilon_schedule must be one of"),
    ({"epsilon_schedule": "linear"}, "needs epsilon_total_steps"),
    ({"epsilon_fraction": 0.0}, "epsilon_fraction"),
    ({"epsilon_total_steps": 0}, "epsilon_total_steps"),
    ({"td_error_loss_fn": "l1"}, "td_error_loss_fn"),
])
def test_bad_options_name_the_setting(bad, match):
    with pytest.raises(ValueError, match=match):
        AgentParams(**bad)
    with pytest.raises(ValueError, match=match):
        StrategyAgentConfig().training(**bad).validate()


# ------------------------------------------------------------------ train_sequential
def test_train_sequential_default_epsilons_unchanged(episode_len):
    res = train_sequential(SHORT, env_steps=100, seed=SEED)
    sched = EpsilonSchedule()
    assert res.epsilons.tolist() == [sched(k) for k in range(100)]


def test_train_sequential_linear_reaches_min_at_the_fraction():
    res = train_sequential(SHORT, env_steps=200, seed=SEED, epsilon_schedule="linear",
                           epsilon_fraction=0.25, epsilon_min=0.05)
    eps = res.epsilons
    assert res.agent.params.epsilon_total_steps == 200 and res.agent.schedule.horizon == 50
    assert eps[0] == 1.0 and eps[49] > 0.05 and (eps[50:] == 0.05).all()
    np.testing.assert_allclose(eps[:50], 1.0 - 0.95 * np.arange(50) / 50, rtol=0, atol=1e-15)


def test_train_sequential_linear_over_episodes(episode_len):
    res = train_sequential(SHORT, episodes=2, seed=SEED, epsilon_schedule="linear",
                           epsilon_fraction=1.0)
    assert res.agent.schedule.horizon == 2 * episode_len == res.env_steps
    assert res.epsilons[-1] > 0.01 and res.agent.epsilon == 0.01


def test_train_sequential_per_episode_decays_at_episode_ends(episode_len):
    res = train_sequential(SHORT, episodes=3, seed=SEED, epsilon_schedule="per_episode",
                           epsilon_decay=0.9)
    want = [1.0] * episode_len + [0.9] * episode_len + [0.9 * 0.9] * episode_len
    assert res.epsilons.tolist() == want and len(res.episodes) == 3
    assert res.agent.epsilon == 0.9 * 0.9 * 0.9


def test_double_q_and_huber_reach_the_sequential_learning_step():
    base = train_sequential(SHORT, env_steps=120, seed=SEED)
    for option in ({"double_q": True}, {"td_error_loss_fn": "huber"}):
        res = train_sequential(SHORT, env_steps=120, seed=SEED, **option)
        assert res.actions[:33].tolist() == base.actions[:33].tolist()  # before learning
        first = next(i for i, x in enumerate(res.losses) if x is not None)
        if "td_error_loss_fn" in option:
            assert res.losses[first] != base.losses[first]  # Huber from the first step
        assert any(not torch.equal(v, base.state_dict[k]) for k, v in res.state_dict.items())
    assert train_sequential(SHORT, env_steps=120, seed=SEED, double_q=True).agent.update \
        ._double_q is True


def test_observe_position_env_trains_with_the_fused_step():
    env_cfg = {**SHORT, "observe_position": True, "trade_penalty_mode": "per_trade"}
    res = train_sequential(env_cfg, env_steps=80, seed=SEED)
    assert res.agent.q[0].in_features == TradingEnv(env_cfg).observation_space.shape[0] \
        == TradingEnv(SHORT).observation_space.shape[0] + 2
    assert res.num_updates == 80 - 32 and all(np.isfinite(x) for x in res.losses[32:])


# ------------------------------------------------------------------ rsc-train settings
def test_settings_pass_the_options_to_both_trainers(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('env_steps = 300\n[agent]\nepsilon_schedule = "linear"\n'
                    'epsilon_fraction = 0.5\ndouble_q = true\ntd_error_loss_fn = "huber"\n'
                    '[env]\ntrade_penalty_mode = "per_trade"\nobserve_position = true\n')
    s = load_settings(path, {})
    assert s.agent.epsilon_total_steps == 300  # the run's env_steps
    assert s.env.trade_penalty_mode == "per_trade" and s.env.observe_position is True
    params = AgentParams(**s.agent.model_dump(exclude={"updates_per_step"}))  # the seq path
    assert params.double_q and params.td_error_loss_fn == "huber"
    cfg = StrategyAgentConfig().training(exact=False, **s.agent.model_dump())  # the RLlib path
    cfg.validate()
    assert cfg.agent_params()["epsilon_schedule"] == "linear"
    assert load_settings(None, {}).agent.epsilon_schedule == "multiplicative"
    bad = tmp_path / "bad.toml"
    bad.write_text('[agent]\nepsilon_schedule = "cosine"\n')
    with pytest.raises(ValueError, match="agent.epsilon_schedule: Input should be"):
        load_settings(bad, {})


def test_config_builds_the_schedule_the_module_uses():
    cfg = StrategyAgentConfig().training(epsilon_schedule="linear", epsilon_total_steps=40,
                                         epsilon_fraction=0.5, epsilon_min=0.2)
    sched = cfg.build_epsilon_schedule()
    assert isinstance(sched, LinearSchedule) and sched.horizon == 20 and sched(20) == 0.2
    assert isinstance(StrategyAgentConfig().build_epsilon_schedule(), EpsilonSchedule)
    per_ep = StrategyAgentConfig().training(epsilon_schedule="per_episode", epsilon_decay=0.5)
    assert per_ep.build_epsilon_schedule(episode_length=10)(25) == 0.25


def test_agent_params_hold_only_options_set():
    assert set(StrategyAgentConfig().agent_params()) == {
        "learning_rate", "gamma", "epsilon", "epsilon_decay", "epsilon_min", "memory_size",
        "batch_size", "target_update_freq"}
    got = StrategyAgentConfig().training(double_q=True).agent_params()
    assert got["double_q"] is True and "epsilon_schedule" not in got


# ------------------------------------------------------------------ RLlib exact parity
CASES = {
    "linear_double_huber_obs": (
        {"epsilon_schedule": "linear", "epsilon_fraction": 0.5, "epsilon_total_steps": 150,
         "double_q": True, "td_error_loss_fn": "huber"},
        {"observe_position": True, "trade_penalty_mode": "per_trade"}),
    "per_episode": ({"epsilon_schedule": "per_episode", "epsilon_decay": 0.8}, {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rllib_exact_mode_equals_sequential_with_options(rsc_env_name, learner_of, case,
                                                         episode_len):
    agent, env = CASES[case]
    env_cfg = {**SHORT, **env}
    n = 3 * episode_len + 7  # three episode ends
    algo = (StrategyAgentConfig().environment(rsc_env_name, env_config=env_cfg)
            .training(gamma=0.9, target_update_freq=20, **agent)
            .reporting(min_sample_timesteps_per_iteration=n).debugging(seed=SEED)).build_algo()
    try:
        result = algo.train()
        seq = train_sequential(env_cfg, env_steps=n, seed=SEED, gamma=0.9,
                               target_update_freq=20, **agent)
        learner = learner_of(algo)
        mem = learner.memory.transitions()
        assert mem["obs"].shape[1] == TradingEnv(env_cfg).observation_space.shape[0]
        assert np.array_equal(mem["actions"], seq.actions)
        assert np.array_equal(mem["rewards"], seq.rewards.astype(np.float32))
        module = algo.env_runner_group.local_env_runner.module
        assert [module.schedule(k) for k in range(n)] == seq.epsilons.tolist()
        # the logged epsilon is the configured schedule's (not the default multiplication)
        assert result["rsc"]["epsilon"] == module.schedule(algo.global_env_steps)
        assert result["rsc"]["epsilon"] == seq.agent.schedule(n)
        q = learner.module[DEFAULT_MODULE_ID].q
        for name, value in q.state_dict().items():
            assert torch.equal(value, seq.state_dict[name])
        if case == "per_episode":
            assert seq.epsilons[-1] == 0.8**3 and module.schedule.episode_length == episode_len
            assert group_episode_length(algo.env_runner_group) == episode_len
    finally:
        algo.stop()


def test_per_episode_on_remote_runners_reads_the_episode_length(rsc_env_name, episode_len):
    """Throughput mode: each remote runner's module learns the env's fixed episode length
    from its vector env, and epsilon follows global steps // episode_length."""
    algo = (StrategyAgentConfig().environment(rsc_env_name, env_config=SHORT)
            .env_runners(num_env_runners=1, num_envs_per_env_runner=2,
                         rollout_fragment_length=16)
            .training(exact=False, epsilon_schedule="per_episode", epsilon_decay=0.5)
            .reporting(min_sample_timesteps_per_iteration=64).debugging(seed=SEED)).build_algo()
    try:
        algo.train()
        lengths = algo.env_runner_group.foreach_env_runner(
            lambda runner: runner.module.schedule.episode_length, local_env_runner=False)
        assert lengths == [episode_len]
        sched = algo.env_runner_group.foreach_env_runner(
            lambda runner: [runner.module.schedule(k) for k in (0, episode_len - 1,
                                                                episode_len, 3 * episode_len)],
            local_env_runner=False)
        assert sched == [[1.0, 1.0, 0.5, 0.125]]
        assert group_episode_length(algo.env_runner_group) == episode_len
    finally:
        algo.stop()
