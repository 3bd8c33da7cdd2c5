"""Read the training database into pandas DataFrames (timestamps as UTC-aware columns)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Select, Table, func, select

from .engine import open_database
from .models import TrainingRun, UTCDateTime
from .writer import EPISODES, OPERATIONS, STEPS, TRADES

RUNS: Table = TrainingRun.__table__  # type: ignore[attr-defined]

#: Surrogate keys, wall-clock columns and runner ids: what differs between two runs that
#: logged the same episodes.
VOLATILE_COLUMNS = {
    "training_runs": ["run_id", "start_time", "end_time", "last_seen"],
    "episodes": ["episode_id", "run_id", "rllib_episode_id", "start_time", "end_time"],
    "steps": ["step_id", "episode_id"],
    "trades": ["trade_id", "episode_id"],
    "trading_operations": ["operation_id", "step_id", "episode_id"],
}


@contextmanager
def connect_existing(url: str | None) -> Iterator[Connection]:
    """A connection to an existing rsc database (schema checked, nothing created)."""
    engine = open_database(url, create=False)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def read_frame(conn: Connection, stmt: Select[Any]) -> pd.DataFrame:
    """The rows of ``stmt`` as a DataFrame (timestamps as UTC datetimes)."""
    result = conn.execute(stmt)
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    for col in stmt.selected_columns:
        if isinstance(col.type, UTCDateTime):
            frame[col.key] = pd.to_datetime(frame[col.key], utc=True)
    return frame


def _run_episode_ids(run_id: str) -> Select[Any]:
    return select(EPISODES.c.episode_id).where(EPISODES.c.run_id == run_id)


#: A ``running`` run whose heartbeat (``last_seen``) is older than this is shown as ``stale``:
#: its process was killed without closing it.
STALE_AFTER_S = 120.0


def runs_frame(url: str | None = None, *, stale_after_s: float = STALE_AFTER_S) -> pd.DataFrame:
    """All training runs (newest first) with their episode count; a ``running`` run whose
    heartbeat is older than ``stale_after_s`` has ``status`` ``stale``."""
    n = (
        select(func.count())
        .where(EPISODES.c.run_id == RUNS.c.run_id)
        .scalar_subquery()
        .label("episodes")
    )
    with connect_existing(url) as conn:
        frame = read_frame(conn, select(RUNS, n).order_by(RUNS.c.start_time.desc()))
    if not frame.empty:
        seen = pd.to_datetime(frame["last_seen"].fillna(frame["start_time"]), utc=True)
        old = seen < pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=stale_after_s)
        frame.loc[(frame["status"] == "running") & old, "status"] = "stale"
    return frame


def mark_interrupted(url: str | None, run_ids: list[str]) -> int:
    """Set ``running`` runs to ``interrupted`` (with an end time and a note); the count set."""
    from datetime import UTC, datetime

    from sqlalchemy import update

    with connect_existing(url) as conn:
        result = conn.execute(
            update(RUNS).where(RUNS.c.run_id.in_(run_ids), RUNS.c.status == "running")
            .values(status="interrupted", end_time=datetime.now(UTC),
                    notes="marked interrupted by rsc-db (its process had stopped)"))
        conn.commit()
    return int(result.rowcount)


def episodes_frame(url: str | None, run_id: str) -> pd.DataFrame:
    """The episodes of ``run_id`` in logging order."""
    stmt = select(EPISODES).where(EPISODES.c.run_id == run_id).order_by(EPISODES.c.episode_id)
    with connect_existing(url) as conn:
        return read_frame(conn, stmt)


def steps_frame(
    url: str | None,
    key: str | int | None = None,
    *,
    run_id: str | None = None,
    episode_id: int | None = None,
) -> pd.DataFrame:
    """The steps of a run (``key`` a str, or ``run_id=``) or of one episode (``key`` an int, or
    ``episode_id=``), ordered by episode then step."""
    if isinstance(key, str):
        run_id = key
    elif isinstance(key, int):
        episode_id = key
    if (run_id is None) == (episode_id is None):
        raise ValueError("give exactly one of run_id or episode_id")
    stmt = select(STEPS).order_by(STEPS.c.episode_id, STEPS.c.step_id)
    if episode_id is not None:
        stmt = stmt.where(STEPS.c.episode_id == episode_id)
    else:
        stmt = stmt.where(STEPS.c.episode_id.in_(_run_episode_ids(str(run_id))))
    with connect_existing(url) as conn:
        return read_frame(conn, stmt)


def run_tables(url: str | None, run_id: str) -> dict[str, pd.DataFrame]:
    """All rows of one run, table by table (keys are the table names), ordered by id."""
    ids = _run_episode_ids(run_id)
    stmts = {
        "training_runs": select(RUNS).where(RUNS.c.run_id == run_id),
        "episodes": select(EPISODES)
        .where(EPISODES.c.run_id == run_id)
        .order_by(EPISODES.c.episode_id),
        "steps": select(STEPS).where(STEPS.c.episode_id.in_(ids)).order_by(STEPS.c.step_id),
        "trades": select(TRADES).where(TRADES.c.episode_id.in_(ids)).order_by(TRADES.c.trade_id),
        "trading_operations": select(OPERATIONS)
        .where(OPERATIONS.c.episode_id.in_(ids))
        .order_by(OPERATIONS.c.operation_id),
    }
    with connect_existing(url) as conn:
        return {name: read_frame(conn, stmt) for name, stmt in stmts.items()}


def _digest(frame: pd.DataFrame) -> str:
    text = frame.to_csv(index=False, float_format="%.17g")
    return hashlib.sha1(text.encode()).hexdigest()


def _episode_order(tables: dict[str, pd.DataFrame]) -> dict[int, int]:
    """episode_id -> rank, by (first step time, summary figures, content digests)."""
    eps = tables["episodes"]
    steps = tables["steps"].sort_values("step_id")
    trades = tables["trades"].sort_values("trade_id")
    step_groups = dict(tuple(steps.groupby("episode_id")))
    trade_groups = dict(tuple(trades.groupby("episode_id")))
    empty_s, empty_t = steps.iloc[:0], trades.iloc[:0]
    latest = pd.Timestamp.max.tz_localize("UTC")
    keys = []
    for row in eps.itertuples(index=False):
        eid = row.episode_id
        s = step_groups.get(eid, empty_s).drop(columns=["step_id", "episode_id"])
        t = trade_groups.get(eid, empty_t).drop(columns=["trade_id", "episode_id"])
        start = s["timestamp"].min() if len(s) else latest
        keys.append(
            (
                start,
                row.pnl,
                row.total_reward,
                row.sharpe_ratio,
                row.max_drawdown,
                row.win_rate,
                row.total_steps,
                row.final_portfolio_value,
                _digest(s),
                _digest(t),
                eid,
            )
        )
    return {k[-1]: rank for rank, k in enumerate(sorted(keys))}


def comparable_rows(url: str | None, run_id: str) -> dict[str, pd.DataFrame]:
    """The run's rows without surrogate ids, wall-clock times and runner episode ids, in a
    deterministic order, so that two runs that logged the same episodes compare equal.

    Episodes are sorted by first step time, then summary figures, then content; child rows
    carry ``episode_order`` (the episode's rank) instead of ids and are sorted by it and by
    time (operations keep their within-step order: an exit before an entry).
    ``training_runs.parameters`` becomes canonical JSON text.
    """
    tables = run_tables(url, run_id)
    order = _episode_order(tables)
    out: dict[str, pd.DataFrame] = {}
    runs = tables["training_runs"].copy()
    runs["parameters"] = runs["parameters"].map(lambda p: json.dumps(p, sort_keys=True))
    out["training_runs"] = runs
    sort_keys = {
        "episodes": ["episode_order"],
        "steps": ["episode_order", "timestamp", "step_id"],
        "trades": ["episode_order", "entry_time", "exit_time", "trade_id"],
        "trading_operations": ["episode_order", "timestamp", "operation_id"],
    }
    for name, keys in sort_keys.items():
        frame = tables[name].copy()
        frame.insert(0, "episode_order", frame["episode_id"].map(order).astype("int64"))
        out[name] = frame.sort_values(keys, kind="stable")
    return {
        name: frame.drop(columns=VOLATILE_COLUMNS[name]).reset_index(drop=True)
        for name, frame in out.items()
    }
