"""``rsc-db``: list training runs and their episodes, rsc-tune sweeps and their trials; close
runs a killed process left open."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rsc_cli.errors import UserError, cli_errors, version_callback

#: The database errors that are the user's to fix (one ``error:`` line).
USER_ERRORS = ("rsc_db.engine:DatabaseUnavailable", "rsc_db.engine:SchemaVersionMismatch")

app = typer.Typer(help="Inspect the rsc training database.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
DbOption = Annotated[
    str | None,
    typer.Option("--db", help="SQLAlchemy URL", show_default="$DATABASE_URL, else "
                 "sqlite:///./rsc.sqlite"),
]
RunDirOption = Annotated[
    Path | None, typer.Option("--run-dir", help="Use <run-dir>/rsc.sqlite when no URL is given.")
]


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=version_callback("reinforce-strategy-creator"), is_eager=True,
        help="show the version")] = False) -> None:
    """Inspect the rsc training database."""


def _url(db: str | None, run_dir: Path | None) -> str:
    from sqlalchemy.engine import make_url

    from .engine import resolve_url

    url = resolve_url(db, run_dir)
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:"):
        if not Path(u.database).exists():
            raise UserError(f"no database file at {u.database}")
    return url


def _cell(value: Any) -> str:
    import pandas as pd

    if value is None or (not isinstance(value, dict) and pd.isna(value)):
        return ""
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _print(frame: Any, columns: list[str], title: str, *, no_wrap: tuple[str, ...] = ()) -> None:
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        numeric = pd.api.types.is_numeric_dtype(frame[col]) if col in frame else False
        table.add_column(col, justify="right" if numeric else "left", no_wrap=col in no_wrap,
                         overflow="fold")
    for row in frame[columns].itertuples(index=False):
        table.add_row(*(_cell(v) for v in row))
    Console(width=max(Console().width, 160)).print(table)


@app.command()
@cli_errors("rsc-db", USER_ERRORS)
def runs(db: DbOption = None, run_dir: RunDirOption = None,
         stale_after: Annotated[float, typer.Option(
             help="seconds without a heartbeat after which a running run is stale")] = 120.0,
         ) -> None:
    """List training runs, newest first (``stale``: running, but its heartbeat stopped)."""
    from .engine import mask_url
    from .query import runs_frame

    url = _url(db, run_dir)
    frame = runs_frame(url, stale_after_s=stale_after)
    cols = ["run_id", "status", "start_time", "end_time", "last_seen", "episodes", "notes"]
    _print(frame, cols, f"training runs in {mask_url(url)}", no_wrap=("run_id", "status"))
    if (frame["status"] == "stale").any():
        print("stale runs: their process stopped without closing them; "
              "`rsc-db mark-interrupted --stale` marks them interrupted")


@app.command()
@cli_errors("rsc-db", USER_ERRORS)
def episodes(run_id: str, db: DbOption = None, run_dir: RunDirOption = None) -> None:
    """List the episodes of RUN_ID in logging order."""
    from .engine import mask_url
    from .query import episodes_frame

    url = _url(db, run_dir)
    frame = episodes_frame(url, run_id)
    if frame.empty:
        raise UserError(f"no episodes for run {run_id!r} in {mask_url(url)}")
    cols = ["episode_id", "rllib_episode_id", "end_time", "total_steps", "total_reward", "pnl",
            "sharpe_ratio", "max_drawdown", "win_rate", "final_portfolio_value"]
    _print(frame, cols, f"episodes of run {run_id}", no_wrap=("rllib_episode_id",))


@app.command()
@cli_errors("rsc-db", USER_ERRORS)
def sweeps(db: DbOption = None, run_dir: RunDirOption = None) -> None:
    """List rsc-tune sweeps, newest first, with their trial counts and test-period verdict."""
    from .engine import mask_url
    from .sweeps import sweeps_frame

    url = _url(db, run_dir)
    frame = sweeps_frame(url)
    frame["metric"] = frame["settings"].map(lambda s: (s or {}).get("metric"))
    frame["beats_buy_and_hold"] = frame["verdict"].map(
        lambda v: None if not v else ("yes" if v.get("beats_buy_and_hold") else "no"))
    frame["test_difference"] = frame["verdict"].map(
        lambda v: None if not v else v.get("difference_mean"))
    cols = ["sweep_id", "status", "created_at", "finished_at", "trials", "finished", "metric",
            "best_trial_id", "beats_buy_and_hold", "test_difference"]
    _print(frame, cols, f"sweeps in {mask_url(url)}", no_wrap=("sweep_id", "status"))


@app.command()
@cli_errors("rsc-db", USER_ERRORS)
def trials(sweep_id: str, db: DbOption = None, run_dir: RunDirOption = None) -> None:
    """List the trials of SWEEP_ID, best validation metric first."""
    import json

    from .engine import mask_url
    from .sweeps import trials_frame

    url = _url(db, run_dir)
    frame = trials_frame(url, sweep_id)
    if frame.empty:
        raise UserError(f"no trials for sweep {sweep_id!r} in {mask_url(url)}")
    frame["params"] = frame["params"].map(
        lambda p: json.dumps({k: round(v, 6) if isinstance(v, float) else v
                              for k, v in (p or {}).items()}))
    cols = ["trial_id", "status", "metric_value", "folds_done", "env_steps", "wall_time_s",
            "run_id", "params"]
    _print(frame, cols, f"trials of sweep {sweep_id}", no_wrap=("trial_id", "status"))


@app.command("mark-interrupted")
@cli_errors("rsc-db", USER_ERRORS)
def mark_interrupted(
    run_ids: Annotated[list[str] | None, typer.Argument(help="runs to mark")] = None,
    stale: Annotated[bool, typer.Option(help="mark every stale run")] = False,
    stale_after: Annotated[float, typer.Option(
        help="seconds without a heartbeat after which a running run is stale")] = 120.0,
    db: DbOption = None, run_dir: RunDirOption = None,
) -> None:
    """Mark runs left ``running`` by a killed process as ``interrupted``."""
    from .query import mark_interrupted as mark
    from .query import runs_frame

    url = _url(db, run_dir)
    ids = list(run_ids or [])
    if stale:
        frame = runs_frame(url, stale_after_s=stale_after)
        ids += frame.loc[frame["status"] == "stale", "run_id"].tolist()
    if not ids:
        if stale:  # asked for the stale runs, and there are none: a fine outcome
            print(f"no stale runs (no running run without a heartbeat for {stale_after:g} s); "
                  "nothing marked")
            return
        raise UserError("name the runs to mark, or give --stale")
    print(f"marked {mark(url, ids)} run(s) interrupted")


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
