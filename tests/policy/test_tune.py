"""Ray Tune on real data: ASHA on a held-out evaluation metric, and PBT whose exploits really
change the learner's learning rate (asserted on the optimizer through the reported rsc/lr)."""

from __future__ import annotations

import pytest
from ray import tune
from ray.tune.schedulers import ASHAScheduler, PopulationBasedTraining

from rsc_policy import StrategyAgentAlgo, StrategyAgentConfig

pytestmark = pytest.mark.slow


def _config(env_name, train, held_out):
    return (StrategyAgentConfig()
            .environment(env_name, env_config=train)
            .evaluation(evaluation_interval=1,
                        evaluation_config={"env_config": held_out, "explore": False})
            .reporting(min_sample_timesteps_per_iteration=64))


def test_asha_on_the_held_out_evaluation_metric(rsc_env_name, train_env_config,
                                                held_out_env_config, tmp_path):
    config = _config(rsc_env_name, train_env_config, held_out_env_config).training(
        lr=tune.grid_search([1e-3, 3e-3]))
    tuner = tune.Tuner(
        StrategyAgentAlgo, param_space=config,
        tune_config=tune.TuneConfig(metric="evaluation/sharpe", mode="max",
                                    scheduler=ASHAScheduler(max_t=3, grace_period=1)),
        run_config=tune.RunConfig(stop={"training_iteration": 3}, storage_path=str(tmp_path),
                                  verbose=0))
    results = tuner.fit()
    assert len(results) == 2 and not results.errors
    for r in results:
        history = r.metrics_dataframe
        assert history["evaluation/sharpe"].notna().all()
        assert (history["evaluation/steps"] == 251).all()
        assert (history["rsc/lr"] == r.config["lr"]).all()
    best = results.get_best_result()
    assert best.metrics["evaluation"]["sharpe"] == max(
        r.metrics["evaluation"]["sharpe"] for r in results)


def test_pbt_exploit_trains_with_the_new_lr_and_gamma(rsc_env_name, train_env_config,
                                                      held_out_env_config, tmp_path):
    config = (_config(rsc_env_name, train_env_config, held_out_env_config)
              .training(lr=tune.grid_search([1e-4, 3e-2]), gamma=0.9)
              .debugging(seed=1))
    pbt = PopulationBasedTraining(
        time_attr="training_iteration", perturbation_interval=2, quantile_fraction=0.5,
        resample_probability=0.0, synch=True,
        hyperparam_mutations={"lr": [1e-4, 1e-3, 3e-3, 1e-2, 3e-2], "gamma": [0.8, 0.9, 0.95]})
    tuner = tune.Tuner(
        StrategyAgentAlgo, param_space=config,
        tune_config=tune.TuneConfig(metric="rsc/loss", mode="min", scheduler=pbt),
        run_config=tune.RunConfig(stop={"training_iteration": 6}, storage_path=str(tmp_path),
                                  verbose=0,
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=2)))
    results = tuner.fit()
    assert len(results) == 2 and not results.errors
    exploited = 0
    for r in results:
        history = r.metrics_dataframe
        assert history["training_iteration"].max() == 6
        # every iteration trained with the lr of the config it ran under (after an exploit:
        # the new one, not the donor's restored Adam param group)
        assert (history["rsc/lr"] == history["config/lr"]).all()
        assert history["rsc/global_env_steps"].is_monotonic_increasing
        exploited += history["config/lr"].nunique() > 1 or history["config/gamma"].nunique() > 1
    assert exploited >= 1
