"""The ``rsc-train`` job: train (RLlib, or the sequential trainer), log, checkpoint, evaluate,
report. Imported only once the command line has been validated."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from rsc_cli.errors import UserError, raise_if_interrupted
from rsc_db import RunLogger
from rsc_db.logger import new_run_id
from rsc_env import TradingEnv
from rsc_policy.common import (
    FilteredStderr,
    load_periods,
    make_run_dir,
    start_ray,
    stop_ray,
)
from rsc_policy.evaluation.episode import greedy_act
from rsc_policy.plots import collapse_line, plot_equity, plot_throughput, plot_training
from rsc_policy.settings import TrainSettings

console = Console()


def run(
    settings: TrainSettings,
    *,
    db: str | None,
    log_steps: bool,
    resume: Path | None,
    address: str | None,
    out: Path | None,
    sequential: bool,
) -> dict[str, Any]:
    """The whole job; returns the run summary (also written to ``summary.json``).

    Everything a user can get wrong (settings, data, the checkpoint to resume, the number of
    runners against the CPUs) is checked before a run directory, a run row or Ray exist.
    """
    train_cfg, val_cfg = load_periods(settings.data, settings.start, settings.end,
                                      settings.val_start, settings.val_end,
                                      settings.env.model_dump(), settings.date_format)
    checkpoint = None if resume is None else check_resume(resume, settings, train_cfg)
    if not sequential and address is None:
        check_cpus(settings.num_env_runners, os.cpu_count() or 1, "this machine")
    run_id = new_run_id()
    run_dir = Path(out) if out else Path("runs") / run_id
    created = make_run_dir(run_dir, "--out")
    try:
        return _run_in(settings, run_id, run_dir, train_cfg, val_cfg, db=db, log_steps=log_steps,
                       checkpoint=checkpoint, address=address, sequential=sequential)
    except BaseException:
        if created and not any(run_dir.iterdir()):  # failed before writing anything there
            run_dir.rmdir()
        raise


def check_cpus(runners: int, cpus: float, where: str, flag: str = "--num-env-runners") -> None:
    """Refuse more env runners than CPUs (Ray would wait forever for the missing ones)."""
    if runners > cpus:
        raise UserError(f"{flag} {runners} needs {runners} CPUs for its env runners, "
                        f"but {where} has {cpus:g}; use at most {int(cpus)} (or a bigger "
                        "cluster with --address)")


def check_resume(path: Path, settings: TrainSettings, train_cfg: dict[str, Any]) -> Path:
    """The checkpoint directory to resume (``path`` or ``path/checkpoint`` of a run
    directory), checked against this run's network shape before anything starts."""
    path = Path(path)
    for candidate in (path, path / "checkpoint"):
        if (candidate / "rsc_run.json").is_file():
            path = candidate
            break
    else:
        raise UserError(f"--resume {path}: not an rsc-train checkpoint or run directory (no "
                        "rsc_run.json)")
    try:
        saved = json.loads((path / "rsc_run.json").read_text())
        signature = saved["signature"]
        if not isinstance(signature, dict) or not isinstance(saved.get("agent", {}), dict):
            raise TypeError("signature/agent are not tables")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"--resume {path}: rsc_run.json cannot be read ({type(exc).__name__}: "
                        f"{exc}); the checkpoint is damaged") from None
    from rsc_policy.rllib.checkpoint import CheckpointError, validate_checkpoint

    try:
        weights = validate_checkpoint(path)
    except CheckpointError as exc:
        raise UserError(f"--resume: {exc}") from None
    layers = sorted((k for k in weights if k.endswith(".weight")),
                    key=lambda k: int(k.split(".")[1]))
    first, last = weights[layers[0]], weights[layers[-1]]
    stored = {"obs_dim": int(first.shape[1]), "n_actions": int(last.shape[0])}
    if any(signature.get(k) != v for k, v in stored.items()):
        raise UserError(f"--resume {path}: the Q-network in the checkpoint ({stored}) does not "
                        f"match its rsc_run.json ({signature}); the checkpoint is damaged")
    env = TradingEnv(train_cfg)
    mine = {"obs_dim": int(env.observation_space.shape[0]), "n_actions": int(env.action_space.n),
            "memory_size": settings.agent.memory_size}
    if signature != mine:
        raise UserError(f"--resume {path}: the checkpoint is from another configuration: "
                        f"{signature} != {mine}")
    return path


def _run_in(
    settings: TrainSettings,
    run_id: str,
    run_dir: Path,
    train_cfg: dict[str, Any],
    val_cfg: dict[str, Any],
    *,
    db: str | None,
    log_steps: bool,
    checkpoint: Path | None,
    address: str | None,
    sequential: bool,
) -> dict[str, Any]:
    params = {**settings.to_dict(), "mode": "sequential" if sequential else "rllib",
              "resumed_from": None if checkpoint is None else str(checkpoint.resolve())}
    logger = RunLogger(db, run_dir=run_dir, parameters=params, run_id=run_id, log_steps=log_steps)
    with logger:  # completed / failed / interrupted
        console.print(f"run [bold]{run_id}[/bold] -> {run_dir}  (db {logger.url})")
        if sequential:
            trained = _train_sequential(settings, train_cfg, logger, run_dir)
        else:
            trained = _train_rllib(settings, train_cfg, logger, checkpoint, address, run_dir)
    summary = _evaluate_and_report(settings, trained, val_cfg, run_dir, run_id, log_steps,
                                   (train_cfg["start"], train_cfg["end"]), sequential)
    return summary


# ---------------------------------------------------------------------------- training
def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps"),
        TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console,
        disable=not console.is_terminal and os.environ.get("RSC_PROGRESS") != "1",
    )  # fmt: skip


def _train_sequential(settings: TrainSettings, train_cfg: dict, logger: RunLogger,
                      run_dir: Path) -> dict:
    from rsc_policy.agent.sequential import train_sequential

    agent_params = settings.agent.model_dump(exclude={"updates_per_step"})
    returns: list[float] = []
    count = {"n": 0}

    from rsc_policy.tracking import RunTracker

    tracker = RunTracker(run_dir)
    from rsc_db.episode_writer import EpisodeWriter

    writer = EpisodeWriter(logger)  # ordered, in the background, waits out an outage

    def on_end(info: dict[str, Any]) -> None:
        count["n"] += 1
        returns.append(float(info["total_reward"]))
        writer.submit([(f"{logger.run_id}-seq-{count['n']}", info)])
        logger.heartbeat()
        tracker.log(count["n"] * int(info["total_steps"]), {
            "episode_return": info["total_reward"], "pnl": info["pnl"],
            "episodes_total": count["n"]})
        raise_if_interrupted()  # a signal whose exception a destructor swallowed

    t0 = time.perf_counter()
    try:
        res = train_sequential(
            train_cfg,
            episodes=settings.episodes,
            env_steps=settings.env_steps,
            seed=settings.seed,
            on_episode_end=on_end,
            **agent_params,
        )
        writer.flush()
    except BaseException:
        with contextlib.suppress(Exception):  # Ctrl-C: what finished is still written
            writer.flush(timeout=60)
        raise
    finally:
        try:
            writer.close(flush=False)
        finally:
            tracker.close()
    wall = time.perf_counter() - t0
    return {
        "policy": res.agent, "env_steps": res.env_steps, "wall_s": wall,
        "episode_returns": returns, **_epsilon_curve(res.agent.schedule, res.env_steps),
        "iteration_rates": [res.env_steps / wall], "checkpoint": None,
        "learning_steps": res.num_updates,
    }  # fmt: skip


def _epsilon_curve(schedule: Callable[[int], float], total_steps: int) -> dict[str, list]:
    """Epsilon over the run's env steps, from the schedule itself (exact at every point)."""
    steps = np.unique(np.linspace(0, max(total_steps, 1), 400).astype(int))
    return {"epsilon_steps": steps.tolist(), "epsilons": [schedule(int(k)) for k in steps]}


def _build_config(settings: TrainSettings, train_cfg: dict, logger: RunLogger):
    from rsc_policy import StrategyAgentConfig

    n_runners = settings.num_env_runners
    return (
        StrategyAgentConfig()
        .environment(TradingEnv, env_config=train_cfg)
        .env_runners(
            num_env_runners=n_runners,
            num_envs_per_env_runner=settings.envs_per_runner,
            rollout_fragment_length=settings.rollout_fragment_length,
        )
        .training(exact=False, **settings.agent.model_dump())
        .reporting(min_sample_timesteps_per_iteration=2048)
        .debugging(seed=settings.seed)
        .database(url=logger.url, run_id=logger.run_id, log_steps=logger.log_steps)
    )


def _train_rllib(
    settings: TrainSettings,
    train_cfg: dict,
    logger: RunLogger,
    checkpoint: Path | None,
    address: str | None,
    run_dir: Path,
) -> dict:
    import ray

    started = start_ray(address)
    try:
        if address is not None:
            check_cpus(settings.num_env_runners, ray.cluster_resources().get("CPU", 0),
                       f"the Ray cluster at {address}")
        with FilteredStderr():  # Ray's line about RLlib's own config ref, see common.py
            algo = _build_config(settings, train_cfg, logger).build_algo()
        try:
            if checkpoint is not None:
                _restore(algo, checkpoint)
            return _train_loop(algo, settings, run_dir, logger)
        finally:
            algo.stop()
    finally:
        if started:
            stop_ray()


def _restore(algo: Any, path: Path) -> None:
    saved = json.loads((path / "rsc_run.json").read_text())
    algo.restore_from_path(str(path.resolve()))
    # The restore applies this run's agent settings (lr included); say which ones changed.
    before = saved.get("agent", {})
    for key, value in algo.config.agent_params().items():
        if key in before and before[key] != value:
            console.print(f"resume: applying {key}={value} (the checkpoint trained with "
                          f"{before[key]})")
    console.print(f"resumed from {path} at {algo.global_env_steps:,} env steps")


def _shape_signature(algo: Any) -> dict[str, Any]:
    q = algo.policy_network()
    return {
        "obs_dim": int(q[0].in_features),
        "n_actions": int(q[-1].out_features),
        "memory_size": int(algo.config.memory_size),
    }


def save_checkpoint(algo: Any, run_dir: Path) -> Path:
    """Write ``run_dir/checkpoint`` atomically (a new directory, then a rename)."""
    import shutil

    ckpt = run_dir / "checkpoint"
    tmp = run_dir / "checkpoint.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    algo.save_to_path(str(tmp.resolve()))
    (tmp / "rsc_run.json").write_text(json.dumps({
        "signature": _shape_signature(algo), "agent": algo.config.agent_params(),
        "global_env_steps": algo.global_env_steps}))
    old = run_dir / "checkpoint.old"
    shutil.rmtree(old, ignore_errors=True)
    if ckpt.exists():
        ckpt.rename(old)
    tmp.rename(ckpt)
    shutil.rmtree(old, ignore_errors=True)
    return ckpt


def _train_loop(algo: Any, settings: TrainSettings, run_dir: Path, logger: RunLogger) -> dict:
    target_steps = settings.env_steps
    returns: list[float] = []
    rates: list[float] = []
    episodes_done = 0
    t_start = time.perf_counter()
    start_steps = algo.global_env_steps
    start_learning = algo.num_learning_steps  # a resumed run starts from the checkpoint's
    from rsc_policy.tracking import RunTracker

    tracker = RunTracker(run_dir)
    try:
        with _progress() as progress:
            task = progress.add_task("training", total=target_steps or 0, status="")
            while True:
                t0 = time.perf_counter()
                before = algo.global_env_steps
                result = algo.train()
                raise_if_interrupted()  # a signal whose exception a destructor swallowed
                logger.heartbeat()
                tracker.log(algo.global_env_steps, result)
                rates.append((algo.global_env_steps - before) / (time.perf_counter() - t0))
                new_returns = algo.pop_episode_returns()
                returns.extend(new_returns)
                episodes_done += len(new_returns)
                done_steps = algo.global_env_steps - start_steps
                mean_ret = np.mean(returns[-10:]) if returns else float("nan")
                iteration = result.get("training_iteration", len(rates))
                progress.update(
                    task,
                    completed=done_steps,
                    status=(
                        f"it {iteration}  ep {episodes_done}  "
                        f"eps {algo.schedule(algo.global_env_steps):.3f}  ret {mean_ret:.3f}  "
                        f"{rates[-1]:,.0f} st/s"
                    ),
                )
                if target_steps is not None and done_steps >= target_steps:
                    break
                if settings.episodes is not None and episodes_done >= settings.episodes:
                    if episodes_done > settings.episodes:
                        console.print(
                            f"{episodes_done} episodes finished (asked for {settings.episodes}): "
                            f"the {settings.num_env_runners * settings.envs_per_runner} envs "
                            "walk the same bars and end their episodes together")
                    break
                if settings.checkpoint_every and len(rates) % settings.checkpoint_every == 0:
                    save_checkpoint(algo, run_dir)
    except KeyboardInterrupt:
        ckpt = save_checkpoint(algo, run_dir)  # resumable: rsc-train --resume RUN_DIR
        console.print(f"interrupted: checkpoint at {ckpt} ({algo.global_env_steps:,} env "
                      f"steps); continue with --resume {run_dir}")
        raise
    finally:
        tracker.close()
    wall = time.perf_counter() - t_start
    ckpt = save_checkpoint(algo, run_dir)
    from rsc_policy import export_policy, load_policy

    export_policy(algo, run_dir / "policy")
    total = algo.global_env_steps
    return {
        "policy": load_policy(run_dir / "policy"), "env_steps": total - start_steps,
        "wall_s": wall, "episode_returns": returns, **_epsilon_curve(algo.schedule, total),
        "iteration_rates": rates, "checkpoint": str(ckpt),
        "learning_steps": algo.num_learning_steps - start_learning,
        "lifetime": {"env_steps": total, "learning_steps": algo.num_learning_steps,
                     "resumed_at_env_steps": start_steps,
                     "resumed_at_learning_steps": start_learning} if start_steps else None,
    }  # fmt: skip


# -------------------------------------------------------------------------- evaluation
def _evaluate_and_report(
    settings: TrainSettings, trained: dict, val_cfg: dict, run_dir: Path, run_id: str,
    log_steps: bool, train_dates: tuple[str, str], sequential: bool = False,
) -> dict[str, Any]:
    from rsc_policy.evaluation.benchmarks import compare, markdown

    policy = trained["policy"]
    result = compare(greedy_act(policy), val_cfg, n_random=100)
    if trained["checkpoint"] is None:
        from rsc_policy import export_policy

        export_policy(policy, run_dir / "policy")
    first, last = result["period"]
    plot_equity(
        run_dir / "equity.png",
        {"agent": result["agent_info"]["episode_log"],
         "buy and hold (whole balance)": result["buy_and_hold_curve"]},
        f"Held-out period {first} to {last}: agent vs buy-and-hold",
    )
    plot_training(
        run_dir / "training.png",
        trained["episode_returns"],
        trained["epsilons"],
        trained["epsilon_steps"],
    )
    plot_throughput(run_dir / "throughput.png", trained["iteration_rates"])
    rate = trained["env_steps"] / trained["wall_s"]
    evaluation = {k: v for k, v in result.items()
                  if k not in ("agent_info", "buy_and_hold_curve")}
    collapsed, collapse_md = collapse_line(result["agent_info"]["episode_log"])
    evaluation["collapse"] = collapsed
    summary = {
        "run_id": run_id, "env_steps": trained["env_steps"], "wall_s": trained["wall_s"],
        "env_steps_per_s": rate, "learning_steps": trained["learning_steps"],
        "episodes": len(trained["episode_returns"]), "checkpoint": trained["checkpoint"],
        "lifetime": trained.get("lifetime"),
        "evaluation": evaluation, "settings": settings.to_dict(),
    }  # fmt: skip
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    table = markdown(result)
    how = ("sequential trainer, 1 env" if sequential else
           f"env runners: {settings.num_env_runners} x {settings.envs_per_runner} envs")
    report = [
        f"# rsc-train report: run {run_id}", "",
        f"- data: `{settings.data}`, train {train_dates[0]} to {train_dates[1]}, "
        f"held-out {first} to {last}",
        f"- {trained['env_steps']:,} env steps, {summary['episodes']} episodes, "
        f"{trained['learning_steps']:,} learning steps in {trained['wall_s']:.1f} s: "
        f"**{rate:,.0f} env steps/s** ({'step' if log_steps else 'episode'} logging included)",
        f"- {how}; seed {settings.seed}",
        *_lifetime_lines(trained.get("lifetime")), "",
        "## Held-out evaluation (greedy policy)", "", collapse_md, "", table, "",
        "![equity](equity.png)", "", "## Training", "", "![training](training.png)", "",
        "![throughput](throughput.png)", "",
    ]  # fmt: skip
    (run_dir / "report.md").write_text("\n".join(report))
    console.print(table, markup=False, highlight=False, soft_wrap=True)
    if collapsed:
        console.print(f"collapsed: the greedy held-out policy {collapsed!r} (no trading rule)")
    console.print(f"{rate:,.0f} env steps/s; report: {run_dir / 'report.md'}")
    return summary


def _lifetime_lines(lifetime: dict[str, int] | None) -> list[str]:
    """A resumed run: the figures above are this run's; these are the checkpoint's history."""
    if not lifetime:
        return []
    return [f"- resumed from a checkpoint at {lifetime['resumed_at_env_steps']:,} env steps / "
            f"{lifetime['resumed_at_learning_steps']:,} learning steps: the figures above are "
            f"this run's; lifetime {lifetime['env_steps']:,} env steps, "
            f"{lifetime['learning_steps']:,} learning steps"]
