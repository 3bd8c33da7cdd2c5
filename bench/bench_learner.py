"""The learning step (batch 32, 102-dim obs, 64-64 net, 1 thread) beside its GEMM floor, and
the act step. Targets (issue 11): learning step <= 90 us and <= 2x the floor measured in the
same run; greedy act <= 10 us.

Run: ``pytest bench/bench_learner.py --benchmark-only``. The floor: one step is two forward
passes (target on s', online on s) and one backward of the MLP on 32 rows, ~2.4 MFLOP in
matrix products; ``test_gemm_floor`` times exactly those products, the kernel's own calls
from compiled code (1 thread), nothing else (``test_gemm_floor_numpy``: as numpy matmuls).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rsc_policy.agent.kernels import greedy_actions, step_products
from rsc_policy.agent.loss import AutogradUpdate
from rsc_policy.agent.network import build_qnet
from rsc_policy.agent.replay import ReplayMemory
from rsc_policy.agent.update import DQNUpdate
from rsc_policy.cli.limits import gemm_products, step_matrices

OBS, HIDDEN, ACTIONS, BATCH = 102, 64, 3, 32


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


def flops() -> int:
    """Multiply-adds x 2 of the step's matrix products."""
    fwd = BATCH * (OBS * HIDDEN + HIDDEN * HIDDEN + HIDDEN * ACTIONS)
    bwd = BATCH * (HIDDEN * ACTIONS + 2 * HIDDEN * HIDDEN + HIDDEN * ACTIONS + HIDDEN * OBS)
    return 2 * (2 * fwd + bwd)


def test_gemm_floor(benchmark):
    """The step's matrix products alone (float32, the kernel's own calls from compiled
    code, ``step.c`` or BLAS): what the step cannot beat with these products."""
    benchmark(step_products, 1, *step_matrices(OBS, ACTIONS))
    benchmark.extra_info["mflop"] = flops() / 1e6


def test_gemm_floor_numpy(benchmark):
    """The same products as numpy matmuls: the floor plus numpy's per-call dispatch."""
    benchmark(gemm_products(OBS, ACTIONS))


def test_learning_step(benchmark):
    """The step both trainers run: the fused DQNUpdate on a ready batch."""
    upd = DQNUpdate(build_qnet(OBS, 3, 0), build_qnet(OBS, 3, 0))
    batch = torch.from_numpy(_memory().sample(BATCH).copy())
    benchmark(upd, batch)
    assert upd.num_updates > 0


def test_learning_step_with_sampling(benchmark):
    """Replay sample of 32 + learning step: the per-env-step learning cost."""
    upd = DQNUpdate(build_qnet(OBS, 3, 0), build_qnet(OBS, 3, 0))
    mem = _memory()
    benchmark(lambda: upd(mem.sample(BATCH)))


def test_autograd_reference_step(benchmark):
    """For comparison: the same step with autograd + torch.optim.Adam.step()."""
    upd = AutogradUpdate(build_qnet(OBS, 3, 0), build_qnet(OBS, 3, 0))
    batch = torch.from_numpy(_memory().sample(BATCH).copy())
    benchmark(upd, batch)


def test_greedy_act_fused(benchmark):
    """One observation's greedy action through the fused forward (the agents' act)."""
    q = build_qnet(OBS, 3, 0)
    weights = [p.detach().numpy() for p in q.parameters()]
    obs = np.random.default_rng(0).standard_normal((1, OBS)).astype(np.float32)
    benchmark(greedy_actions, obs, *weights)


def test_greedy_act_torch(benchmark):
    """For comparison: the same action through torch (inference mode)."""
    q = build_qnet(OBS, 3, 0)
    obs = torch.from_numpy(np.random.default_rng(0).standard_normal((1, OBS)).astype(np.float32))

    def act() -> int:
        with torch.inference_mode():
            return int(q(obs).argmax(dim=1))

    benchmark(act)
