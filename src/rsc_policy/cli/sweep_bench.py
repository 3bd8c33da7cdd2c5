"""``rsc-bench sweep``: K member trainings three ways, and the FLOP limit, in one run.

The same K trainings (member ``i``: seed ``i``, a learning rate from a small grid, the team's
other settings; ``env_steps`` each, one learning step per env step) run

* (a) one after another with the sequential trainer (``train_sequential``);
* (b) the way ``rsc-tune`` ran them before populations: one sequential trainer per core
  (a process pool of ``cores`` workers);
* (c) as one population of ``StrategyAgentAlgo`` on its EnvRunner group (throughput mode);
* (d) as one population through ``train_population`` (the compiled per-member loop, no Ray);
* (e) as one population of ``StrategyAgentAlgo`` whose learner steps the members' envs itself
  (``population(rollout="learner")``: the loop of (d) inside RLlib's LearnerGroup).

Beside them, the FLOP limit of K members on this machine's cores: the learning step's
floating-point operations (:func:`step_flops`) against the GEMM rate of its own shapes timed
here on one core (stacked over members, so no per-call dispatch is counted), times the cores.
Each member's held-out Sharpe from (a) and (c) is listed side by side (the evaluation is not
in the timed part of any way). Writes
``DIR/sweep.json`` and ``DIR/sweep.md``.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from rsc_policy.cli.limits import BATCH, HIDDEN, gemm_products, member_products_us, one_core_us

LRS = (1e-3, 5e-4, 3e-4, 2e-4)


def step_flops(obs_dim: int, n_actions: int = 3, batch: int = BATCH, hidden: int = HIDDEN,
               double_q: bool = False) -> float:
    """Floating-point operations of one learning step's matrix products: the target forward
    on ``s'`` (and the online one with double-Q), the online forward on ``s`` and its
    backward (weight gradients and the two hidden-layer deltas)."""
    fwd = 2 * batch * (obs_dim * hidden + hidden * hidden + hidden * n_actions)
    bwd = 2 * batch * (hidden * n_actions * 2 + hidden * hidden * 2 + obs_dim * hidden)
    return float(fwd * (3 if double_q else 2) + bwd)


def gemm_gflops(obs_dim: int, members: int, n_actions: int = 3) -> float:
    """GFLOP/s of the step's matrix products on one core (BLAS held to one thread), with the
    batches of ``members`` members stacked into one product each (the arithmetic, not the
    per-call dispatch)."""
    rows = BATCH * max(members, 8)
    products = gemm_products(obs_dim, n_actions, rows)
    us = one_core_us(products, 200)
    return step_flops(obs_dim, n_actions) * rows / BATCH / (us * 1e3)


def member_list(k: int, seed: int = 0) -> list[dict[str, Any]]:
    """The benchmark's K members: seed ``seed + i``, learning rate ``LRS[i % 4]``."""
    return [{"seed": seed + i, "agent": {"learning_rate": LRS[i % len(LRS)]},
             "name": f"m{i}"} for i in range(k)]


def _train_one(args: tuple[dict[str, Any], dict[str, Any], int]) -> np.ndarray:
    """One sequential training (a process-pool task); returns the trained flat weights."""
    import torch

    from rsc_policy.agent.sequential import train_sequential

    torch.set_num_threads(1)
    train_cfg, member, steps = args
    res = train_sequential(train_cfg, env_steps=steps, seed=member["seed"],
                           **{**member["base"], **member["agent"]})
    return torch.cat([v.reshape(-1) for v in res.state_dict.values()]).numpy()


def _sharpe_of_weights(flat: np.ndarray, val_cfg: dict[str, Any]) -> float:
    from rsc_policy.agent.export import GreedyPolicy
    from rsc_policy.agent.population import qnet_from_flat

    return held_out_sharpe(GreedyPolicy(qnet_from_flat(flat)).act, val_cfg)


def held_out_sharpe(act: Any, val_cfg: dict[str, Any]) -> float:
    """Annualised Sharpe of the greedy ``act(obs)`` on the held-out period."""
    from rsc_policy.tuning.trial import score_window

    fig, _ = score_window(act, val_cfg)
    return float(fig["sharpe"])


def run_sweep_bench(train_cfg: dict[str, Any], val_cfg: dict[str, Any], agent: dict[str, Any],
                    *, members: int, env_steps: int, runners: int, envs_per_runner: int,
                    fragment: int, seed: int, out: Path, skip_sequential: bool = False
                    ) -> dict[str, Any]:
    """Run (a) to (e) and the FLOP limit; write ``sweep.json`` / ``sweep.md``."""
    import torch

    from rsc_env import TradingEnv

    torch.set_num_threads(1)
    cores = os.cpu_count() or 1
    mlist = member_list(members, seed)
    base = {k: v for k, v in agent.items() if k != "updates_per_step"}
    tasks = [(train_cfg, {**m, "base": base}, env_steps) for m in mlist]
    total = members * env_steps
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"members": members, "cores": cores, "env_steps_per_member":
                              env_steps, "runners": runners, "envs_per_runner": envs_per_runner,
                              "fragment": fragment}
    # (a) one after another
    if not skip_sequential:
        _warm(0)  # as (b)'s workers: kernels compiled or loaded before the clock starts
        t0 = time.perf_counter()
        trained = [_train_one(t) for t in tasks]
        result["sequential_wall_s"] = time.perf_counter() - t0
        result["sequential_env_steps_per_s"] = total / result["sequential_wall_s"]
        seq_sharpe = [_sharpe_of_weights(w, val_cfg) for w in trained]
    else:
        seq_sharpe = [float("nan")] * members
    # (b) one sequential trainer per core
    import multiprocessing as mp

    with ProcessPoolExecutor(cores, mp_context=mp.get_context("spawn")) as pool:
        list(pool.map(_warm, range(cores)))  # imports and compiled kernels loaded
        t0 = time.perf_counter()
        list(pool.map(_train_one, tasks))
        result["per_core_wall_s"] = time.perf_counter() - t0
    result["per_core_env_steps_per_s"] = total / result["per_core_wall_s"]
    # (c) one population on the EnvRunner group
    pop_sharpe, pop = _population(train_cfg, val_cfg, base, mlist, env_steps, runners,
                                  envs_per_runner, fragment, seed)
    result.update(pop)
    # (d) the same population through train_population (rsc-tune's FIFO engine): each
    # member's whole training compiled, one member per thread at a time, no EnvRunner; each
    # member exactly as alone, so its held-out figures are (a)'s bit for bit
    loop_sharpe = _population_loop(train_cfg, val_cfg, base, mlist, env_steps, result)
    # (e) that loop inside StrategyAgentAlgo: the learner steps the members' envs
    learner_sharpe = _population_on_learner(train_cfg, val_cfg, base, mlist, env_steps, seed,
                                            result)
    env = TradingEnv(dict(train_cfg))
    obs_dim = int(np.prod(env.observation_space.shape))
    rate = gemm_gflops(obs_dim, members)
    result["step_mflop"] = step_flops(obs_dim) / 1e6
    result["gemm_gflops_per_core"] = rate
    result["flop_limit_env_steps_per_s"] = cores * rate * 1e9 / step_flops(obs_dim)
    # the same products on one member's own shapes (batch 32, one call each), and what
    # a member env step of (e) costs per core beside them
    result["member_products_us"] = member_products_us(obs_dim)
    result["member_shapes_limit_env_steps_per_s"] = cores * 1e6 / result["member_products_us"]
    result["member_step_us"] = cores * 1e6 / result["population_learner_env_steps_per_s"]
    # the stricter of the two limits is the one the arithmetic allows: the kernel's own
    # products can beat BLAS's stacked ones
    result["strictest_limit_env_steps_per_s"] = max(
        result["flop_limit_env_steps_per_s"], result["member_shapes_limit_env_steps_per_s"])
    result["learner_below_strictest_limit"] = (result["strictest_limit_env_steps_per_s"]
                                               / result["population_learner_env_steps_per_s"])
    result["held_out_sharpe"] = [
        {"member": m["name"], "seed": m["seed"], "learning_rate": m["agent"]["learning_rate"],
         "sequential": a, "population": c, "population_loop": d, "population_learner": e}
        for m, a, c, d, e in zip(mlist, seq_sharpe, pop_sharpe, loop_sharpe, learner_sharpe,
                                 strict=True)]
    (out / "sweep.json").write_text(json.dumps(result, indent=2))
    (out / "sweep.md").write_text(sweep_markdown(result))
    return result


def _population_loop(train_cfg: dict[str, Any], val_cfg: dict[str, Any],
                     base: dict[str, Any], mlist: list[dict[str, Any]], env_steps: int,
                     result: dict[str, Any]) -> list[float]:
    """Way (d): :func:`~rsc_policy.agent.population.train_population` (its compiled engine),
    every core."""
    from rsc_policy.agent.population import Member, train_population

    members = [Member(agent={**base, **m["agent"]}, seed=m["seed"], name=m["name"])
               for m in mlist]
    train_population(train_cfg, members[:2], env_steps=40)  # kernels ready before the clock
    t0 = time.perf_counter()
    trained = train_population(train_cfg, members, env_steps=env_steps)
    result["population_loop_wall_s"] = time.perf_counter() - t0
    result["population_loop_env_steps_per_s"] = (sum(r.env_steps for r in trained)
                                                 / result["population_loop_wall_s"])
    return [held_out_sharpe(r.agent.greedy, val_cfg) for r in trained]


def _population_on_learner(train_cfg: dict[str, Any], val_cfg: dict[str, Any],
                           base: dict[str, Any], mlist: list[dict[str, Any]], env_steps: int,
                           seed: int, result: dict[str, Any]) -> list[float]:
    """Way (e): ``StrategyAgentAlgo`` with ``population(rollout="learner")``, one iteration of
    ``env_steps`` per member."""
    from rsc_env import TradingEnv
    from rsc_policy.rllib.config import StrategyAgentConfig

    cfg = (StrategyAgentConfig().environment(TradingEnv, env_config=train_cfg)
           .training(**_rllib_names(base))
           .population([dict(m) for m in mlist], rollout="learner")
           .env_runners(num_env_runners=0)
           .reporting(min_sample_timesteps_per_iteration=env_steps)
           .debugging(seed=seed))
    sharpe, timed = _train_algorithm(cfg, env_steps, val_cfg)
    result.update({f"population_learner_{k}": v for k, v in timed.items()})
    return sharpe


def _warm(_: int) -> None:
    from rsc_policy.agent.sequential import train_sequential

    train_sequential({"data": "sp500", "start": "2015-01-01", "end": "2015-06-30",
                      "initial_balance": 100_000.0}, env_steps=40)  # a sizing that trades


def _population(train_cfg: dict[str, Any], val_cfg: dict[str, Any], base: dict[str, Any],
                mlist: list[dict[str, Any]], env_steps: int, runners: int, envs: int,
                fragment: int, seed: int) -> tuple[list[float], dict[str, Any]]:
    """Way (c): ``StrategyAgentAlgo`` in population mode on its EnvRunner group."""
    from rsc_env import TradingEnv
    from rsc_policy.rllib.config import StrategyAgentConfig

    cfg = (StrategyAgentConfig().environment(TradingEnv, env_config=train_cfg)
           .training(**_rllib_names(base))
           .population([dict(m) for m in mlist])
           .env_runners(num_env_runners=runners, num_envs_per_env_runner=envs,
                        rollout_fragment_length=fragment)
           # few RLlib iterations (each costs ~30 ms of bookkeeping)
           .reporting(min_sample_timesteps_per_iteration=max(
               max(1, runners) * envs * fragment, env_steps // 4))
           .debugging(seed=seed))
    sharpe, timed = _train_algorithm(cfg, env_steps, val_cfg)
    return sharpe, {f"population_{k}": v for k, v in timed.items()}


def _train_algorithm(cfg: Any, env_steps: int, val_cfg: dict[str, Any]
                     ) -> tuple[list[float], dict[str, Any]]:
    """Build ``cfg``'s algorithm (timed apart), train until every member took ``env_steps``
    env steps, score each member on the held-out period. Returns the held-out Sharpes and
    ``build_s``, ``wall_s``, ``env_steps`` (all members'), ``learning_steps`` and
    ``env_steps_per_s``."""
    from rsc_policy.common import FilteredStderr, start_ray

    started = start_ray(None)
    try:
        t0 = time.perf_counter()
        with FilteredStderr():  # Ray's constructor-arguments notice (see common.py)
            algo = cfg.build_algo()
        build_s = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            while algo.global_env_steps < env_steps:
                algo.train()
            wall = time.perf_counter() - t0
            steps = algo.global_env_steps * len(algo.config.members())
            sharpe = [held_out_sharpe(p.act, val_cfg) for p in algo.member_policies()]
            learn = algo.num_learning_steps
        finally:
            algo.stop()
    finally:
        if started:
            import ray

            ray.shutdown()
    return sharpe, {"wall_s": wall, "build_s": build_s, "env_steps": steps,
                    "learning_steps": learn, "env_steps_per_s": steps / wall}


def _rllib_names(agent: dict[str, Any]) -> dict[str, Any]:
    out = dict(agent)
    if "learning_rate" in out:
        out["lr"] = out.pop("learning_rate")
    return out


def sweep_markdown(r: dict[str, Any]) -> str:
    """The report: the ways, the FLOP limit, and the held-out figures."""
    lim = r["flop_limit_env_steps_per_s"]
    strict = r["strictest_limit_env_steps_per_s"]
    which = "the products on one member's shapes" if strict > lim else "the stacked products"
    lines = [f"# rsc-bench sweep: {r['members']} members x {r['env_steps_per_member']:,} env "
             f"steps, {r['cores']} cores", "",
             "| way | agent env steps/s | vs (b) | share of the FLOP limit |",
             "|---|---:|---:|---:|"]
    b = r["per_core_env_steps_per_s"]
    for key, label in (("sequential_env_steps_per_s", "(a) sequential, one after another"),
                       ("per_core_env_steps_per_s", "(b) one sequential trainer per core"),
                       ("population_env_steps_per_s",
                        f"(c) one population, {r['runners']} runner(s) x "
                        f"{r['envs_per_runner']} env copies"),
                       ("population_loop_env_steps_per_s",
                        "(d) the same population, compiled per-member loop (rsc-tune's FIFO "
                        "engine)"),
                       ("population_learner_env_steps_per_s",
                        "(e) the same population on StrategyAgentAlgo, its learner stepping "
                        "the envs (rollout='learner')")):
        if key in r:
            lines.append(f"| {label} | {r[key]:,.0f} | {r[key] / b:.2f}x | "
                         f"{r[key] / lim:.0%} |")
    lines += ["", f"FLOP limit: {lim:,.0f} agent env steps/s = {r['cores']} cores x "
              f"{r['gemm_gflops_per_core']:.0f} GFLOP/s (the step's matrix products, stacked "
              f"over members, timed here on one core) / {r['step_mflop']:.2f} MFLOP per "
              "learning step (one learning step per env step; env and acting not counted).",
              "", f"On one member's own shapes (batch 32, one call per product, timed "
              f"from compiled code on one core) the products of a learning step take "
              f"{r['member_products_us']:.1f} µs: "
              f"{r['member_shapes_limit_env_steps_per_s']:,.0f} agent env steps/s on "
              f"{r['cores']} cores. A member env step of (e) costs {r['member_step_us']:.1f} µs "
              f"of a core: those products, then the env step, acting, the replay draw, the "
              f"loss, the bias and ReLU loops and Adam "
              f"({r['member_step_us'] - r['member_products_us']:.1f} µs).",
              "", f"The stricter of the two limits is {strict:,.0f} agent env steps/s ({which});"
              f" (e) is {r['learner_below_strictest_limit']:.2f}x below it.",
              "", "| member | seed | lr | held-out Sharpe (a) | (c) | (d) | (e) |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for h in r["held_out_sharpe"]:
        lines.append(f"| {h['member']} | {h['seed']} | {h['learning_rate']:g} | "
                     f"{h['sequential']:.2f} | {h['population']:.2f} | "
                     f"{h.get('population_loop', float('nan')):.2f} | "
                     f"{h.get('population_learner', float('nan')):.2f} |")
    lines += ["", "(a), (c), (d) and (e) train the same members with the same rule; (c) "
              "samples with several env copies per member and slightly stale weights "
              "(throughput mode), so its figures agree in distribution, not bit for bit "
              "(exact mode is bit-identical; see `pytest -k parity`); (d) and (e) are each "
              "member exactly as alone, so their columns equal (a)'s.", ""]
    return "\n".join(lines)
