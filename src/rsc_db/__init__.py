"""rsc_db: the training database (SQLModel tables, RunLogger, pandas queries).

SQLite is the embedded default; any SQLAlchemy URL works (PostgreSQL is tested).
"""

from .engine import (
    DatabaseUnavailable,
    SchemaVersionMismatch,
    ensure_schema,
    make_engine,
    mask_url,
    open_database,
    resolve_url,
)
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

__all__ = [
    "SCHEMA_VERSION",
    "DatabaseUnavailable",
    "Episode",
    "EpisodeRecord",
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
