"""StrategyAgentConfig: builder style, defaults, validation errors naming the parameter."""

from __future__ import annotations

import pytest

from rsc_policy import StrategyAgentConfig


def test_defaults_are_the_agents():
    cfg = StrategyAgentConfig()
    assert cfg.agent_params() == {
        "learning_rate": 1e-3, "gamma": 0.95, "epsilon": 1.0, "epsilon_decay": 0.995,
        "epsilon_min": 0.01, "memory_size": 2000, "batch_size": 32, "target_update_freq": 100}
    assert cfg.updates_per_step == 1.0 and cfg.exact == "auto" and cfg.is_exact
    assert cfg.lr == cfg.learning_rate == 1e-3 and cfg.grad_clip is None
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
    ({"learning_rate": 0.0}, "lr"),
    ({"lr": -1.0}, "lr"),
    ({"lr": [[0, 1e-3], [1000, 1e-4]]}, "schedules are not supported"),
    ({"grad_clip": -1.0}, "grad_clip"),
    ({"td_error_loss_fn": "l1"}, "td_error_loss_fn"),
    ({"num_epochs": 3}, "num_epochs"),
    ({"train_batch_size_per_learner": 64}, "use batch_size"),
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


def test_exact_true_rejects_parallel_settings():
    with pytest.raises(ValueError, match="num_env_runners"):
        StrategyAgentConfig().training(exact=True).env_runners(num_env_runners=2).validate()
    with pytest.raises(ValueError, match="rollout_fragment_length"):
        StrategyAgentConfig().training(exact=True).env_runners(
            rollout_fragment_length=4).validate()
    StrategyAgentConfig().training(exact=False).env_runners(num_env_runners=2).validate()


def test_auto_is_exact_only_in_the_parity_configuration():
    from rsc_policy.rllib.config import AUTO_FRAGMENT

    plain = StrategyAgentConfig().env_runners(num_env_runners=2)
    plain.validate()  # the plainest parallel config is valid: throughput mode
    assert not plain.is_exact and plain.get_rollout_fragment_length(1) == AUTO_FRAGMENT
    assert not StrategyAgentConfig().env_runners(num_envs_per_env_runner=4).is_exact
    assert not StrategyAgentConfig().env_runners(rollout_fragment_length=8).is_exact
    assert StrategyAgentConfig().env_runners(rollout_fragment_length=1).is_exact


def test_lr_is_rllibs_name_and_learning_rate_its_alias():
    assert StrategyAgentConfig().training(lr=0.5).learning_rate == 0.5
    assert StrategyAgentConfig().training(learning_rate=0.2).lr == 0.2
    assert StrategyAgentConfig().training(lr=0.3).agent_params()["learning_rate"] == 0.3
    with pytest.raises(ValueError, match="disagree"):
        StrategyAgentConfig().training(lr=0.1, learning_rate=0.2)


@pytest.mark.parametrize(("model_config", "name"), [
    ({"conv_filters": [[16, 4, 2]]}, "conv_filters"),
    ({"use_lstm": True}, "use_lstm"),
    ({"fcnet_hiddens": [64, 0]}, "fcnet_hiddens"),
    ({"fcnet_activation": "gelu2"}, "fcnet_activation"),
])
def test_model_config_keys_the_network_does_not_use_are_refused(model_config, name):
    with pytest.raises(ValueError, match=name):
        StrategyAgentConfig().rl_module(model_config=model_config).validate()


def test_default_model_config_dataclass_is_honoured_not_refused():
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    cfg = StrategyAgentConfig().rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[32]))
    cfg.validate()
    assert cfg.model_config["fcnet_hiddens"] == [32]
    with pytest.raises(ValueError, match="use_lstm"):
        StrategyAgentConfig().rl_module(
            model_config=DefaultModelConfig(use_lstm=True)).validate()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"num_learners": 2}, "num_learners"),
    ({"num_learners": 1, "num_gpus_per_learner": 1}, "CUDA"),
])
def test_learner_settings_that_cannot_be_honoured_are_refused(kwargs, match):
    import torch

    if torch.cuda.is_available() and match == "CUDA":
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(ValueError, match=match):
        StrategyAgentConfig().learners(**kwargs).validate()


def test_bad_env_config_key_with_remote_runners_is_the_real_error(ray_local):
    # Before: RLlib's "IndexError: list index out of range" (the real error only in the
    # workers' logs). Now the env's own parsing runs on the driver in validate().
    from rsc_env import TradingEnv

    cfg = (StrategyAgentConfig()
           .environment(TradingEnv, env_config={"data": "sp500", "start": "2015-01-01",
                                                "end": "2015-12-31", "windw_size": 5})
           .env_runners(num_env_runners=2))
    with pytest.raises(ValueError, match=r"env_config: unknown env_config key\(s\) \['windw_"):
        cfg.build_algo()
    held_out = {"data": "sp500", "start": "2030-01-01"}
    cfg = (StrategyAgentConfig().environment(TradingEnv, env_config={"data": "sp500"})
           .env_runners(num_env_runners=2)
           .evaluation(evaluation_interval=1, evaluation_config={"env_config": held_out}))
    with pytest.raises(ValueError, match="evaluation_config env_config: .*usable rows"):
        cfg.validate()


def test_resources_beyond_the_cluster_are_one_error_not_a_hang(ray_local):
    # ray_local has 2 CPUs: 2 runners + 1 learner actor need 3 (before: build_algo() waited
    # forever). validate() is called by build_algo() before any actor is created.
    cfg = (StrategyAgentConfig().training(exact=False).env_runners(num_env_runners=2)
           .learners(num_learners=1))
    with pytest.raises(ValueError) as err:
        cfg.validate()
    msg = str(err.value)
    assert "asks for 3 CPUs (2 env runners x 1 CPU + 1 learners x 1 CPU)" in msg, msg
    assert "the Ray cluster has 2" in msg
    StrategyAgentConfig().training(exact=False).env_runners(num_env_runners=2).validate()
    cfg = StrategyAgentConfig().training(exact=False).env_runners(num_env_runners=1,
                                                                  num_cpus_per_env_runner=3)
    with pytest.raises(ValueError, match="asks for 3 CPUs"):
        cfg.validate()


def test_gpus_are_counted_against_what_exists():
    from rsc_policy.rllib.validation import resource_problem

    cfg = StrategyAgentConfig().training(exact=False).env_runners(
        num_env_runners=2, num_gpus_per_env_runner=1)
    problem = resource_problem(cfg, {"CPU": 8, "GPU": 1}, "the test cluster")
    assert problem and "asks for 2 GPUs (2 env runners x 1 GPU) but the test cluster has 1" \
        in problem
    assert resource_problem(cfg, {"CPU": 8, "GPU": 2}, "the test cluster") is None
