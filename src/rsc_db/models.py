"""SQLModel tables of the training database (see shared/spec/database.md).

All timestamps are timezone-aware UTC (:class:`UTCDateTime`). String enums are plain strings
guarded by CHECK constraints so that dashboards can read them without a lookup table.
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine, UserDefinedType
from sqlmodel import Field, SQLModel

#: Bumped whenever a table or column changes; stamped into ``schema_version`` at creation.
SCHEMA_VERSION = 3  # 2: training_runs.last_seen (heartbeat); 3: sweeps, trials (rsc-tune)

RUN_STATUSES = ("running", "completed", "failed", "interrupted")
SWEEP_STATUSES = ("running", "completed", "interrupted", "failed")
#: ``stopped``: ended early by the scheduler (ASHA) after fewer folds than the others.
TRIAL_STATUSES = ("running", "completed", "stopped", "failed", "interrupted")
EPISODE_STATUSES = ("started", "completed")
ACTIONS = ("flat", "long", "short")
DIRECTIONS = ("long", "short")
OPERATION_TYPES = ("ENTRY_LONG", "EXIT_LONG", "ENTRY_SHORT", "EXIT_SHORT", "HOLD")


def sqlite_datetime_text(value: datetime) -> str:
    """The SQLite storage text of a timestamp: naive UTC ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


class _SQLiteDateTimeText(UserDefinedType[str]):
    """SQLite storage of :class:`UTCDateTime`: declared ``DATETIME``, stored as the text
    ``YYYY-MM-DD HH:MM:SS.ffffff`` (SQLAlchemy's usual SQLite format), converted in one step."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "DATETIME"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware (UTC).

    Naive input is taken to be UTC already (bar dates of the market data are naive UTC).
    SQLite has no time zones: values are stored as naive UTC text and re-tagged on read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return _SQLiteDateTimeText()
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return sqlite_datetime_text(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _in(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name)


# BIGINT surrogate keys on PostgreSQL; INTEGER on SQLite so that they alias the rowid.
_ID = BigInteger().with_variant(Integer, "sqlite")
_JSON = JSON().with_variant(JSONB, "postgresql")


class SchemaVersion(SQLModel, table=True):
    """One row: the schema version this database was created with."""

    __tablename__ = "schema_version"

    version: int = Field(primary_key=True)
    created_at: datetime = Field(sa_type=UTCDateTime)


class TrainingRun(SQLModel, table=True):
    """One training run; ``parameters`` holds every env/agent/parallelism setting (JSON)."""

    __tablename__ = "training_runs"
    __table_args__ = (_in("status", RUN_STATUSES, "ck_training_runs_status"),)

    run_id: str = Field(primary_key=True, max_length=64)
    start_time: datetime = Field(sa_type=UTCDateTime)
    end_time: datetime | None = Field(default=None, sa_type=UTCDateTime)
    parameters: dict[str, Any] = Field(default_factory=dict, sa_column=Column(_JSON))
    status: str = Field(default="running", max_length=16, index=True)
    notes: str | None = None
    #: Heartbeat of a ``running`` run, refreshed while it trains; a run whose heartbeat is older
    #: than :data:`rsc_db.query.STALE_AFTER_S` was killed without closing it (``stale``).
    last_seen: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Episode(SQLModel, table=True):
    """One finished episode with the environment's summary figures.

    Episodes are written whole in one transaction, so ``status`` is always ``completed``
    (``started`` is kept for spec compatibility).
    """

    __tablename__ = "episodes"
    __table_args__ = (_in("status", EPISODE_STATUSES, "ck_episodes_status"),)

    episode_id: int | None = Field(default=None, sa_column=Column(_ID, primary_key=True))
    run_id: str = Field(
        foreign_key="training_runs.run_id", ondelete="CASCADE", index=True, max_length=64
    )
    rllib_episode_id: str = Field(sa_column=Column(String(128), unique=True, nullable=False))
    start_time: datetime | None = Field(default=None, sa_type=UTCDateTime)
    end_time: datetime | None = Field(default=None, sa_type=UTCDateTime)
    initial_portfolio_value: float
    final_portfolio_value: float
    status: str = Field(default="completed", max_length=16)
    pnl: float
    sharpe_ratio: float
    max_drawdown: float
    total_reward: float
    total_steps: int
    win_rate: float


class Step(SQLModel, table=True):
    """One environment step: the bar date (``timestamp``), the agent's action and the
    position after the step."""

    __tablename__ = "steps"
    __table_args__ = (
        Index("ix_steps_episode_id_timestamp", "episode_id", "timestamp"),
        _in("action", ACTIONS, "ck_steps_action"),
        _in("position", ACTIONS, "ck_steps_position"),
    )

    step_id: int | None = Field(default=None, sa_column=Column(_ID, primary_key=True))
    episode_id: int = Field(foreign_key="episodes.episode_id", ondelete="CASCADE")
    timestamp: datetime = Field(sa_type=UTCDateTime)
    portfolio_value: float
    reward: float
    asset_price: float
    action: str = Field(max_length=8)
    position: str = Field(max_length=8)


class Trade(SQLModel, table=True):
    """One completed round trip (a position still open at the episode end is not a trade)."""

    __tablename__ = "trades"
    __table_args__ = (_in("direction", DIRECTIONS, "ck_trades_direction"),)

    trade_id: int | None = Field(default=None, sa_column=Column(_ID, primary_key=True))
    episode_id: int = Field(foreign_key="episodes.episode_id", ondelete="CASCADE", index=True)
    entry_time: datetime = Field(sa_type=UTCDateTime)
    exit_time: datetime = Field(sa_type=UTCDateTime)
    entry_price: float
    exit_price: float
    quantity: int
    direction: str = Field(max_length=8)
    pnl: float
    costs: float


class TradingOperation(SQLModel, table=True):
    """One position-changing operation; a reversal is two rows on the same step (exit, then
    entry). ``HOLD`` is an allowed value but the environment never reports HOLD operations,
    so none are written: a step without a row here kept its position.
    """

    __tablename__ = "trading_operations"
    __table_args__ = (_in("operation_type", OPERATION_TYPES, "ck_trading_operations_type"),)

    operation_id: int | None = Field(default=None, sa_column=Column(_ID, primary_key=True))
    step_id: int = Field(foreign_key="steps.step_id", ondelete="CASCADE", index=True)
    episode_id: int = Field(foreign_key="episodes.episode_id", ondelete="CASCADE", index=True)
    timestamp: datetime = Field(sa_type=UTCDateTime)
    operation_type: str = Field(max_length=16)
    size: float
    price: float


class Sweep(SQLModel, table=True):
    """One ``rsc-tune`` sweep: its search space and settings, status, best trial and the
    test-period verdict of the best configuration (JSON)."""

    __tablename__ = "sweeps"
    __table_args__ = (_in("status", SWEEP_STATUSES, "ck_sweeps_status"),)

    sweep_id: str = Field(primary_key=True, max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    space: dict[str, Any] = Field(default_factory=dict, sa_column=Column(_JSON))
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(_JSON))
    status: str = Field(default="running", max_length=16, index=True)
    best_trial_id: str | None = Field(default=None, max_length=64)
    verdict: dict[str, Any] | None = Field(default=None, sa_column=Column(_JSON))


class Trial(SQLModel, table=True):
    """One configuration of a sweep (a Ray Tune trial, keyed by Tune's trial id within the
    sweep): its parameters, per-fold validation figures, the sweep metric and a
    ``training_runs`` row (``run_id``) with its status."""

    __tablename__ = "trials"
    __table_args__ = (
        _in("status", TRIAL_STATUSES, "ck_trials_status"),
        UniqueConstraint("sweep_id", "trial_id", name="uq_trials_sweep_trial"),
    )

    id: int | None = Field(default=None, sa_column=Column(_ID, primary_key=True))
    sweep_id: str = Field(foreign_key="sweeps.sweep_id", ondelete="CASCADE", index=True,
                          max_length=64)
    trial_id: str = Field(max_length=64)
    run_id: str | None = Field(default=None, foreign_key="training_runs.run_id",
                               ondelete="SET NULL", max_length=64)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(_JSON))
    fold_metrics: list[Any] = Field(default_factory=list, sa_column=Column(_JSON))
    metric_value: float | None = None
    folds_done: int = 0
    env_steps: int = 0
    wall_time_s: float | None = None
    status: str = Field(default="running", max_length=16)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


#: The tables this package owns (creation order).
TABLES = tuple(
    m.__table__  # type: ignore[attr-defined]
    for m in (SchemaVersion, TrainingRun, Episode, Step, Trade, TradingOperation, Sweep, Trial)
)
#: Tables added by schema version 3 (created in place when a version-2 database is opened).
V3_TABLES = tuple(m.__table__ for m in (Sweep, Trial))  # type: ignore[attr-defined]
