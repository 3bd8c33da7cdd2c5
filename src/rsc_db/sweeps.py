"""Sweep and trial rows of ``rsc-tune`` (written by the sweep driver only: one writer).

Every write is an upsert keyed by the sweep id and Tune's trial id, so a resumed sweep that
reports a trial again updates its row instead of adding one. Each trial owns a
``training_runs`` row (``run_id = <sweep_id>-<trial_id>``) whose status follows the trial's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, Table, select, update
from sqlalchemy.exc import DBAPIError

from .engine import DatabaseUnavailable, make_engine, mask_url, prepare_for_writing
from .logger import jsonable
from .models import Sweep, TrainingRun, Trial

SWEEPS: Table = Sweep.__table__  # type: ignore[attr-defined]
TRIALS: Table = Trial.__table__  # type: ignore[attr-defined]
RUNS: Table = TrainingRun.__table__  # type: ignore[attr-defined]
#: The training run status of each trial status.
RUN_STATUS = {"running": "running", "completed": "completed", "stopped": "completed",
              "failed": "failed", "interrupted": "interrupted"}


def _upsert(conn: Connection, table: Table, row: Mapping[str, Any], keys: list[str],
            insert_only: tuple[str, ...] = ()) -> None:
    """Insert ``row`` or update the row with the same ``keys`` (columns in ``insert_only``
    are kept on update)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table).values(**row)
    changes = {k: stmt.excluded[k] for k in row if k not in keys and k not in insert_only}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=changes) if changes
                 else stmt.on_conflict_do_nothing(index_elements=keys))


class SweepStore:
    """Writes one sweep's rows; the engine is created lazily (the object pickles)."""

    def __init__(self, url: str, sweep_id: str) -> None:
        self.url, self.sweep_id = url, sweep_id
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            engine = make_engine(self.url, sqlite_begin="IMMEDIATE")
            try:
                prepare_for_writing(engine)
            except BaseException:
                engine.dispose()
                raise
            self._engine = engine
        return self._engine

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "sweep_id": self.sweep_id, "_engine": None}

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def start(self, space: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
        """Create the sweep row, or set an existing one (a resume) back to ``running``."""
        now = datetime.now(UTC)
        engine = self.engine
        try:
            with engine.begin() as conn:
                _upsert(conn, SWEEPS, {"sweep_id": self.sweep_id, "created_at": now,
                                       "finished_at": None, "space": jsonable(dict(space)),
                                       "settings": jsonable(dict(settings)),
                                       "status": "running"},
                        ["sweep_id"], insert_only=("created_at", "space"))
        except DBAPIError as exc:  # read-only, disk full, permission denied
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise DatabaseUnavailable(
                f"cannot write to database {mask_url(engine.url)}: {reason}") from None

    def finish(self, status: str, *, best_trial_id: str | None = None,
               verdict: Mapping[str, Any] | None = None) -> None:
        """Close the sweep; ``running`` trials (and their runs) become ``interrupted`` unless
        the sweep completed."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            if status != "completed":
                ids = select(TRIALS.c.run_id).where(TRIALS.c.sweep_id == self.sweep_id,
                                                    TRIALS.c.status == "running")
                conn.execute(update(RUNS).where(RUNS.c.run_id.in_(ids))
                             .values(status="interrupted", end_time=now))
                conn.execute(update(TRIALS).where(TRIALS.c.sweep_id == self.sweep_id,
                                                  TRIALS.c.status == "running")
                             .values(status="interrupted", finished_at=now))
            values: dict[str, Any] = {"status": status, "finished_at": now}
            if best_trial_id is not None:
                values["best_trial_id"] = best_trial_id
            if verdict is not None:
                values["verdict"] = jsonable(dict(verdict))
            conn.execute(update(SWEEPS).where(SWEEPS.c.sweep_id == self.sweep_id)
                         .values(**values))

    def trials(self) -> list[dict[str, Any]]:
        """This sweep's trial rows as dicts, by trial id."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(TRIALS).where(TRIALS.c.sweep_id == self.sweep_id)
                                .order_by(TRIALS.c.trial_id)).mappings().all()
        return [dict(r) for r in rows]

    def count_finished(self) -> int:
        """Trials of this sweep that finished (completed, stopped early or failed)."""
        from sqlalchemy import func

        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(
                TRIALS.c.sweep_id == self.sweep_id,
                TRIALS.c.status.in_(("completed", "stopped", "failed")))).scalar())

    def run_id(self, trial_id: str) -> str:
        return f"{self.sweep_id}-{trial_id}"

    def open_run(self, run_id: str, parameters: Mapping[str, Any], status: str = "running",
                 notes: str | None = None) -> None:
        """Upsert a ``training_runs`` row (a trial's, or the final retraining's)."""
        now = datetime.now(UTC)
        end = None if status == "running" else now
        with self.engine.begin() as conn:
            _upsert(conn, RUNS, {"run_id": run_id, "start_time": now, "end_time": end,
                                 "parameters": jsonable(dict(parameters)), "status": status,
                                 "notes": notes, "last_seen": now},
                    ["run_id"], insert_only=("start_time",))

    def close_run(self, run_id: str, status: str) -> None:
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(update(RUNS).where(RUNS.c.run_id == run_id)
                         .values(status=status, end_time=now, last_seen=now))

    def trial(self, trial_id: str, status: str, *, params: Mapping[str, Any] | None = None,
              run_parameters: Mapping[str, Any] | None = None, started: bool = False,
              **fields: Any) -> None:
        """Upsert the trial's row (and its training run's status) in one transaction;
        ``started``: the trial (re)starts now (sets ``started_at``)."""
        now = datetime.now(UTC)
        run_id = self.run_id(trial_id)
        row: dict[str, Any] = {"sweep_id": self.sweep_id, "trial_id": trial_id,
                               "run_id": run_id, "status": status,
                               **{k: jsonable(v) for k, v in fields.items()}}
        if params is not None:
            row["params"] = jsonable(dict(params))
        row["started_at"] = now
        row["finished_at"] = None if status == "running" else now
        run_status = RUN_STATUS[status]
        with self.engine.begin() as conn:
            _upsert(conn, RUNS, {"run_id": run_id, "start_time": now,
                                 "end_time": None if run_status == "running" else now,
                                 "parameters": jsonable(dict(run_parameters or {})),
                                 "status": run_status, "notes": f"rsc-tune trial {trial_id}",
                                 "last_seen": now},
                    ["run_id"], insert_only=("start_time",) + (
                        () if run_parameters is not None else ("parameters",)))
            _upsert(conn, TRIALS, row, ["sweep_id", "trial_id"],
                    insert_only=() if started else ("started_at",))


def _query(url: str | None, stmt: Any) -> pd.DataFrame:
    from .query import connect_existing, read_frame

    with connect_existing(url) as conn:
        return read_frame(conn, stmt)


def sweeps_frame(url: str | None = None) -> pd.DataFrame:
    """All sweeps, newest first, with their trial counts."""
    from sqlalchemy import func

    n = (select(func.count()).where(TRIALS.c.sweep_id == SWEEPS.c.sweep_id)
         .scalar_subquery().label("trials"))
    done = (select(func.count()).where(TRIALS.c.sweep_id == SWEEPS.c.sweep_id,
                                       TRIALS.c.status.in_(("completed", "stopped")))
            .scalar_subquery().label("finished"))
    return _query(url, select(SWEEPS, n, done).order_by(SWEEPS.c.created_at.desc()))


def trials_frame(url: str | None, sweep_id: str) -> pd.DataFrame:
    """The trials of ``sweep_id``: those that ran more folds first, then best metric first
    (the sweep's metric direction is in its settings: ``mode``)."""
    frame = _query(url, select(TRIALS).where(TRIALS.c.sweep_id == sweep_id)
                   .order_by(TRIALS.c.trial_id))
    settings = _query(url, select(SWEEPS.c.settings).where(SWEEPS.c.sweep_id == sweep_id))
    mode = settings["settings"].iloc[0].get("mode", "max") if len(settings) else "max"
    return frame.sort_values(["folds_done", "metric_value"], ascending=[False, mode == "min"],
                             na_position="last", kind="stable").reset_index(drop=True)
