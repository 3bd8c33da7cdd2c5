"""``rsc-train``: train the StrategyAgent (RLlib, or ``--sequential``), log, evaluate, report.

This module imports only typer and the settings model, so ``rsc-train --help`` answers at
once; the job itself (:mod:`rsc_policy.cli.train_job`) loads after the command line and the
settings file have been validated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rsc_cli.errors import UserError, cli_errors, version_callback
from rsc_policy.cli import USER_ERRORS
from rsc_policy.presets import describe as describe_presets
from rsc_policy.settings import default, load_settings

DIST = "reinforce-strategy-creator"
app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0],
                  pretty_exceptions_enable=False)


def _opt(name: str, help: str, flag: str | None = None) -> typer.models.OptionInfo:
    """An option whose ``--help`` shows the real default (None on the command line means
    "not given": the settings file, then the default, decide)."""
    value = default(name)
    flags = (flag,) if flag else ()
    return typer.Option(*flags, help=help, show_default="none" if value is None else str(value))


@app.command()
@cli_errors("rsc-train", USER_ERRORS, stack_dump=True)
def train(
    data: Annotated[str | None, _opt("data", "OHLCV CSV path or bundled sample (sp500)")] = None,
    date_format: Annotated[str | None, _opt("date_format", "strftime format of the CSV's "
                                            "dates, e.g. %d/%m/%Y")] = None,
    start: Annotated[str | None, _opt("start", "first training date")] = None,
    end: Annotated[str | None, _opt("end", "last training date")] = None,
    val_start: Annotated[str | None, _opt("val_start", "first held-out date")] = None,
    val_end: Annotated[str | None, _opt("val_end", "last held-out date")] = None,
    episodes: Annotated[int | None, _opt("episodes", "train for this many episodes")] = None,
    env_steps: Annotated[int | None, _opt("env_steps", "train for this many env steps")] = None,
    num_env_runners: Annotated[int | None, _opt("num_env_runners", "env runners (one CPU "
                                                "each)")] = None,
    envs_per_runner: Annotated[int | None, _opt("envs_per_runner", "environments per env "
                                                "runner")] = None,
    seed: Annotated[int | None, _opt("seed", "random seed")] = None,
    preset: Annotated[str | None, _opt("preset", "named defaults, overridden by the settings "
                                       f"file and the flags: {describe_presets()}")] = None,
    lr: Annotated[float | None, _opt("learning_rate", "learning rate", "--lr")] = None,
    gamma: Annotated[float | None, _opt("gamma", "discount factor")] = None,
    epsilon: Annotated[float | None, _opt("epsilon", "initial exploration rate")] = None,
    epsilon_decay: Annotated[float | None, _opt("epsilon_decay", "epsilon multiplier per "
                                                "action (1.0: constant)")] = None,
    epsilon_min: Annotated[float | None, _opt("epsilon_min", "floor of epsilon")] = None,
    memory_size: Annotated[int | None, _opt("memory_size", "replay memory size")] = None,
    batch_size: Annotated[int | None, _opt("batch_size", "replay batch size")] = None,
    target_update_freq: Annotated[int | None, _opt("target_update_freq", "learning steps "
                                                   "between target-network syncs")] = None,
    updates_per_step: Annotated[float | None, _opt("updates_per_step", "learning steps per "
                                                   "env step")] = None,
    epsilon_schedule: Annotated[str | None, _opt(
        "epsilon_schedule", "multiplicative | linear | per_episode")] = None,
    epsilon_fraction: Annotated[float | None, _opt(
        "epsilon_fraction", "linear schedule: fraction of the run to reach epsilon_min")] = None,
    double_q: Annotated[bool | None, typer.Option(
        "--double-q/--no-double-q", help="double-DQN targets", show_default="no")] = None,
    td_error_loss_fn: Annotated[str | None, _opt("td_error_loss_fn", "mse | huber")] = None,
    trade_penalty_mode: Annotated[str | None, _opt(
        "trade_penalty_mode", "cumulative (penalty x trades so far) | per_trade")] = None,
    observe_position: Annotated[bool | None, typer.Option(
        "--observe-position/--no-observe-position", show_default="no",
        help="add position and unrealised PnL to the observation")] = None,
    checkpoint_every: Annotated[int | None, _opt("checkpoint_every", "iterations between "
                                                 "checkpoints (0: only at the end)")] = None,
    db: Annotated[str | None, typer.Option(
        help="database URL", show_default="$DATABASE_URL, else RUN_DIR/rsc.sqlite")] = None,
    log_steps: Annotated[bool, typer.Option("--log-steps/--no-log-steps",
                                            help="log step rows")] = True,
    config: Annotated[Path | None, typer.Option(
        help="TOML/YAML settings file (top-level settings, [env] and [agent] tables)")] = None,
    resume: Annotated[Path | None, typer.Option(
        help="continue from a checkpoint (a run directory or its checkpoint/)")] = None,
    address: Annotated[str | None, typer.Option(help="address of an existing Ray cluster",
                                                show_default="local")] = None,
    out: Annotated[Path | None, typer.Option(help="run directory",
                                             show_default="runs/<run_id>/")] = None,
    sequential: Annotated[bool, typer.Option(help="plain sequential trainer, no Ray")] = False,
    version: Annotated[bool, typer.Option("--version", callback=version_callback(DIST),
                                          is_eager=True, help="show the version")] = False,
) -> None:
    """Train on a training period, evaluate on a later held-out period, write the report."""
    overrides = {
        "data": data, "date_format": date_format, "start": start, "end": end,
        "val_start": val_start, "val_end": val_end, "episodes": episodes,
        "env_steps": env_steps, "num_env_runners": num_env_runners,
        "envs_per_runner": envs_per_runner, "seed": seed, "checkpoint_every": checkpoint_every,
        "preset": preset,
        "learning_rate": lr, "gamma": gamma, "epsilon": epsilon,
        "epsilon_decay": epsilon_decay, "epsilon_min": epsilon_min,
        "memory_size": memory_size, "batch_size": batch_size,
        "target_update_freq": target_update_freq, "updates_per_step": updates_per_step,
        "epsilon_schedule": epsilon_schedule, "epsilon_fraction": epsilon_fraction,
        "double_q": double_q, "td_error_loss_fn": td_error_loss_fn,
        "trade_penalty_mode": trade_penalty_mode, "observe_position": observe_position,
    }  # fmt: skip
    if resume is not None and sequential:
        raise UserError("--resume cannot be combined with --sequential: the sequential trainer "
                        "writes no checkpoints (rsc-train's RLlib mode, the default, does); "
                        "drop --sequential to continue the checkpoint")
    settings = load_settings(config, overrides)
    if episodes is not None and env_steps is None:  # --episodes alone: stop on episodes
        settings = settings.model_copy(update={"env_steps": None})
    from rsc_policy.cli.train_job import run

    run(settings, db=db, log_steps=log_steps, resume=resume, address=address, out=out,
        sequential=sequential)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
