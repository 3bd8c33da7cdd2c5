"""URL resolution, engines, SQLite pragmas, schema creation and the version stamp."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text, update

from rsc_db import (
    SCHEMA_VERSION,
    DatabaseUnavailable,
    RunLogger,
    SchemaVersion,
    SchemaVersionMismatch,
    ensure_schema,
    make_engine,
    open_database,
    resolve_url,
)
from rsc_db.models import TrainingRun

TABLE_NAMES = {"schema_version", "training_runs", "episodes", "steps", "trades",
               "trading_operations"}  # fmt: skip


def test_resolve_url_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://env/db")
    assert resolve_url("sqlite:///explicit.db", tmp_path) == "sqlite:///explicit.db"
    assert resolve_url(None, tmp_path) == "postgresql+psycopg://env/db"
    monkeypatch.delenv("DATABASE_URL")
    assert resolve_url(None, tmp_path) == f"sqlite:///{tmp_path / 'rsc.sqlite'}"
    monkeypatch.chdir(tmp_path)
    assert resolve_url() == f"sqlite:///{tmp_path / 'rsc.sqlite'}"
    assert RunLogger(run_dir=tmp_path, parameters={}).url == resolve_url(None, tmp_path)


def test_schema_created_with_version_stamp(db_url: str) -> None:
    engine = open_database(db_url)
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            assert TABLE_NAMES <= set(insp.get_table_names())
            assert conn.execute(select(SchemaVersion.version)).scalars().all() == [SCHEMA_VERSION]
            indexes = {tuple(ix["column_names"]) for ix in insp.get_indexes("steps")}
            assert ("episode_id", "timestamp") in indexes
            uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints("episodes")}
            uniques |= {
                tuple(ix["column_names"]) for ix in insp.get_indexes("episodes") if ix["unique"]
            }
            assert ("rllib_episode_id",) in uniques
            fks = {fk["referred_table"] for fk in insp.get_foreign_keys("trading_operations")}
            assert fks == {"steps", "episodes"}
        ensure_schema(engine)  # idempotent
        with engine.connect() as conn:
            assert conn.execute(select(SchemaVersion.version)).scalars().all() == [SCHEMA_VERSION]
    finally:
        engine.dispose()


def test_schema_version_mismatch_is_a_clear_error(db_url: str) -> None:
    engine = open_database(db_url)
    with engine.begin() as conn:
        conn.execute(update(SchemaVersion).values(version=SCHEMA_VERSION + 41))
    engine.dispose()
    with pytest.raises(SchemaVersionMismatch, match=f"schema version {SCHEMA_VERSION + 41}"):
        open_database(db_url)
    with pytest.raises(SchemaVersionMismatch):
        RunLogger(db_url, parameters={}).start()


def test_tables_without_stamp_are_refused(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE episodes (x INTEGER)"))
    with pytest.raises(SchemaVersionMismatch, match="no schema_version stamp"):
        ensure_schema(engine)
    engine.dispose()


def test_sqlite_pragmas_on_every_connection(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    conns = [engine.connect() for _ in range(3)]  # three distinct pooled DB-API connections
    try:
        for conn in conns:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }
            assert pragma == {
                "journal_mode": "wal",
                "synchronous": 1,  # NORMAL
                "busy_timeout": 30_000,
                "foreign_keys": 1,
            }
        assert len({id(c.connection.driver_connection) for c in conns}) == 3
    finally:
        for conn in conns:
            conn.close()
        engine.dispose()


def test_unreachable_database_fails_fast_without_password() -> None:
    url = "postgresql+psycopg://u:secret@127.0.0.1:1/x"
    with pytest.raises(DatabaseUnavailable) as err:
        open_database(url)
    message = str(err.value)
    assert "secret" not in message
    assert "postgresql+psycopg://u:***@127.0.0.1:1/x" in message
    with pytest.raises(DatabaseUnavailable) as err:
        RunLogger(url, parameters={}).start()
    assert "secret" not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no chained URL


def test_unopenable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(DatabaseUnavailable, match="sqlite:///"):
        open_database(f"sqlite:///{blocker / 'sub' / 'rsc.sqlite'}")


def test_timestamps_read_back_tz_aware_utc(db_url: str) -> None:
    engine = open_database(db_url)
    plus2 = datetime(2020, 5, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    with engine.begin() as conn:
        conn.execute(
            TrainingRun.__table__.insert(),
            [
                {"run_id": "aware", "start_time": plus2, "status": "running", "parameters": {}},
                {"run_id": "naive", "start_time": datetime(2020, 5, 1, 10), "status": "running",
                 "parameters": {}},
            ],
        )  # fmt: skip
    with engine.connect() as conn:
        got = dict(conn.execute(select(TrainingRun.run_id, TrainingRun.start_time)).all())
    engine.dispose()
    assert got["aware"] == plus2 and got["aware"].tzinfo == UTC
    assert got["naive"] == datetime(2020, 5, 1, 10, tzinfo=UTC)
