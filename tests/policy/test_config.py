"""StrategyAgentConfig: builder style, defaults, validation errors naming the parameter."""

from __future__ import annotations

import pytest

from rsc_policy import StrategyAgentConfig


def test_defaults_are_the_agents():
    cfg = StrategyAgentConfig()
    assert cfg.agent_params() == {
        "learning_rate": 1e-3, "gamma": 0.95, "epsilon": 1.0, "epsilon_decay": 0.995,
        "epsilon_min": 0.01, "memory_size": 2000, "batch_size": 32, "target_update_freq": 100}
    assert cfg.updates_per_step == 1.0 and cfg.exact is True
    assert cfg.framework_str == "torch" and cfg.enable_rl_module_and_learner
    assert cfg.num_env_runners == 0 and cfg.get_rollout_fragment_length() == 1


def test_auto_fragment_is_one_step_exact_and_a_real_fragment_in_throughput_mode():
    from rsc_policy.rllib.config import AUTO_FRAGMENT

    assert StrategyAgentConfig().rollout_fragment_length == "auto"
    fast = StrategyAgentConfig().training(exact=False).env_runners(num_env_runners=2)
    assert fast.get_rollout_fragment_length(1) == AUTO_FRAGMENT > 1
    assert fast.env_runners(rollout_fragment_length=8).get_rollout_fragment_length(1) == 8
    StrategyAgentConfig().env_runners(rollout_fragment_length=1).validate()  # explicit 1: exact


def test_builder_style_sets_parameters():
    cfg = (StrategyAgentConfig()
           .training(learning_rate=5e-4, gamma=0.9, target_update_freq=50, batch_size=16,
                     updates_per_step=0.5, exact=False)
           .env_runners(num_env_runners=2, num_envs_per_env_runner=4, rollout_fragment_length=8)
           .debugging(seed=11))
    assert (cfg.learning_rate, cfg.gamma, cfg.target_update_freq, cfg.batch_size) == (
        5e-4, 0.9, 50, 16)
    assert cfg.seed == 11 and cfg.model_config["seed"] == 11
    cfg.validate()


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"gamma": 1.5}, "gamma"),
    ({"epsilon": -0.1}, "epsilon"),
    ({"epsilon_decay": 0.0}, "epsilon_decay"),
    ({"epsilon_min": 2.0}, "epsilon_min"),
    ({"memory_size": 0}, "memory_size"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"target_update_freq": 0}, "target_update_freq"),
    ({"updates_per_step": -1.0}, "updates_per_step"),
    ({"batch_size": 64, "memory_size": 32}, "batch_size"),
    ({"exact": "yes"}, "exact"),
])
def test_validation_names_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        StrategyAgentConfig().training(**kwargs).validate()


def test_exact_mode_rejects_parallel_settings():
    with pytest.raises(ValueError, match="num_env_runners"):
        StrategyAgentConfig().env_runners(num_env_runners=2).validate()
    with pytest.raises(ValueError, match="rollout_fragment_length"):
        StrategyAgentConfig().env_runners(rollout_fragment_length=4).validate()
    StrategyAgentConfig().training(exact=False).env_runners(num_env_runners=2).validate()
