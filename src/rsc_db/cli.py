"""``rsc-db``: list training runs and their episodes as tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from .engine import DatabaseUnavailable, SchemaVersionMismatch, mask_url, resolve_url
from .query import episodes_frame, runs_frame

app = typer.Typer(
    help="Inspect the rsc training database.", no_args_is_help=True, add_completion=False
)
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="SQLAlchemy URL (default: $DATABASE_URL, else sqlite:///./rsc.sqlite).",
        show_default=False,
    ),
]
RunDirOption = Annotated[
    Path | None, typer.Option("--run-dir", help="Use <run-dir>/rsc.sqlite when no URL is given.")
]


def _url(db: str | None, run_dir: Path | None) -> str:
    url = resolve_url(db, run_dir)
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:"):
        if not Path(u.database).exists():
            _fail(f"no database file at {u.database}")
    return url


def _fail(message: str) -> None:
    Console(stderr=True).print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def _cell(value: Any) -> str:
    if value is None or (not isinstance(value, dict) and pd.isna(value)):
        return ""
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _print(frame: pd.DataFrame, columns: list[str], title: str) -> None:
    table = Table(title=title)
    for col in columns:
        numeric = pd.api.types.is_numeric_dtype(frame[col]) if col in frame else False
        table.add_column(col, justify="right" if numeric else "left")
    for row in frame[columns].itertuples(index=False):
        table.add_row(*(_cell(v) for v in row))
    Console().print(table)


def _read(fn: Any, *args: Any) -> pd.DataFrame:
    try:
        return fn(*args)
    except (DatabaseUnavailable, SchemaVersionMismatch) as exc:
        _fail(str(exc))
        raise AssertionError from exc  # unreachable


@app.command()
def runs(db: DbOption = None, run_dir: RunDirOption = None) -> None:
    """List training runs, newest first."""
    url = _url(db, run_dir)
    frame = _read(runs_frame, url)
    cols = ["run_id", "status", "start_time", "end_time", "episodes", "notes"]
    _print(frame, cols, f"training runs in {mask_url(url)}")


@app.command()
def episodes(run_id: str, db: DbOption = None, run_dir: RunDirOption = None) -> None:
    """List the episodes of RUN_ID in logging order."""
    url = _url(db, run_dir)
    frame = _read(episodes_frame, url, run_id)
    if frame.empty:
        _fail(f"no episodes for run {run_id!r} in {mask_url(url)}")
    cols = [
        "episode_id",
        "rllib_episode_id",
        "end_time",
        "total_steps",
        "total_reward",
        "pnl",
        "sharpe_ratio",
        "max_drawdown",
        "win_rate",
        "final_portfolio_value",
    ]
    _print(frame, cols, f"episodes of run {run_id}")


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
