"""Fixtures of the rsc_db tests: real SQLite files and a real PostgreSQL database."""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PG_SCRIPT = REPO / "scripts" / "pg-test-server.sh"


def _load_synthetic() -> Any:
    spec = importlib.util.spec_from_file_location("rsc_db_tests_synthetic", HERE / "_synthetic.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


synthetic_info = _load_synthetic().synthetic_info


@pytest.fixture
def make_info() -> Callable[..., dict[str, Any]]:
    """``make_info(n_steps=60, seed=0, start=...)``: a synthetic terminal info."""
    return synthetic_info


@pytest.fixture
def child_env() -> dict[str, str]:
    """Environment for child Python processes: ``src`` and this folder importable."""
    env = dict(os.environ)
    paths = [str(REPO / "src"), str(HERE), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.pop("DATABASE_URL", None)
    return env


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'rsc.sqlite'}"


def _pg_binaries_exist() -> bool:
    return bool(shutil.which("initdb") or glob.glob("/usr/lib/postgresql/*/bin/initdb"))


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A PostgreSQL server: ``$RSC_TEST_PG_URL``, else one started by scripts/pg-test-server.sh
    (stopped again at the end if this session started it)."""
    url = os.environ.get("RSC_TEST_PG_URL")
    if url:
        yield url
        return
    if not _pg_binaries_exist():
        pytest.skip("no PostgreSQL server binary (initdb) here and RSC_TEST_PG_URL is unset")
    was_running = subprocess.run(["bash", str(PG_SCRIPT), "status"], capture_output=True)
    out = subprocess.run(
        ["bash", str(PG_SCRIPT), "start"], capture_output=True, text=True, timeout=300
    )
    match = re.search(r"RSC_TEST_PG_URL=(\S+)", out.stdout)
    if out.returncode != 0 or not match:
        pytest.fail(f"scripts/pg-test-server.sh failed:\n{out.stdout}\n{out.stderr}")
    yield match.group(1)
    if was_running.returncode != 0:
        subprocess.run(["bash", str(PG_SCRIPT), "stop"], capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def pg_database(pg_server_url: str) -> Iterator[str]:
    """A database of its own for this test session (dropped at the end)."""
    name = f"rsc_db_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    # pool_pre_ping: a fault test restarts the server, which drops pooled connections
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset_pg(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a fresh SQLite file, or the session's PostgreSQL database emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'rsc.sqlite'}"
    url = request.getfixturevalue("pg_database")
    _reset_pg(url)
    return url


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The session's PostgreSQL database, emptied."""
    _reset_pg(pg_database)
    return pg_database


@pytest.fixture
def scalar() -> Callable[[str, str], Any]:
    """``scalar(url, sql)``: the first column of the first row of a raw SQL query."""

    def run(url: str, sql: str) -> Any:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                return conn.execute(text(sql)).scalar()
        finally:
            engine.dispose()

    return run
