"""rsc_db: the training database (SQLModel tables, RunLogger, pandas queries).

SQLite is the embedded default; any SQLAlchemy URL works (PostgreSQL is tested).
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("reinforce-strategy-creator")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"

if TYPE_CHECKING:
    from .engine import (
        DatabaseUnavailable,
        SchemaVersionMismatch,
        ensure_schema,
        make_engine,
        mask_url,
        open_database,
        resolve_url,
    )
    from .episode_writer import EpisodeWriter
    from .logger import RunLogger, install_sigterm_handler, new_run_id
    from .models import (
        SCHEMA_VERSION,
        Episode,
        SchemaVersion,
        Step,
        Trade,
        TradingOperation,
        TrainingRun,
    )
    from .query import comparable_rows, episodes_frame, run_tables, runs_frame, steps_frame
    from .records import EpisodeRecord, episode_record

_WHERE = {
    "DatabaseUnavailable": "engine", "SchemaVersionMismatch": "engine",
    "ensure_schema": "engine", "make_engine": "engine", "mask_url": "engine",
    "open_database": "engine", "resolve_url": "engine", "RunLogger": "logger",
    "install_sigterm_handler": "logger", "new_run_id": "logger", "SCHEMA_VERSION": "models",
    "Episode": "models", "SchemaVersion": "models", "Step": "models", "Trade": "models",
    "TradingOperation": "models", "TrainingRun": "models", "comparable_rows": "query",
    "episodes_frame": "query", "run_tables": "query", "runs_frame": "query",
    "steps_frame": "query", "EpisodeRecord": "records", "episode_record": "records",
    "EpisodeWriter": "episode_writer",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    """Submodules load on first use (``rsc-db --help`` stays fast)."""
    if name in _WHERE:
        return getattr(importlib.import_module(f"rsc_db.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'rsc_db' has no attribute {name!r}")


__all__ = [
    "SCHEMA_VERSION",
    "DatabaseUnavailable",
    "Episode",
    "EpisodeRecord",
    "EpisodeWriter",
    "RunLogger",
    "SchemaVersion",
    "SchemaVersionMismatch",
    "Step",
    "Trade",
    "TradingOperation",
    "TrainingRun",
    "comparable_rows",
    "ensure_schema",
    "episode_record",
    "episodes_frame",
    "install_sigterm_handler",
    "make_engine",
    "mask_url",
    "new_run_id",
    "open_database",
    "resolve_url",
    "run_tables",
    "runs_frame",
    "steps_frame",
]
