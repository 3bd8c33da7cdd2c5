"""Cost of full step-level database logging in a 2-runner StrategyAgentAlgo run.

Run: ``pytest bench/bench_logging.py --benchmark-only -s``. Each round trains the same seeded
run once per variant, one after the other: logging off, full step logging to SQLite and (when
``RSC_TEST_PG_URL`` is set, e.g. by ``eval "$(bash scripts/pg-test-server.sh start)"``) to
PostgreSQL. Alternating within a round makes machine drift hit every variant alike; the
overhead of a variant is the median over rounds of its time / the round's "off" time - 1
(printed, and stored in extra_info with every timing). The benchmark's own statistic is the
time of a whole round.

Two workloads: ``default`` is rsc-train's (2 runners x 8 envs, ten-year episodes of ~2,500
steps, all 16 finishing and being written within the run), ``short`` is a stress case (2 x 4
envs, one-year episodes: ~10x more episode writes per env step).
"""

from __future__ import annotations

import os
import statistics
import time

import pytest

from rsc_env import TEAM_TRAINING_PARAMS, TradingEnv, prepare_market_data
from rsc_policy import StrategyAgentConfig

WORKLOADS = {  # name: (train period, envs per runner, env steps)
    "default": (("2005-01-01", "2014-12-31"), 8, 44_000),
    "short": (("2013-01-01", "2013-12-31"), 4, 12_000),
}
ROUNDS = 3


@pytest.fixture(scope="module")
def ray_session():
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield


def _variants(tmp_path) -> dict[str, str | None]:
    """Variant name -> database URL (None: logging off); SQLite gets a new file per call."""
    out: dict[str, str | None] = {
        "off": None, "sqlite": f"sqlite:///{tmp_path / f'log{time.monotonic_ns()}.sqlite'}"}
    if os.environ.get("RSC_TEST_PG_URL"):
        out["postgresql"] = os.environ["RSC_TEST_PG_URL"]  # each build opens a new run
    return out


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_full_step_logging_overhead_two_runners(benchmark, ray_session, tmp_path, workload):
    (start, end), envs, steps = WORKLOADS[workload]
    df = prepare_market_data("sp500", start=start, end=end)
    env_config = {"df": df, **TEAM_TRAINING_PARAMS, "initial_balance": 100_000.0,
                  "step_info": False}
    times: dict[str, list[float]] = {name: [] for name in _variants(tmp_path)}
    episodes: dict[str, int] = dict.fromkeys(times, 0)

    def timed_run(name: str, url: str | None) -> None:
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
        if url is not None:
            cfg = cfg.database(url=url, log_steps=True)
        algo = cfg.build_algo()
        try:
            t0 = time.perf_counter()
            while algo.global_env_steps < steps:
                algo.train()
            algo.flush_database()  # the timed run includes writing every finished episode
            times[name].append(time.perf_counter() - t0)
            episodes[name] += algo._db.episodes_logged if algo._db is not None else 0
        finally:
            algo.stop()  # its runners hold the 2 CPUs

    def one_round() -> None:
        for name, url in _variants(tmp_path).items():
            timed_run(name, url)

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    benchmark.extra_info["times_s"] = times
    benchmark.extra_info["episodes_logged"] = episodes
    print(f"\n{workload}: logging off {statistics.median(times['off']):.2f} s (median of "
          f"{ROUNDS}; {steps:,} env steps)")
    for name in times:
        if name == "off":
            continue
        ratios = [t / off - 1 for t, off in zip(times[name], times["off"], strict=True)]
        overhead = statistics.median(ratios)
        benchmark.extra_info[f"overhead_{name}"] = overhead
        print(f"{workload}: full step logging to {name}: overhead {overhead:+.1%} of training "
              f"wall time (rounds: {', '.join(f'{r:+.1%}' for r in ratios)}; "
              f"{episodes[name]} episodes logged)")
    assert all(episodes[name] > 0 for name in times if name != "off")
