"""The population's compiled learning call (issue 16): one learning step of each of K = 16
members (batch 32, 102-dim obs, 64-64 net, replay of 2,000 each, batches drawn inside the
call), with 1 thread and with every core, beside the single agent's fused step.

Run: ``pytest bench/bench_population.py --benchmark-only``; divide a call's time by
``K x steps`` for the time per member learning step (the ``extra_info`` of each benchmark
holds it). Targets are in ``rsc-bench sweep`` (the whole training, env and acting included).
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from rsc_policy.agent.params import AgentParams
from rsc_policy.agent.population import Population

OBS, K, STEPS = 102, 16, 8


def _population() -> Population:
    pop = Population(OBS, [AgentParams(learning_rate=1e-3 / (1 + i % 4)) for i in range(K)],
                     list(range(K)))
    rng = np.random.default_rng(0)
    n = 2000
    members = np.repeat(np.arange(K), n)
    pop.remember(members, rng.standard_normal((K * n, OBS)), rng.integers(0, 3, K * n),
                 rng.standard_normal(K * n), rng.standard_normal((K * n, OBS)),
                 rng.random(K * n) < 0.01)
    return pop


@pytest.mark.parametrize("threads", [1, numba.config.NUMBA_NUM_THREADS])
def test_population_learn(benchmark, threads):
    pop = _population()
    pop.threads = threads
    steps = np.full(K, STEPS)
    pop.learn(steps)  # compiled, warm
    benchmark(pop.learn, steps)
    per_member_us = benchmark.stats.stats.median / (K * STEPS) * 1e6
    benchmark.extra_info["us_per_member_step"] = per_member_us
    benchmark.extra_info["member_steps_per_s"] = 1e6 / per_member_us
    assert np.isfinite(pop.params).all()
