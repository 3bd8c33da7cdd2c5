"""``rsc-train``: train the StrategyAgent (RLlib, or ``--sequential``), log, evaluate, report."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from rsc_db import DatabaseUnavailable, RunLogger, install_sigterm_handler
from rsc_db.logger import new_run_id
from rsc_env import MarketDataError, TradingEnv
from rsc_policy.cli.common import UserError, load_periods, start_ray
from rsc_policy.cli.report import (
    markdown_table,
    plot_equity,
    plot_throughput,
    plot_training,
    report_row,
)
from rsc_policy.cli.settings import TrainSettings, load_settings
from rsc_policy.evaluation.episode import greedy_act, run_episode

console = Console()
app = typer.Typer(add_completion=False, help=__doc__)


Opt = typer.Option


@app.command()
def train(
    data: Annotated[str | None, Opt(help="OHLCV CSV path or bundled sample (sp500)")] = None,
    start: Annotated[str | None, Opt(help="first training date")] = None,
    end: Annotated[str | None, Opt(help="last training date")] = None,
    val_start: Annotated[str | None, Opt(help="first held-out validation date")] = None,
    val_end: Annotated[str | None, Opt(help="last held-out validation date")] = None,
    episodes: Annotated[int | None, Opt(help="train for this many episodes")] = None,
    env_steps: Annotated[int | None, Opt(help="train for this many env steps")] = None,
    num_env_runners: Annotated[int | None, Opt(help="remote env runners")] = None,
    envs_per_runner: Annotated[int | None, Opt(help="environments per env runner")] = None,
    seed: Annotated[int | None, Opt(help="random seed")] = None,
    db: Annotated[
        str | None, Opt(help="database URL (default $DATABASE_URL, else run dir)")
    ] = None,
    log_steps: Annotated[bool, Opt("--log-steps/--no-log-steps", help="log step rows")] = True,
    config: Annotated[Path | None, Opt(help="TOML/YAML file with env and agent settings")] = None,
    resume: Annotated[Path | None, Opt(help="checkpoint directory to resume from")] = None,
    address: Annotated[str | None, Opt(help="address of an existing Ray cluster")] = None,
    out: Annotated[Path | None, Opt(help="run directory (default runs/<run_id>/)")] = None,
    sequential: Annotated[bool, Opt(help="plain sequential trainer, no Ray")] = False,
) -> None:
    """Train on a train period, evaluate on a later held-out period, write the report."""
    overrides = {
        "data": data, "start": start, "end": end, "val_start": val_start, "val_end": val_end,
        "episodes": episodes, "env_steps": env_steps, "num_env_runners": num_env_runners,
        "envs_per_runner": envs_per_runner, "seed": seed,
    }  # fmt: skip
    try:
        settings = load_settings(config, overrides)
        if episodes is not None and env_steps is None:
            settings.env_steps = None
        run(
            settings,
            db=db,
            log_steps=log_steps,
            resume=resume,
            address=address,
            out=out,
            sequential=sequential,
        )
    except (UserError, MarketDataError, DatabaseUnavailable, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


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
    """The whole job; returns the run summary (also written to ``summary.json``)."""
    run_id = new_run_id()
    run_dir = Path(out) if out else Path("runs") / run_id
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _run_in(settings, run_id, run_dir, db=db, log_steps=log_steps, resume=resume,
                       address=address, sequential=sequential)
    except BaseException:
        if created and not any(run_dir.iterdir()):  # failed before writing anything there
            run_dir.rmdir()
        raise


def _run_in(
    settings: TrainSettings,
    run_id: str,
    run_dir: Path,
    *,
    db: str | None,
    log_steps: bool,
    resume: Path | None,
    address: str | None,
    sequential: bool,
) -> dict[str, Any]:
    train_cfg, val_cfg = load_periods(settings.data, settings.start, settings.end,
                                      settings.val_start, settings.val_end, settings.env)
    params = {**settings.to_dict(), "mode": "sequential" if sequential else "rllib"}
    logger = RunLogger(db, run_dir=run_dir, parameters=params, run_id=run_id, log_steps=log_steps)
    install_sigterm_handler()
    with logger:  # completed / failed / interrupted
        console.print(f"run [bold]{run_id}[/bold] -> {run_dir}  (db {logger.url})")
        if sequential:
            trained = _train_sequential(settings, train_cfg, logger)
        else:
            trained = _train_rllib(settings, train_cfg, logger, resume, address, run_dir)
    summary = _evaluate_and_report(settings, trained, val_cfg, run_dir, run_id, log_steps,
                                   (train_cfg["start"], train_cfg["end"]))
    return summary


# ---------------------------------------------------------------------------- training
def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps"),
        TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console,
        disable=not console.is_terminal and os.environ.get("RSC_PROGRESS") != "1",
    )  # fmt: skip


def _train_sequential(settings: TrainSettings, train_cfg: dict, logger: RunLogger) -> dict:
    from rsc_policy.agent.sequential import train_sequential

    agent_params = {k: v for k, v in settings.agent.items() if k != "updates_per_step"}
    returns: list[float] = []
    count = {"n": 0}

    def on_end(info: dict[str, Any]) -> None:
        count["n"] += 1
        returns.append(float(info["total_reward"]))
        logger.log_episode(f"{logger.run_id}-seq-{count['n']}", info)

    t0 = time.perf_counter()
    res = train_sequential(
        train_cfg,
        episodes=settings.episodes,
        env_steps=settings.env_steps,
        seed=settings.seed,
        on_episode_end=on_end,
        **agent_params,
    )
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
        .training(exact=False, **settings.agent)
        .reporting(min_sample_timesteps_per_iteration=2048)
        .debugging(seed=settings.seed)
        .database(url=logger.url, run_id=logger.run_id, log_steps=logger.log_steps)
    )


def _train_rllib(
    settings: TrainSettings,
    train_cfg: dict,
    logger: RunLogger,
    resume: Path | None,
    address: str | None,
    run_dir: Path,
) -> dict:
    start_ray(address)
    config = _build_config(settings, train_cfg, logger)
    algo = config.build_algo()
    try:
        if resume is not None:
            _restore(algo, resume)
        return _train_loop(algo, settings, run_dir)
    finally:
        algo.stop()


def _restore(algo: Any, path: Path) -> None:
    meta = Path(path) / "rsc_run.json"
    if not meta.is_file():
        raise UserError(f"{path} is not an rsc-train checkpoint (no rsc_run.json)")
    saved = json.loads(meta.read_text())
    mine = _shape_signature(algo)
    if saved.get("signature") != mine:
        raise UserError(
            f"checkpoint {path} is from another configuration: {saved.get('signature')} != {mine}"
        )
    algo.restore_from_path(str(Path(path).resolve()))
    # The restore applies this run's agent settings (lr included); say which ones changed.
    before = saved.get("agent", {})
    for key, value in algo.config.agent_params().items():
        if key in before and before[key] != value:
            console.print(f"resume: applying {key}={value} (the checkpoint trained with "
                          f"{before[key]})")


def _shape_signature(algo: Any) -> dict[str, Any]:
    q = algo.policy_network()
    return {
        "obs_dim": int(q[0].in_features),
        "n_actions": int(q[-1].out_features),
        "memory_size": int(algo.config.memory_size),
    }


def _train_loop(algo: Any, settings: TrainSettings, run_dir: Path) -> dict:
    target_steps = settings.env_steps
    returns: list[float] = []
    rates: list[float] = []
    episodes_done = 0
    t_start = time.perf_counter()
    start_steps = algo.global_env_steps
    with _progress() as progress:
        task = progress.add_task("training", total=target_steps or 0, status="")
        while True:
            t0 = time.perf_counter()
            before = algo.global_env_steps
            result = algo.train()
            rates.append((algo.global_env_steps - before) / (time.perf_counter() - t0))
            new_returns = algo.pop_episode_returns()
            returns.extend(new_returns)
            episodes_done += len(new_returns)
            done_steps = algo.global_env_steps - start_steps
            mean_ret = np.mean(returns[-10:]) if returns else float("nan")
            progress.update(
                task,
                completed=done_steps,
                status=(
                    f"it {result.get('training_iteration', len(rates))}  ep {episodes_done}  "
                    f"eps {algo.schedule(algo.global_env_steps):.3f}  ret {mean_ret:.3f}  "
                    f"{rates[-1]:,.0f} st/s"
                ),
            )
            if target_steps is not None and done_steps >= target_steps:
                break
            if settings.episodes is not None and episodes_done >= settings.episodes:
                break
    wall = time.perf_counter() - t_start
    ckpt = run_dir / "checkpoint"
    algo.save_to_path(str(ckpt.resolve()))
    (ckpt / "rsc_run.json").write_text(json.dumps({"signature": _shape_signature(algo),
                                                   "agent": algo.config.agent_params()}))
    from rsc_policy import export_policy

    export_policy(algo, run_dir / "policy")
    from rsc_policy import load_policy

    total = algo.global_env_steps
    return {
        "policy": load_policy(run_dir / "policy"), "env_steps": total - start_steps,
        "wall_s": wall, "episode_returns": returns, **_epsilon_curve(algo.schedule, total),
        "iteration_rates": rates, "checkpoint": str(ckpt),
        "learning_steps": algo.num_learning_steps,
    }  # fmt: skip


# -------------------------------------------------------------------------- evaluation
def _evaluate_and_report(
    settings: TrainSettings, trained: dict, val_cfg: dict, run_dir: Path, run_id: str,
    log_steps: bool, train_dates: tuple[str, str],
) -> dict[str, Any]:
    policy = trained["policy"]
    rng = np.random.default_rng(settings.seed)
    env = TradingEnv(val_cfg)
    results = {
        name: run_episode(act, env, keep_log=True)
        for name, act in (
            ("agent", greedy_act(policy)),
            ("buy and hold", lambda _o: 1),
            ("random", lambda _o: int(rng.integers(3))),
        )
    }
    if trained["checkpoint"] is None:
        from rsc_policy import export_policy

        export_policy(policy, run_dir / "policy")
    val = pd.DatetimeIndex([val_cfg["start"], val_cfg["end"]])
    plot_equity(
        run_dir / "equity.png",
        {name: results[name]["episode_log"] for name in ("agent", "buy and hold")},
        f"Held-out period {val[0].date()} to {val[-1].date()}: agent vs buy-and-hold",
    )
    plot_training(
        run_dir / "training.png",
        trained["episode_returns"],
        trained["epsilons"],
        trained["epsilon_steps"],
    )
    plot_throughput(run_dir / "throughput.png", trained["iteration_rates"])
    rate = trained["env_steps"] / trained["wall_s"]
    summary = {
        "run_id": run_id, "env_steps": trained["env_steps"], "wall_s": trained["wall_s"],
        "env_steps_per_s": rate, "learning_steps": trained["learning_steps"],
        "episodes": len(trained["episode_returns"]), "checkpoint": trained["checkpoint"],
        "evaluation": {name: report_row(r) for name, r in results.items()},
        "settings": settings.to_dict(),
    }  # fmt: skip
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    table = markdown_table(summary["evaluation"])
    report = [
        f"# rsc-train report: run {run_id}", "",
        f"- data: `{settings.data}`, train {train_dates[0]} to {train_dates[1]}, "
        f"held-out {val[0].date()} to {val[-1].date()}",
        f"- {trained['env_steps']:,} env steps, {summary['episodes']} episodes, "
        f"{trained['learning_steps']:,} learning steps in {trained['wall_s']:.1f} s: "
        f"**{rate:,.0f} env steps/s** ({'step' if log_steps else 'episode'} logging included)",
        f"- env runners: {settings.num_env_runners} x {settings.envs_per_runner} envs", "",
        "## Held-out evaluation (greedy policy)", "", table, "",
        "![equity](equity.png)", "", "## Training", "", "![training](training.png)", "",
        "![throughput](throughput.png)", "",
    ]  # fmt: skip
    (run_dir / "report.md").write_text("\n".join(report))
    console.print(table)
    console.print(f"{rate:,.0f} env steps/s; report: {run_dir / 'report.md'}")
    return summary


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
