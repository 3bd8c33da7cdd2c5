"""The machine's limits for the team's rule, measured in one run: what ``seq-vs-par`` compares
its throughput against.

Per env step the agent does one env step (``E``), one greedy/epsilon action (``A``) and, at one
learning step per env step, one replay sample + fused learning step (``L``). The sequential
trainer cannot beat ``1 / (E + A + L)``. With one learner and runners on ``n`` cores, the
learner is serial (``<= 1 / L``) and all work shares the cores (``<= n / (E + A + L)``): the
ceiling is the smaller of the two (transfers, Ray and the driver not counted, so real runs
stay below it). ``L`` beside its GEMM floor (the step's matrix products alone, float32, as the
kernel makes them) shows how far the step is from the hardware.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

HIDDEN, BATCH = 64, 32


def median_us(fn: Callable[[], Any], n: int, repeats: int = 5) -> float:
    """Median over ``repeats`` of the mean time of ``n`` calls, in microseconds."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t0) / n * 1e6)
    return float(np.median(times))


def step_matrices(obs_dim: int, n_actions: int = 3, rows: int = BATCH
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded float32 stand-ins of a learning step's batch (``rows`` x ``obs_dim``) and the
    64-64 Q-network's three weight matrices (what the products are timed on)."""
    rng = np.random.default_rng(1)
    return (rng.standard_normal((rows, obs_dim)).astype(np.float32),
            rng.standard_normal((HIDDEN, obs_dim)).astype(np.float32),
            rng.standard_normal((HIDDEN, HIDDEN)).astype(np.float32),
            rng.standard_normal((n_actions, HIDDEN)).astype(np.float32))


def gemm_products(obs_dim: int, n_actions: int = 3, rows: int = BATCH) -> Callable[[], None]:
    """The learning step's matrix products alone, as float32 BLAS matmuls on ``rows`` rows
    (one batch: 32; ``rows = K x 32`` stacks K members' batches into one product each): two
    forward passes (target on s', online on s) and one backward of the 64-64 MLP."""
    s, w1, w2, w3 = step_matrices(obs_dim, n_actions, rows)

    def products() -> None:
        for _ in range(2):
            h1 = s @ w1.T
            h2 = h1 @ w2.T
            q = h2 @ w3.T
        dh2 = q @ w3
        _ = q.T @ h2, dh2.T @ h1
        dh1 = dh2 @ w2
        _ = dh1.T @ s

    return products


def member_products_us(obs_dim: int, n_actions: int = 3, n: int = 4000) -> float:
    """Microseconds of one member's learning-step products on its own shapes (batch 32, one
    call per product, as :func:`rsc_policy.agent.kernels.member_step` makes them: two forward
    passes and one backward, ``step.c`` or BLAS, the weight transposes they read included),
    called from compiled code on one core, so neither Python's dispatch nor anything but the
    products is counted (median of 5 runs of ``n``)."""
    from threadpoolctl import threadpool_limits

    from rsc_policy.agent.kernels import step_products

    s, w1, w2, w3 = step_matrices(obs_dim, n_actions)

    times = []
    with threadpool_limits(limits=1, user_api="blas"):
        step_products(n, s, w1, w2, w3)  # compiled (or loaded), and the core warm
        for _ in range(5):
            t0 = time.perf_counter()
            step_products(n, s, w1, w2, w3)
            times.append((time.perf_counter() - t0) / n * 1e6)
    return float(np.median(times))


def one_core_us(fn: Callable[[], Any], n: int) -> float:
    """:func:`median_us` with BLAS held to one thread (threadpoolctl): OpenBLAS splits a
    product above ~2.6e5 multiply-adds over every core, so a K-member stacked product timed
    without the limit runs on both cores here and a "per core" rate read from it counts the
    cores twice (measured: 115 GFLOP/s "per core" against 72 on one thread)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return median_us(fn, n)


def measure_limits(env: Any, n_cores: int) -> dict[str, float]:
    """Time ``E``, ``A``, ``L`` and the GEMM floor on ``env`` (one thread); derive ceilings."""
    import torch

    from rsc_policy.agent.kernels import greedy_actions
    from rsc_policy.agent.network import build_qnet
    from rsc_policy.agent.replay import ReplayMemory
    from rsc_policy.agent.update import DQNUpdate

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        obs_dim = int(np.prod(env.observation_space.shape))
        n_actions = int(env.action_space.n)
        rng = np.random.default_rng(0)
        actions = rng.integers(0, n_actions, 4096)
        env.reset(seed=0)
        state = {"i": 0}

        def env_step() -> None:
            state["i"] += 1
            _, _, term, trunc, _ = env.step(int(actions[state["i"] % 4096]))
            if term or trunc:
                env.reset()

        env_us = median_us(env_step, 2000)
        q = build_qnet(obs_dim, n_actions, 0)
        weights = [p.detach().numpy() for p in q.parameters()]
        obs = rng.standard_normal((1, obs_dim)).astype(np.float32)
        act_us = median_us(lambda: greedy_actions(obs, *weights), 5000)
        mem = ReplayMemory(2000, obs_dim, seed=0)
        mem.add_batch(rng.standard_normal((2000, obs_dim)).astype(np.float32),
                      rng.integers(0, n_actions, 2000), rng.standard_normal(2000),
                      rng.standard_normal((2000, obs_dim)).astype(np.float32),
                      rng.random(2000) < 0.01)
        upd = DQNUpdate(build_qnet(obs_dim, n_actions, 0), build_qnet(obs_dim, n_actions, 0))
        learn_us = median_us(lambda: upd(mem.sample(BATCH)), 1000)
        # the GEMM floor: the kernel's own product calls from compiled code (as numpy matmuls,
        # gemm_products, they cost ~1.5x more here: numpy's per-call dispatch)
        floor_us = member_products_us(obs_dim, n_actions)
    finally:
        torch.set_num_threads(threads)
    return with_ceilings({"env_step_us": env_us, "act_us": act_us, "learn_step_us": learn_us,
                          "gemm_floor_us": floor_us}, n_cores)


def with_ceilings(costs: dict[str, float], n_cores: float) -> dict[str, float]:
    """``costs`` (``env_step_us``, ``act_us``, ``learn_step_us``, ...) plus the ceilings they
    imply on ``n_cores`` cores."""
    per_step = costs["env_step_us"] + costs["act_us"] + costs["learn_step_us"]
    return {**costs, "cores": n_cores, "sequential_ceiling": 1e6 / per_step,
            "parallel_ceiling": min(1e6 / costs["learn_step_us"], n_cores * 1e6 / per_step)}


def limits_text(lim: dict[str, float]) -> str:
    """One Markdown paragraph: the measured costs and the ceilings they imply."""
    return (f"Measured here, one thread: env step {lim['env_step_us']:.1f} µs, act "
            f"{lim['act_us']:.1f} µs, replay sample + learning step {lim['learn_step_us']:.0f} µs "
            f"(its GEMM floor {lim['gemm_floor_us']:.0f} µs, "
            f"{lim['learn_step_us'] / lim['gemm_floor_us']:.1f}x). At one learning step per env "
            f"step: sequential ceiling {lim['sequential_ceiling']:,.0f} env steps/s; "
            f"{lim['cores']:g}-core ceiling with one learner "
            f"{lim['parallel_ceiling']:,.0f} env steps/s (min of 1/learn and "
            f"cores/(env+act+learn); Ray, transfers and the driver not counted).")
