"""RunLogger: writes one training run and its episodes, one transaction per episode."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from .engine import (
    DatabaseUnavailable,
    make_engine,
    mask_url,
    prepare_for_writing,
    resolve_url,
)
from .models import RUN_STATUSES, TrainingRun
from .records import EpisodeRecord, episode_record
from .writer import insert_episode, write_children

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Waits between retries of a write whose database connection was lost (~15 s in all: a
#: PostgreSQL restart takes ~2 s).
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)
#: A running run refreshes ``last_seen`` at most this often.
HEARTBEAT_EVERY_S = 10.0

EpisodeItem = tuple[str, Mapping[str, Any], datetime | None, datetime | None]

_RUNS = TrainingRun.__table__


def new_run_id() -> str:
    """A fresh run id: UTC time plus a random suffix (sortable, unique)."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def jsonable(value: Any) -> Any:
    """``value`` made JSON-safe: numpy scalars/arrays, paths, datetimes and other objects are
    converted; non-finite floats become strings."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block ends, then deliver them as the old handlers would.

    An interrupt therefore lands between transactions, never inside a driver call (a
    KeyboardInterrupt raised inside psycopg's COPY leaves the connection unable even to roll
    back). Outside the main thread signals are not delivered anyway: no-op there.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    watched = (signal.SIGINT, signal.SIGTERM)
    old = {s: signal.signal(s, lambda signum, read_frame: received.append(signum)) for s in watched}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if received:
            handler = old[received[0]]
            if callable(handler):
                handler(received[0], None)  # e.g. default_int_handler: KeyboardInterrupt
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), received[0])


def install_sigterm_handler() -> Any:
    """Make SIGTERM raise :class:`KeyboardInterrupt` (so a ``with RunLogger`` block ends the run
    as ``interrupted``). Call from the main thread; returns the previous handler."""
    return signal.signal(signal.SIGTERM, _interrupt)


class RunLogger:
    """Logs a training run (``training_runs``) and its finished episodes.

    ``url`` resolves as in :func:`rsc_db.engine.resolve_url`. ``log_steps=False`` writes only
    episodes and trades; ``step_log_every=N`` writes steps and operations for every N-th episode
    newly logged by this logger (the 1st, N+1-th, ...). Thread-safe; picklable (the engine is
    re-created in the receiving process).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        run_dir: str | Path | None = None,
        parameters: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        notes: str | None = None,
        log_steps: bool = True,
        step_log_every: int = 1,
    ) -> None:
        if step_log_every < 1:
            raise ValueError(f"step_log_every must be >= 1, got {step_log_every}")
        self.url = resolve_url(url, run_dir)
        self.run_id = run_id or new_run_id()
        self.parameters = jsonable(dict(parameters or {}))
        self.notes = notes
        self.log_steps = log_steps
        self.step_log_every = step_log_every
        self.episodes_logged = 0
        self.status: str | None = None
        self._engine: Engine | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._last_beat = float("-inf")

    # -- engine / pickling ---------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The logger's engine (created lazily; re-created after a fork)."""
        if self._engine is None or self._pid != os.getpid():
            if self._engine is not None:
                self._engine.dispose(close=False)
            self._engine = make_engine(self.url, sqlite_begin="IMMEDIATE")
            self._pid = os.getpid()
        return self._engine

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_engine"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RunLogger({mask_url(self.url)!r}, run_id={self.run_id!r}, status={self.status!r})"

    def close(self) -> None:
        """Release the engine's connections (the logger can be used again afterwards)."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- run lifecycle -------------------------------------------------------------------
    def start(self) -> RunLogger:
        """Check connectivity, create the schema if needed and insert the ``training_runs`` row
        (status ``running``). Raises ``DatabaseUnavailable`` / ``SchemaVersionMismatch``, or
        ``ValueError`` if ``run_id`` already exists."""
        self._prepare()
        row = {
            "run_id": self.run_id,
            "start_time": datetime.now(UTC),
            "end_time": None,
            "parameters": self.parameters,
            "status": "running",
            "notes": self.notes,
            "last_seen": datetime.now(UTC),
        }
        def write() -> None:
            with self.engine.begin() as conn:
                conn.execute(insert(_RUNS), row)

        try:
            self._retrying(write, "opening the run")
        except IntegrityError:
            raise ValueError(f"training run {self.run_id!r} already exists") from None
        self.status = "running"
        apply_remembered_statuses(self.engine, self.url)
        return self

    def attach(self) -> RunLogger:
        """Join an existing run (e.g. from a worker process) without owning its status:
        check the database and that ``run_id`` exists. Raises ``ValueError`` if it does not."""
        self._prepare()
        with self.engine.connect() as conn:
            status = conn.execute(
                select(_RUNS.c.status).where(_RUNS.c.run_id == self.run_id)
            ).scalar()
        if status is None:
            raise ValueError(f"training run {self.run_id!r} does not exist")
        self.status = status
        return self

    def _prepare(self) -> None:
        prepare_for_writing(self.engine)

    def finish(self, status: str = "completed") -> None:
        """Set the run's ``end_time`` and final ``status`` (completed/failed/interrupted),
        retrying a lost connection (see :meth:`_retrying`)."""
        if status not in RUN_STATUSES:
            raise ValueError(f"status must be one of {RUN_STATUSES}, got {status!r}")

        def write() -> None:
            with self.engine.begin() as conn:
                conn.execute(
                    update(_RUNS)
                    .where(_RUNS.c.run_id == self.run_id)
                    .values(status=status, end_time=datetime.now(UTC))
                )

        self._retrying(write, "closing the run")
        self.status = status

    def finish_or_remember(self, status: str) -> bool:
        """:meth:`finish`; if the database cannot be reached even after the retries, note the
        status for the next RunLogger on this database (:func:`remember_status`) and log one
        error line instead of raising. Returns whether the status was written."""
        try:
            self.finish(status)
            return True
        except DatabaseUnavailable as err:
            remember_status(self.url, self.run_id, status)
            log.error("could not mark run %s as %s (%s); the next RunLogger on this database "
                      "marks it", self.run_id, status, err)
            return False

    def heartbeat(self) -> None:
        """Refresh the run's ``last_seen`` (``rsc-db runs`` shows a run whose heartbeat stopped
        as ``stale``). At most one write per :data:`HEARTBEAT_EVERY_S`."""
        now = time.monotonic()
        if now - self._last_beat < HEARTBEAT_EVERY_S:
            return
        self._last_beat = now

        # Best effort, one attempt: during a database outage the episode writer buffers and
        # retries; a heartbeat must not stall or stop training.
        try:
            with self.engine.begin() as conn:
                conn.execute(update(_RUNS).where(_RUNS.c.run_id == self.run_id)
                             .values(last_seen=datetime.now(UTC)))
        except DBAPIError as exc:
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            log.warning("heartbeat of run %s not written (%s)", self.run_id, reason)

    def _retrying(self, fn: Callable[[], T], what: str) -> T:
        """``fn()``, retried with back-off (:data:`RETRY_DELAYS_S`) while the database connection
        is lost (a server restart, a network blip); then :class:`DatabaseUnavailable`. A
        transaction either committed or rolled back, so a retry never writes anything twice
        (episodes are keyed by their id)."""
        for attempt, delay in enumerate((*RETRY_DELAYS_S, None)):
            try:
                return fn()
            except OperationalError as exc:
                reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
                if self.engine.url.get_backend_name() == "sqlite" and "locked" not in reason:
                    # a SQLite file has no connection to lose: read-only, disk full, ...
                    raise DatabaseUnavailable(
                        f"cannot write to database {mask_url(self.url)} while {what}: "
                        f"{reason}") from None
                if delay is None:
                    raise DatabaseUnavailable(
                        f"lost the database {mask_url(self.url)} while {what}; gave up after "
                        f"{attempt + 1} tries over {sum(RETRY_DELAYS_S):.0f} s: {reason}"
                    ) from None
                log.warning("database %s unreachable while %s (%s); retry %d in %.1f s",
                            mask_url(self.url), what, reason, attempt + 1, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def __enter__(self) -> RunLogger:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        status = "completed" if exc_type is None else (
            "failed" if issubclass(exc_type, Exception) else "interrupted")
        try:
            self.finish_or_remember(status)  # never hides the exception that ended the run
        finally:
            self.close()

    # -- episodes ------------------------------------------------------------------------
    def log_episode(
        self,
        rllib_episode_id: str,
        terminal_info: Mapping[str, Any],
        *,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
    ) -> bool:
        """Write one finished episode (summary, trades, steps, operations) in one transaction.

        Returns ``False`` (writing nothing) if ``rllib_episode_id`` is already in the database.
        Raises ``ValueError`` on malformed ``terminal_info`` before writing anything.
        """
        return self.log_episodes([(rllib_episode_id, terminal_info, start_time, end_time)])[0]

    def log_episodes(self, items: Iterable[EpisodeItem]) -> list[bool]:
        """Write several episodes in one transaction; each is complete or absent. Returns, per
        item, whether it was newly written (``False``: the id was already logged)."""
        items = list(items)
        if not items:
            return []
        if self.status is None:
            raise RuntimeError("RunLogger.start() (or attach()) must be called before logging")
        for rid, *_ in items:
            if not isinstance(rid, str) or not rid:
                raise ValueError(f"rllib_episode_id must be a non-empty str: {rid!r}")
        with self._lock:
            first = self.episodes_logged
            # Records are built for the step-sampling slots the episodes would take if all are
            # new; a duplicate only shifts later sampling slots, never loses an episode.
            records = [self._record(info, first + i) for i, (_, info, _s, _e) in enumerate(items)]
            now = datetime.now(UTC)

            def write() -> list[bool]:
                out = []
                with signals_deferred(), self.engine.begin() as conn:
                    for (rid, _info, start, end), rec in zip(items, records, strict=True):
                        out.append(self._write(conn, rid, rec, start or end or now, end or now))
                    conn.execute(update(_RUNS).where(_RUNS.c.run_id == self.run_id)
                                 .values(last_seen=now))
                return out

            written = self._retrying(write, "writing episodes")
            self.episodes_logged += sum(written)
            return written

    def _record(self, info: Mapping[str, Any], slot: int) -> EpisodeRecord:
        with_steps = self.log_steps and slot % self.step_log_every == 0
        return episode_record(info, with_steps=with_steps)

    def _write(
        self, conn: Connection, rid: str, rec: EpisodeRecord, start: datetime, end: datetime
    ) -> bool:
        row = {
            **rec.summary,
            "run_id": self.run_id,
            "rllib_episode_id": rid,
            "start_time": start,
            "end_time": end,
            "status": "completed",
        }
        episode_id = insert_episode(conn, row)
        if episode_id is None:
            return False
        write_children(conn, episode_id, rec)
        return True


# ---------------------------------------------------------------- statuses owed to a database
def pending_status_file() -> Path:
    """Where a run's final status waits when its database was unreachable at the end:
    ``$RSC_STATE_DIR/pending_status.jsonl`` (default ``~/.local/state/rsc``)."""
    base = os.environ.get("RSC_STATE_DIR") or Path.home() / ".local" / "state" / "rsc"
    return Path(base) / "pending_status.jsonl"


def remember_status(url: str, run_id: str, status: str) -> None:
    """Note ``run_id``'s final ``status`` for the next :class:`RunLogger` that opens the same
    database (the URL is kept without its password)."""
    try:
        path = pending_status_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fh.write(json.dumps({"db": mask_url(url), "run_id": run_id, "status": status,
                                 "at": datetime.now(UTC).isoformat()}) + "\n")
    except OSError as exc:
        log.error("cannot note the status of run %s (%s): close it with rsc-db "
                  "mark-interrupted %s", run_id, exc, run_id)


def apply_remembered_statuses(engine: Engine, url: str) -> list[str]:
    """Write the statuses :func:`remember_status` noted for this database (only runs still
    ``running``); return the run ids marked."""
    path = pending_status_file()
    if not path.is_file():
        return []
    key, marked, keep = mask_url(url), [], []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("db") != key:
            keep.append(line)
            continue
        try:
            with engine.begin() as conn:
                conn.execute(update(_RUNS).where(_RUNS.c.run_id == entry["run_id"],
                                                 _RUNS.c.status == "running")
                             .values(status=entry["status"], end_time=datetime.now(UTC)))
            marked.append(entry["run_id"])
            log.warning("marked run %s %s (its process could not write the status)",
                        entry["run_id"], entry["status"])
        except DBAPIError:
            keep.append(line)
    try:
        path.write_text("".join(x + "\n" for x in keep))
    except OSError:
        pass
    return marked
