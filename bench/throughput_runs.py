"""Timed runs, ad hoc: ``python bench/throughput_runs.py [env_steps]`` prints one JSON line
per configuration (sequential loop, exact mode, 2 runners x 16 envs). ``rsc-bench
seq-vs-par`` is the maintained comparison; both use :mod:`rsc_policy.cli.timing`."""

from __future__ import annotations

from rsc_policy.cli.timing import run_parallel, run_sequential
from rsc_policy.rllib.config import StrategyAgentConfig


def main(argv: list[str] | None = None) -> None:
    """Sequential vs exact vs throughput mode, one JSON line each."""
    import json
    import sys

    import ray

    import rsc_policy

    args = sys.argv[1:] if argv is None else argv
    steps = int(args[0]) if args else 8000
    env_config = {"data": "sp500", "start": "2010-01-01", "end": "2014-12-31",
                  "position_sizing_method": "all_in"}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    name = rsc_policy.register_env()
    base = StrategyAgentConfig().environment(name, env_config=env_config).debugging(seed=0)
    runs = [
        run_sequential(env_config, steps),
        run_parallel(base.copy().reporting(min_sample_timesteps_per_iteration=500),
                     min(steps, 3000)),
        run_parallel(base.copy().training(exact=False)
                     .env_runners(num_env_runners=2, num_envs_per_env_runner=16,
                                  rollout_fragment_length=16)
                     .reporting(min_sample_timesteps_per_iteration=4000), steps),
    ]
    for run in runs:
        print(json.dumps(run.summary()))
    ray.shutdown()


if __name__ == "__main__":
    main()
