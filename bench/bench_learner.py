"""One DQN learning step (batch 32, 102-dim obs, 1 torch thread): target <= 400 µs.

Run: ``PYTHONPATH=src python -m pytest bench/bench_learner.py --benchmark-only``
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rsc_policy.agent.loss import td_loss
from rsc_policy.agent.network import build_qnet
from rsc_policy.agent.replay import ReplayMemory
from rsc_policy.agent.update import DQNUpdate, transition_width

OBS, BATCH = 102, 32


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _memory() -> ReplayMemory:
    rng = np.random.default_rng(0)
    mem = ReplayMemory(2000, OBS, seed=0)
    n = 2000
    mem.add_batch(rng.standard_normal((n, OBS)).astype(np.float32), rng.integers(0, 3, n),
                  rng.standard_normal(n), rng.standard_normal((n, OBS)).astype(np.float32),
                  rng.random(n) < 0.01)
    return mem


def test_learning_step(benchmark):
    """The step both trainers run: DQNUpdate on a ready batch."""
    upd = DQNUpdate(build_qnet(OBS, 3, 0), build_qnet(OBS, 3, 0))
    batch = torch.from_numpy(_memory().sample(BATCH).copy())
    benchmark(upd, batch)
    assert upd.num_updates > 0


def test_learning_step_with_sampling(benchmark):
    """Replay sample of 32 + learning step: the per-env-step learning cost."""
    upd = DQNUpdate(build_qnet(OBS, 3, 0), build_qnet(OBS, 3, 0))
    mem = _memory()
    benchmark(lambda: upd(torch.from_numpy(mem.sample(BATCH))))


def test_autograd_reference_step(benchmark):
    """For comparison: the same step with autograd + torch.optim.Adam.step()."""
    upd = DQNUpdate(build_qnet(OBS, 3, 0), build_qnet(OBS, 3, 0))
    batch = torch.from_numpy(_memory().sample(BATCH).copy())

    def step() -> None:
        upd.params.grad.zero_()
        td_loss(upd.q, upd.target, batch, upd.gamma).backward()
        upd.optimizer.step()
        upd.after_step()

    benchmark(step)
    assert transition_width(OBS) == batch.shape[1]
