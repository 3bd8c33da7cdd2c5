"""``rsc-tune``: hyper-parameter sweep with Ray Tune, scored by walk-forward validation.

Light imports only (typer), so ``--help`` answers at once; the search space is validated
before Ray starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rsc_cli.errors import EXIT_SIGTERM, cli_errors, error, version_callback
from rsc_policy.cli import USER_ERRORS

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  help=__doc__.split("\n\n")[0])


@app.command()
@cli_errors("rsc-tune", USER_ERRORS)
def tune(
    space_file: Annotated[Path | None, typer.Argument(
        help="search-space file (TOML/YAML)", show_default="the built-in example")] = None,
    data: Annotated[str | None, typer.Option(help="OHLCV CSV path or bundled sample",
                                             show_default="sp500")] = None,
    date_format: Annotated[str | None, typer.Option(
        help="strftime format of the CSV's dates, e.g. %d/%m/%Y")] = None,
    samples: Annotated[int | None, typer.Option(
        min=1, help="configurations to try", show_default="space file's, else 8")] = None,
    seeds: Annotated[int | None, typer.Option(
        min=1, help="seeds per fold (and for the test score)", show_default="2")] = None,
    episodes: Annotated[int | None, typer.Option(
        min=1, help="training episodes per fold and seed", show_default="5")] = None,
    metric: Annotated[str | None, typer.Option(
        help="validation figure: sharpe, sortino, calmar, cagr, total_return, pnl, "
             "max_drawdown, volatility", show_default="sharpe")] = None,
    env_copies: Annotated[int | None, typer.Option(
        min=1, help="env copies per member in a trial's population [space file or 1]")] = None,
    configs_per_trial: Annotated[int | None, typer.Option(
        min=1, help="configurations per trial, trained as one population (--scheduler none, "
                    "--search random) [space file or 1]")] = None,
    engine: Annotated[str | None, typer.Option(
        help="how a trial trains its population: rllib (StrategyAgentAlgo; ASHA and PBT "
             "get a report per episode) or loop (the plain population loop, --scheduler "
             "none; the same figures) [rllib; loop for --configs-per-trial > 1]")] = None,
    max_concurrent: Annotated[int, typer.Option(min=1, help="trials at once (1 CPU each)")] = 2,
    scheduler: Annotated[str, typer.Option(help="asha, pbt or none (FIFO)")] = "asha",
    search: Annotated[str, typer.Option(help="random or optuna")] = "random",
    search_seed: Annotated[int, typer.Option(help="seed of the search's sampling")] = 0,
    address: Annotated[str | None, typer.Option(help="address of an existing Ray cluster",
                                                show_default="local")] = None,
    db: Annotated[str | None, typer.Option(
        help="database URL", show_default="$DATABASE_URL, else SWEEP_DIR/rsc.sqlite")] = None,
    out: Annotated[Path | None, typer.Option(help="sweep directory",
                                             show_default="runs/sweep-<id>")] = None,
    resume: Annotated[Path | None, typer.Option(
        help="continue the interrupted sweep in this directory")] = None,
    stop_after_trials: Annotated[int | None, typer.Option(
        hidden=True, help="test hook: Ctrl-C after this many finished trials")] = None,
    version: Annotated[bool, typer.Option(
        "--version", callback=version_callback("reinforce-strategy-creator"), is_eager=True,
        help="show the version")] = False,
) -> None:
    """Search agent and env parameters; every trial trains per walk-forward fold and seed and
    is scored on the validation windows; the best configuration is retrained and scored
    once on the held-out test period against buy-and-hold. Trials go to the database."""
    import json

    from pydantic import ValidationError

    from rsc_cli.errors import UserError
    from rsc_policy.tuning.space import SweepOptions, describe_error, load_space

    for flag, value, allowed in (("--scheduler", scheduler, ("asha", "pbt", "none")),
                                 ("--search", search, ("random", "optuna"))):
        if value not in allowed:
            raise UserError(f"{flag} {value!r}: use one of {', '.join(allowed)}")
    if resume is not None:
        from rsc_policy.tuning.sweep import SWEEP_FILE

        file = resume / SWEEP_FILE
        if not file.is_file():
            raise UserError(f"--resume {resume}: no {SWEEP_FILE} there (not a sweep directory)")
        try:
            settings = json.loads(file.read_text())
            space_file = Path(settings["space_file"])
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"--resume {resume}: {SWEEP_FILE} cannot be read "
                            f"({type(exc).__name__}: {exc})") from None
        if not space_file.is_absolute() and not space_file.is_file():
            # written by an older rsc-tune relative to its working directory: try the sweep
            # directory's parent (the usual working directory of `--out runs/x`)
            for base in (resume.absolute().parent, resume.absolute().parent.parent):
                if (base / space_file).is_file():
                    space_file = base / space_file
                    break
        if not space_file.is_file():
            raise UserError(f"--resume {resume}: the sweep's space file {space_file} is gone "
                            "(it is read again on resume)")
        space = load_space(space_file)
        out = resume
    else:
        space = load_space(space_file)
        given = {"data": data, "date_format": date_format, "samples": samples, "seeds": seeds,
                 "episodes": episodes, "metric": metric, "env_copies": env_copies,
                 "configs_per_trial": configs_per_trial}
        try:
            opts = SweepOptions(**{**space.options.model_dump(),
                                   **{k: v for k, v in given.items() if v is not None}})
        except ValidationError as exc:
            raise UserError(f"command line: {describe_error(exc)}") from None
        from rsc_db.logger import new_run_id
        from rsc_policy.tuning.sweep import new_settings

        sweep_id = f"sweep-{new_run_id()}"
        out = out or Path("runs") / sweep_id
        if engine not in (None, "rllib", "loop"):
            raise UserError(f"--engine must be rllib or loop, got {engine!r}")
        if engine == "loop" and scheduler != "none":
            raise UserError(f"--engine loop reports once per trial: use it with --scheduler "
                            f"none (--scheduler {scheduler} needs a report per episode)")
        settings = new_settings(space, {**opts.model_dump(), "engine": engine},
                                scheduler=scheduler, search=search,
                                max_concurrent=max_concurrent, search_seed=search_seed, db=db,
                                sweep_id=sweep_id)
    from rsc_policy.tuning.sweep import run

    code = run(space, settings, out, resume=resume is not None, address=address,
               stop_after=stop_after_trials)
    if code == EXIT_SIGTERM:
        error("terminated (SIGTERM)")
    if code:
        raise typer.Exit(code)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
