"""Database URL resolution, engine creation, schema creation and the version stamp."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, insert, inspect, select, text, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel

from .models import SCHEMA_VERSION, TABLES, V3_TABLES, SchemaVersion

DEFAULT_SQLITE_NAME = "rsc.sqlite"
SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10
SQLITE_PRAGMAS = (
    ("journal_mode", "WAL"),
    ("synchronous", "NORMAL"),
    ("busy_timeout", str(SQLITE_BUSY_TIMEOUT_MS)),
    ("foreign_keys", "ON"),
)


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or opened (message names the URL, password hidden)."""


class SchemaVersionMismatch(RuntimeError):
    """The database was created by another schema version of rsc_db."""


def resolve_url(url: str | None = None, run_dir: str | Path | None = None) -> str:
    """The database URL: ``url`` if given, else ``$DATABASE_URL``, else
    ``sqlite:///<run_dir>/rsc.sqlite`` (``run_dir`` defaults to the working directory)."""
    if url:
        return str(url)
    env = os.environ.get("DATABASE_URL", "").strip()
    if env:
        return env
    base = Path(run_dir) if run_dir is not None else Path.cwd()
    return f"sqlite:///{(base / DEFAULT_SQLITE_NAME).absolute()}"


def mask_url(url: str | URL) -> str:
    """``url`` as text with its password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _sqlite_file(url: URL) -> Path | None:
    db = url.database
    if not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db)


def make_engine(url: str | URL, *, sqlite_begin: str = "DEFERRED", **kwargs: Any) -> Engine:
    """Create an engine for any SQLAlchemy URL.

    SQLite connections get WAL, ``synchronous=NORMAL``, a busy timeout and foreign keys on
    every connect, and SQLAlchemy emits ``BEGIN <sqlite_begin>`` itself (``IMMEDIATE`` takes
    the write lock up front, which avoids lock-upgrade failures between concurrent writers).
    PostgreSQL connections get a connect timeout so an unreachable server fails fast.
    """
    try:
        u = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUnavailable(f"invalid database URL {mask_url(url)}: {exc}") from None
    if u.get_backend_name() == "sqlite":
        return _make_sqlite_engine(u, sqlite_begin, **kwargs)
    if u.get_backend_name() == "postgresql" and "connect_timeout" not in u.query:
        kwargs.setdefault("connect_args", {}).setdefault("connect_timeout", PG_CONNECT_TIMEOUT_S)
    kwargs.setdefault("pool_pre_ping", True)
    try:
        return create_engine(u, **kwargs)
    except (ArgumentError, ImportError) as exc:  # unknown scheme, or its driver is missing
        raise DatabaseUnavailable(
            f"cannot use database URL {mask_url(u)} ({type(exc).__name__}: {exc}); rsc works "
            "with sqlite:///FILE and postgresql+psycopg://USER@HOST/DB") from None


def _make_sqlite_engine(u: URL, sqlite_begin: str, **kwargs: Any) -> Engine:
    if sqlite_begin.upper() not in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE"):
        raise ValueError(f"sqlite_begin must be DEFERRED, IMMEDIATE or EXCLUSIVE: {sqlite_begin}")
    connect_args = kwargs.setdefault("connect_args", {})
    connect_args.setdefault("check_same_thread", False)
    path = _sqlite_file(u)
    if path is None:
        kwargs.setdefault("poolclass", StaticPool)
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseUnavailable(f"cannot open database {mask_url(u)}: {exc}") from None
    engine = create_engine(u, **kwargs)
    begin_sql = f"BEGIN {sqlite_begin.upper()}"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (see below)
        cur = dbapi_conn.cursor()
        try:
            for name, value in SQLITE_PRAGMAS:
                cur.execute(f"PRAGMA {name}={value}")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin_sql)

    return engine


def check_connection(engine: Engine) -> None:
    """Open one connection and run ``SELECT 1``; raise :class:`DatabaseUnavailable` if that
    fails (the message names the URL without its password)."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (DBAPIError, OSError, ImportError) as exc:
        raise DatabaseUnavailable(
            f"cannot connect to database {mask_url(engine.url)}: {_reason(exc, engine)}"
        ) from None


def read_schema_version(engine: Engine) -> int | None:
    """The version stamped in the database, or ``None`` if it has no ``schema_version``."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(SchemaVersion.__tablename__):
            return None
        return conn.execute(select(SchemaVersion.version)).scalar()


def _mismatch(engine: Engine, found: int | None, empty: bool = False) -> SchemaVersionMismatch:
    if empty:
        return SchemaVersionMismatch(
            f"database {mask_url(engine.url)} has no rsc_db tables (nothing logged there yet?)"
        )
    what = "no schema_version stamp" if found is None else f"schema version {found}"
    return SchemaVersionMismatch(
        f"database {mask_url(engine.url)} has {what}, but rsc_db uses schema version "
        f"{SCHEMA_VERSION}; use a new database (or migrate this one)"
    )


#: Versions that are upgraded in place to :data:`SCHEMA_VERSION` (by adding tables only).
UPGRADABLE = (2,)


def ensure_schema(engine: Engine) -> None:
    """Create the tables and the version stamp if the database has none; upgrade a
    version-2 database in place (adds the ``sweeps`` and ``trials`` tables, restamps it);
    raise :class:`SchemaVersionMismatch` if it was created with another schema version."""
    names = [t.name for t in TABLES]
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # serialise concurrent creators
            conn.execute(text("SELECT pg_advisory_xact_lock(8675309)"))
        insp = inspect(conn)
        present = [n for n in names if insp.has_table(n)]
        if SchemaVersion.__tablename__ in present:
            found = conn.execute(select(SchemaVersion.version)).scalar()
            if found in UPGRADABLE:
                SQLModel.metadata.create_all(conn, tables=list(V3_TABLES))
                conn.execute(update(SchemaVersion).values(version=SCHEMA_VERSION))
                return
            if found != SCHEMA_VERSION:
                raise _mismatch(engine, found)
            if len(present) == len(names):
                return
        elif present:
            raise _mismatch(engine, None)
        SQLModel.metadata.create_all(conn, tables=list(TABLES))
        if conn.execute(select(SchemaVersion.version)).first() is None:
            conn.execute(
                insert(SchemaVersion).values(version=SCHEMA_VERSION, created_at=datetime.now(UTC))
            )


def prepare_for_writing(engine: Engine) -> None:
    """Check the connection and create / check the schema; raise :class:`DatabaseUnavailable`
    (unreachable, not a database, read-only) or :class:`SchemaVersionMismatch`."""
    check_connection(engine)
    try:
        ensure_schema(engine)
    except DBAPIError as exc:  # e.g. a read-only SQLite file
        raise DatabaseUnavailable(
            f"cannot write to database {mask_url(engine.url)}: {_reason(exc, engine)}"
        ) from None


def _reason(exc: BaseException, engine: Engine) -> str:
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    password = engine.url.password
    return reason.replace(str(password), "***") if password else reason


def check_schema(engine: Engine) -> None:
    """Raise :class:`SchemaVersionMismatch` unless the database carries this schema version
    (a version-2 database is upgraded in place first)."""
    found = read_schema_version(engine)
    if found in UPGRADABLE:
        ensure_schema(engine)  # adds tables only
        return
    if found != SCHEMA_VERSION:
        with engine.connect() as conn:
            empty = not any(inspect(conn).has_table(t.name) for t in TABLES)
        raise _mismatch(engine, found, empty)


def open_database(
    url: str | None = None, *, run_dir: str | Path | None = None, create: bool = True, **kw: Any
) -> Engine:
    """Resolve the URL, create the engine, check connectivity, then create (``create``) or
    verify the schema. Raises :class:`DatabaseUnavailable` / :class:`SchemaVersionMismatch`."""
    engine = make_engine(resolve_url(url, run_dir), **kw)
    try:
        check_connection(engine)
        if create:
            ensure_schema(engine)
        else:
            check_schema(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine
