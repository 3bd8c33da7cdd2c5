"""Checks of a :class:`StrategyAgentConfig` that RLlib leaves to the remote actors.

* :func:`env_config_problem`: the env's own parsing of ``env_config`` (keys, parameter
  ranges, the data file and period), on the driver. Without it a bad key with remote env
  runners surfaces as RLlib's ``IndexError`` (the real error only in the workers' logs).
* :func:`resource_problem`: the CPUs and GPUs the runners and learners ask for against what
  the Ray cluster (or, before ``ray.init``, this machine) has. Without it ``build_algo()``
  waits forever for actors that cannot be placed.

Each returns ``None`` or one message; ``StrategyAgentConfig.validate()`` raises it.
"""

from __future__ import annotations

import os
from typing import Any

from rsc_policy.rllib.config import ENV_NAME


def config_problems(config: Any) -> list[str]:
    """Every problem of the two checks below (``StrategyAgentConfig.validate()`` raises the
    first)."""
    return [p for p in (env_config_problem(config), resource_problem(config)) if p]


def _is_rsc_env(env: Any) -> bool:
    from rsc_env import ENV_ID, TradingEnv
    from rsc_env.reference import ReferenceTradingEnv

    if isinstance(env, type):
        return issubclass(env, TradingEnv | ReferenceTradingEnv)
    return isinstance(env, str) and env in (ENV_ID, f"rsc_env:{ENV_ID}", ENV_NAME)


def env_config_problem(config: Any) -> str | None:
    """What is wrong with ``config.env_config`` for rsc's env (``None``: nothing, or another
    env whose configuration rsc cannot judge)."""
    from rsc_env.params import parse_env_config

    checks = [("env_config", config)]
    if not config.in_evaluation and "env_config" in (config.evaluation_config or {}):
        checks.append(("evaluation_config env_config", config.get_evaluation_config_object()))
    for where, cfg in checks:
        if not _is_rsc_env(cfg.env):
            continue
        try:
            parse_env_config(cfg.env_config, {})
        except (ValueError, TypeError, KeyError, OSError) as exc:  # MarketDataError: ValueError
            return f"{'evaluation_config env_config' if cfg.in_evaluation else where}: {exc}"
    return None


def member_env_problem(env: Any, env_config: dict[str, Any]) -> str | None:
    """What is wrong with one population member's env config (``None``: nothing, or an env
    whose configuration rsc cannot judge)."""
    from rsc_env.params import parse_env_config

    if env is not None and not _is_rsc_env(env):
        return None
    try:
        parse_env_config(env_config, {})
    except (ValueError, TypeError, KeyError, OSError) as exc:
        return str(exc)
    return None


def cluster_resources() -> tuple[dict[str, float], str]:
    """Total resources of the Ray cluster this process is connected to, else of this machine
    (what a local ``ray.init()`` would offer), and a description of where that is."""
    import ray

    if ray.is_initialized():
        res = ray.cluster_resources()
        return {"CPU": float(res.get("CPU", 0)), "GPU": float(res.get("GPU", 0))}, \
            "the Ray cluster"
    gpus = 0.0
    try:
        import torch

        gpus = float(torch.cuda.device_count())
    except Exception:  # no torch CUDA: no GPUs Ray would detect either
        pass
    return {"CPU": float(os.cpu_count() or 1), "GPU": gpus}, "this machine (Ray not started)"


def requested_resources(config: Any) -> dict[str, dict[str, float]]:
    """CPUs/GPUs each kind of actor asks for: ``{what: {"n", "CPU", "GPU"}}`` per actor,
    as RLlib places them (the learner in the driver, ``num_learners=0``, places no actor)."""
    out: dict[str, dict[str, float]] = {}
    if config.num_env_runners:
        out["env runners"] = {"n": config.num_env_runners,
                              "CPU": float(config.num_cpus_per_env_runner),
                              "GPU": float(config.num_gpus_per_env_runner)}
    if config.num_learners:
        cpus = config.num_cpus_per_learner
        if cpus == "auto":
            cpus = 0 if config.num_gpus_per_learner else 1
        out["learners"] = {"n": config.num_learners, "CPU": float(cpus),
                           "GPU": float(config.num_gpus_per_learner)}
    n_eval = config.evaluation_num_env_runners or 0
    if n_eval:
        ev = config.get_evaluation_config_object()
        out["evaluation env runners"] = {"n": n_eval,
                                         "CPU": float(ev.num_cpus_per_env_runner),
                                         "GPU": float(ev.num_gpus_per_env_runner)}
    return out


def resource_problem(config: Any, available: dict[str, float] | None = None,
                     where: str | None = None) -> str | None:
    """What the config asks for that the cluster cannot hold (``None``: it fits)."""
    if config.in_evaluation:
        return None  # counted with the main config's evaluation runners
    if available is None:
        import ray

        if not ray.is_initialized() and os.environ.get("RAY_ADDRESS"):
            return None  # ray.init() will join a cluster this process cannot see yet
        available, where = cluster_resources()
    asked = requested_resources(config)
    for kind in ("CPU", "GPU"):
        total = sum(a["n"] * a[kind] for a in asked.values())
        if total > available.get(kind, 0.0) + 1e-9:
            parts = " + ".join(f"{int(a['n'])} {what} x {a[kind]:g} {kind}"
                               for what, a in asked.items() if a[kind])
            return (f"the config asks for {total:g} {kind}s ({parts}) but "
                    f"{where or 'the cluster'} has {available.get(kind, 0.0):g}; Ray would "
                    "wait forever to place the actors. Use fewer env runners / learners, "
                    "fewer CPUs or GPUs per actor (num_cpus_per_env_runner, "
                    "num_cpus_per_learner), or a bigger cluster")
    return None
