"""Timed training runs for ``rsc-bench seq-vs-par``: RLlib (exact or throughput mode) and
the sequential loop, measured the same way. (The ad-hoc timing script that used to sit here
is ``bench/throughput_runs.py``.)"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rsc_policy.agent.sequential import train_sequential
from rsc_policy.rllib.config import StrategyAgentConfig


@dataclass
class RunResult:
    """Wall time and rates of one training run (build time excluded)."""

    mode: str
    env_steps: int
    learning_steps: int
    wall_time_s: float
    build_time_s: float = 0.0
    time_split_s: dict[str, float] = field(default_factory=dict)
    iterations: int = 0
    algo: Any = None

    @property
    def env_steps_per_s(self) -> float:
        return self.env_steps / self.wall_time_s

    @property
    def updates_per_s(self) -> float:
        return self.learning_steps / self.wall_time_s

    def summary(self) -> dict[str, Any]:
        return {"mode": self.mode, "env_steps": self.env_steps,
                "learning_steps": self.learning_steps, "wall_time_s": self.wall_time_s,
                "build_time_s": self.build_time_s, "env_steps_per_s": self.env_steps_per_s,
                "updates_per_s": self.updates_per_s, "time_split_s": self.time_split_s}


def run_parallel(config: StrategyAgentConfig, env_steps: int, *, keep_algo: bool = False
                 ) -> RunResult:
    """Build ``config``, train until ``env_steps`` env steps, and time it.

    The iteration size is ``config.min_sample_timesteps_per_iteration``. Ray must be
    initialised by the caller (or is started by RLlib with defaults).
    """
    t0 = time.perf_counter()
    from rsc_policy.common import FilteredStderr

    with FilteredStderr():  # Ray's line about RLlib's own config ref, see common.py
        algo = config.build_algo()
    build = time.perf_counter() - t0
    split = {"sample_s": 0.0, "learn_step_s": 0.0, "sync_s": 0.0, "log_s": 0.0}
    iterations = 0
    start = time.perf_counter()
    while algo.global_env_steps < env_steps:
        result = algo.train()
        iterations += 1
        for key in split:
            split[key] += float(result.get("timers", {}).get(key, 0.0))
    wall = time.perf_counter() - start
    steps = algo.num_learning_steps
    mode = "exact" if config.is_exact else f"throughput({config.num_env_runners}x" \
        f"{config.num_envs_per_env_runner})"
    out = RunResult(mode, algo.global_env_steps, steps, wall, build, split, iterations,
                    algo if keep_algo else None)
    if not keep_algo:
        algo.stop()
    return out


def run_sequential(env_config: Any, env_steps: int, *, seed: int = 0, **agent_params: Any
                   ) -> RunResult:
    """The plain loop for the same number of env steps."""
    res = train_sequential(env_config, env_steps=env_steps, seed=seed, **agent_params)
    return RunResult("sequential", res.env_steps, res.num_updates, res.wall_time_s)
