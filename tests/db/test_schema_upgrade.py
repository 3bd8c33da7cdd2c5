"""Schema version 3 (sweeps, trials): a version-2 database is upgraded in place, keeping its
rows; a version-1 database is still refused."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select, text

from rsc_db import SCHEMA_VERSION, RunLogger, SchemaVersion, SchemaVersionMismatch, open_database
from rsc_db.query import runs_frame


def _make_old(url: str, version: int) -> None:
    with RunLogger(url, parameters={"x": 1}, run_id="old-run"):
        pass
    engine = open_database(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE trials"))
        conn.execute(text("DROP TABLE sweeps"))
        conn.execute(text(f"UPDATE schema_version SET version = {version}"))
    engine.dispose()


def test_a_version_2_database_is_upgraded_in_place(sqlite_url):
    assert SCHEMA_VERSION == 3
    _make_old(sqlite_url, 2)
    frame = runs_frame(sqlite_url)  # a read upgrades it too
    assert frame["run_id"].tolist() == ["old-run"]
    engine = open_database(sqlite_url)
    try:
        with engine.connect() as conn:
            assert {"sweeps", "trials"} <= set(inspect(conn).get_table_names())
            assert conn.execute(select(SchemaVersion.version)).scalars().all() == [3]
    finally:
        engine.dispose()
    with RunLogger(sqlite_url, parameters={}, run_id="new-run"):
        pass
    assert set(runs_frame(sqlite_url)["run_id"]) == {"old-run", "new-run"}


def test_a_version_1_database_is_still_refused(sqlite_url):
    _make_old(sqlite_url, 1)
    with pytest.raises(SchemaVersionMismatch, match="schema version 1, but rsc_db uses "
                       "schema version 3"):
        open_database(sqlite_url)
