"""Cost of full step-level database logging in a 2-runner StrategyAgentAlgo run.

Run: ``pytest bench/bench_logging.py --benchmark-only``. The same seeded run is timed with
logging off and with full step logging to SQLite; the overhead is the ratio of the two means
(printed, and stored in each benchmark's extra_info). Two workloads: ``default`` is rsc-train's
(2 runners x 8 envs, ten-year episodes of ~2,500 steps, all 16 finishing and being written
within the run), ``short`` is a stress case (2 x 4 envs, one-year episodes: ~10x more episode
writes per env step).
"""

from __future__ import annotations

import pytest

from rsc_env import TEAM_TRAINING_PARAMS, TradingEnv, prepare_market_data
from rsc_policy import StrategyAgentConfig

WORKLOADS = {  # name: (train period, envs per runner, env steps)
    "default": (("2005-01-01", "2014-12-31"), 8, 44_000),
    "short": (("2013-01-01", "2013-12-31"), 4, 12_000),
}
RESULTS: dict[tuple[str, str], float] = {}


@pytest.fixture(scope="module")
def ray_session():
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield


@pytest.mark.parametrize("logging", ["off", "steps"])
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_two_runner_training_with_and_without_logging(
    benchmark, ray_session, tmp_path, workload, logging
):
    (start, end), envs, steps = WORKLOADS[workload]
    df = prepare_market_data("sp500", start=start, end=end)
    env_config = {"df": df, **TEAM_TRAINING_PARAMS, "initial_balance": 100_000.0,
                  "step_info": False}
    algos = []
    totals = {"episodes": 0}

    def retire() -> None:  # stop the previous round's algo: its runners hold the 2 CPUs
        if algos:
            algo = algos.pop()
            totals["episodes"] += algo._db.episodes_logged if algo._db is not None else 0
            algo.stop()

    def build():
        retire()
        cfg = (
            StrategyAgentConfig()
            .environment(TradingEnv, env_config=env_config)
            .env_runners(
                num_env_runners=2, num_envs_per_env_runner=envs, rollout_fragment_length=64
            )
            .training(exact=False, gamma=0.9, target_update_freq=50)
            .reporting(min_sample_timesteps_per_iteration=2048)
            .debugging(seed=0)
        )
        if logging == "steps":
            db = tmp_path / f"log{len(algos)}.sqlite"
            cfg = cfg.database(url=f"sqlite:///{db}", log_steps=True)
        algos.append(cfg.build_algo())
        return (algos[-1],), {}

    def train(algo):
        while algo.global_env_steps < steps:
            algo.train()
        algo.flush_database()  # the timed run includes writing every finished episode

    benchmark.pedantic(train, setup=build, rounds=3, iterations=1)
    retire()
    episodes = totals["episodes"]
    benchmark.extra_info["episodes_logged"] = episodes
    RESULTS[workload, logging] = benchmark.stats.stats.mean
    benchmark.extra_info["env_steps_per_s"] = steps / benchmark.stats.stats.mean
    if logging == "steps" and (workload, "off") in RESULTS:
        overhead = RESULTS[workload, "steps"] / RESULTS[workload, "off"] - 1
        benchmark.extra_info["logging_overhead"] = overhead
        print(f"\n{workload}: full step logging overhead {overhead:+.1%} of training wall time "
              f"({episodes} episodes logged over the rounds)")
