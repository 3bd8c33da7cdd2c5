"""Low-level bulk writes of one episode inside a caller's transaction.

SQLite takes a fast path (plain DB-API multi-row ``INSERT`` statements with pre-formatted
timestamps), PostgreSQL with psycopg 3 uses ``COPY``; other databases use SQLAlchemy Core bulk
inserts.
"""

from __future__ import annotations

from datetime import UTC
from itertools import chain
from typing import Any

from sqlalchemy import Connection, Table, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from .models import Episode, Step, Trade, TradingOperation, sqlite_datetime_text
from .records import TRADE_KEYS, EpisodeRecord

EPISODES: Table = Episode.__table__  # type: ignore[attr-defined]
STEPS: Table = Step.__table__  # type: ignore[attr-defined]
TRADES: Table = Trade.__table__  # type: ignore[attr-defined]
OPERATIONS: Table = TradingOperation.__table__  # type: ignore[attr-defined]

_STEP_COLS = (
    "episode_id",
    "timestamp",
    "portfolio_value",
    "reward",
    "asset_price",
    "action",
    "position",
)
_TRADE_COLS = ("episode_id", *TRADE_KEYS)
_OP_COLS = ("step_id", "episode_id", "timestamp", "operation_type", "size", "price")


#: Bound parameters per statement: SQLite's smallest compiled-in limit (999 before 3.32).
SQLITE_MAX_PARAMS = 999


def _sqlite_insert_many(cur: Any, table: Table, cols: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert ``rows`` with multi-row ``INSERT ... VALUES (...), (...)`` statements.

    One statement carries up to ``SQLITE_MAX_PARAMS`` parameters. Against ``executemany`` this
    halves SQLite's per-row cost and, more importantly, releases the GIL once per statement
    instead of once per row: a writer thread doing thousands of GIL hand-offs per episode
    stalls a CPU-bound learner thread in the same process.
    """
    width = len(cols)
    per_stmt = max(1, SQLITE_MAX_PARAMS // width)
    names = ", ".join(f'"{c}"' for c in cols)
    head = f'INSERT INTO "{table.name}" ({names}) VALUES '
    one = "(" + ", ".join("?" * width) + ")"
    for start in range(0, len(rows), per_stmt):
        part = rows[start : start + per_stmt]
        cur.execute(head + ", ".join([one] * len(part)), list(chain.from_iterable(part)))


def insert_episode(conn: Connection, row: dict[str, Any]) -> int | None:
    """Insert the ``episodes`` row; its new id, or ``None`` if ``rllib_episode_id`` exists."""
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        ins = (sqlite_insert if dialect == "sqlite" else pg_insert)(EPISODES)
        stmt = ins.values(**row).on_conflict_do_nothing(index_elements=["rllib_episode_id"])
        return conn.execute(stmt.returning(EPISODES.c.episode_id)).scalar_one_or_none()
    try:  # other databases: a savepoint absorbs the unique violation
        with conn.begin_nested():
            return conn.execute(insert(EPISODES).values(**row)).inserted_primary_key[0]
    except IntegrityError:
        found = conn.execute(
            select(EPISODES.c.episode_id).where(
                EPISODES.c.rllib_episode_id == row["rllib_episode_id"]
            )
        ).first()
        if found is None:
            raise
        return None


def write_children(
    conn: Connection, episode_id: int, rec: EpisodeRecord, *, method: str = "auto"
) -> None:
    """Bulk-insert the trades, steps and operations of a freshly inserted episode.

    ``method``: ``auto`` (SQLite: DB-API multi-row INSERT; PostgreSQL + psycopg 3: COPY; else
    ``core``) or ``core`` (SQLAlchemy Core bulk inserts, any database).
    """
    if method not in ("auto", "core"):
        raise ValueError(f"method must be 'auto' or 'core', got {method!r}")
    dialect = conn.dialect
    if method == "auto" and dialect.name == "sqlite":
        _write_sqlite(conn, episode_id, rec)
    elif method == "auto" and dialect.name == "postgresql" and dialect.driver == "psycopg":
        _write_pg_copy(conn, episode_id, rec)
    else:
        _write_core(conn, episode_id, rec)


def _write_core(conn: Connection, episode_id: int, rec: EpisodeRecord) -> None:
    if rec.trades:
        conn.execute(insert(TRADES), [{**t, "episode_id": episode_id} for t in rec.trades])
    if not rec.steps:
        return
    steps = [{**s, "episode_id": episode_id} for s in rec.steps]
    if not rec.operations:
        conn.execute(insert(STEPS), steps)
        return
    stmt = insert(STEPS).returning(STEPS.c.step_id, sort_by_parameter_order=True)
    step_ids = list(conn.execute(stmt, steps).scalars())
    ops = [
        {
            "step_id": step_ids[op["step_index"]],
            "episode_id": episode_id,
            "timestamp": op["timestamp"],
            "operation_type": op["operation_type"],
            "size": op["size"],
            "price": op["price"],
        }
        for op in rec.operations
    ]
    conn.execute(insert(OPERATIONS), ops)


def _write_sqlite(conn: Connection, episode_id: int, rec: EpisodeRecord) -> None:
    cur = conn.connection.driver_connection.cursor()  # same DB-API connection, same transaction
    try:
        if rec.trades:
            _sqlite_insert_many(cur, TRADES, _TRADE_COLS, [
                (episode_id, sqlite_datetime_text(t["entry_time"]),
                 sqlite_datetime_text(t["exit_time"]), t["entry_price"], t["exit_price"],
                 t["quantity"], t["direction"], t["pnl"], t["costs"])
                for t in rec.trades
            ])  # fmt: skip
        if not rec.steps:
            return
        stamps = [sqlite_datetime_text(s["timestamp"]) for s in rec.steps]
        _sqlite_insert_many(cur, STEPS, _STEP_COLS, [
            (episode_id, ts, s["portfolio_value"], s["reward"], s["asset_price"], s["action"],
             s["position"])
            for ts, s in zip(stamps, rec.steps, strict=True)
        ])  # fmt: skip
        if not rec.operations:
            return
        # Rowids are assigned max+1 row by row while this transaction holds the write lock
        # (BEGIN IMMEDIATE), so the new episode's step ids in ascending order are its steps in
        # input order.
        cur.execute(
            'SELECT "step_id" FROM "steps" WHERE "episode_id" = ? ORDER BY "step_id"',
            (episode_id,),
        )
        step_ids = [r[0] for r in cur.fetchall()]
        if len(step_ids) != len(rec.steps):  # impossible for a fresh episode id; never guess
            raise RuntimeError(
                f"episode {episode_id}: wrote {len(rec.steps)} steps, read back {len(step_ids)}"
            )
        _sqlite_insert_many(cur, OPERATIONS, _OP_COLS, [
            (step_ids[op["step_index"]], episode_id, stamps[op["step_index"]],
             op["operation_type"], op["size"], op["price"])
            for op in rec.operations
        ])  # fmt: skip
    finally:
        cur.close()


def _copy(cur: Any, table: Table, cols: tuple[str, ...], rows: Any) -> None:
    names = ", ".join(f'"{c}"' for c in cols)
    with cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)


def _write_pg_copy(conn: Connection, episode_id: int, rec: EpisodeRecord) -> None:
    """PostgreSQL + psycopg 3: COPY, with step ids drawn from the steps sequence up front."""
    cur = conn.connection.driver_connection.cursor()  # same connection, same transaction
    try:
        if rec.trades:
            _copy(cur, TRADES, _TRADE_COLS, (
                (episode_id, t["entry_time"], t["exit_time"], t["entry_price"], t["exit_price"],
                 t["quantity"], t["direction"], t["pnl"], t["costs"])
                for t in rec.trades
            ))  # fmt: skip
        if not rec.steps:
            return
        cur.execute(
            "SELECT nextval(pg_get_serial_sequence('steps', 'step_id')) "
            "FROM generate_series(1, %s)",
            (len(rec.steps),),
        )
        step_ids = sorted(r[0] for r in cur.fetchall())  # ascending ids in step order
        stamps = [s["timestamp"].replace(tzinfo=UTC) if s["timestamp"].tzinfo is None
                  else s["timestamp"] for s in rec.steps]  # fmt: skip
        _copy(cur, STEPS, ("step_id", *_STEP_COLS), (
            (sid, episode_id, ts, s["portfolio_value"], s["reward"], s["asset_price"],
             s["action"], s["position"])
            for sid, ts, s in zip(step_ids, stamps, rec.steps, strict=True)
        ))  # fmt: skip
        if rec.operations:
            _copy(cur, OPERATIONS, _OP_COLS, (
                (step_ids[op["step_index"]], episode_id, stamps[op["step_index"]],
                 op["operation_type"], op["size"], op["price"])
                for op in rec.operations
            ))  # fmt: skip
    finally:
        cur.close()
