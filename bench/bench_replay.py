"""Replay memory: sample 32 of 2000 without replacement; add one transition.

Run: ``PYTHONPATH=src python -m pytest bench/bench_replay.py --benchmark-only``
"""

from __future__ import annotations

import numpy as np

from rsc_policy.agent.replay import ReplayMemory

OBS = 102


def _full_memory() -> ReplayMemory:
    rng = np.random.default_rng(0)
    mem = ReplayMemory(2000, OBS, seed=0)
    for _ in range(2000):
        mem.add(rng.standard_normal(OBS).astype(np.float32), int(rng.integers(3)),
                float(rng.standard_normal()), rng.standard_normal(OBS).astype(np.float32), False)
    return mem


def test_sample_32(benchmark):
    mem = _full_memory()
    batch = benchmark(mem.sample, 32)
    assert batch.shape == (32, 2 * OBS + 3)


def test_add_one(benchmark):
    mem = _full_memory()
    obs = np.zeros(OBS, np.float32)
    benchmark(mem.add, obs, 1, 0.5, obs, False)
    assert len(mem) == 2000
