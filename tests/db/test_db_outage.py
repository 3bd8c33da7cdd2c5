"""A database outage longer than RunLogger's retry window (~15 s): finished episodes are
buffered in order and written when the database is back; a too long outage stops training
with one error, and a final status that could not be written is marked by the next start.

The outage is a real one for the client: PostgreSQL is reached through a TCP proxy that drops
every connection and refuses new ones for the length of the outage (the shared test server
itself keeps running for everyone else)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from rsc_db import DatabaseUnavailable, RunLogger
from rsc_db.episode_writer import EpisodeWriter


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to ``target``; :meth:`cut` drops every connection and
    refuses new ones until :meth:`restore`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()  # refused while the "database" is down
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self.up.clear()
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def restore(self) -> None:
        self.up.set()

    def url(self, url: str) -> str:
        return make_url(url).set(host="127.0.0.1", port=self.port).render_as_string(
            hide_password=False)


@pytest.fixture
def proxy(pg_url: str):
    u = make_url(pg_url)
    p = CuttableProxy((u.host or "127.0.0.1", int(u.port or 5432)))
    yield p
    p.server.close()


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RSC_STATE_DIR", str(tmp_path / "state"))


@pytest.mark.postgres
@pytest.mark.slow
def test_outage_longer_than_the_retries_buffers_and_writes_everything(pg_url, scalar, proxy,
                                                                      tmp_path):
    """rsc-train through a 25 s outage: exit 0, every finished episode written once, in the
    order finished, run completed, no traceback."""
    out, log = tmp_path / "run", tmp_path / "train.log"
    cmd = [sys.executable, "-m", "rsc_policy.cli.train", "--start", "2010-01-01", "--end",
           "2014-12-31", "--val-start", "2015-01-01", "--val-end", "2015-06-30",
           "--num-env-runners", "1", "--envs-per-runner", "2", "--env-steps", "20000",
           "--checkpoint-every", "0", "--db", proxy.url(pg_url), "--out", str(out)]
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT,
                                env={**os.environ, "RSC_PROGRESS": "0"})
    try:
        deadline = time.monotonic() + 240
        while (scalar(pg_url, "SELECT COUNT(*) FROM episodes")
               if scalar(pg_url, "SELECT COUNT(*) FROM information_schema.tables WHERE "
                                 "table_name = 'episodes'") else 0) < 1:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)  # polling the database, not waiting out a race
        proxy.cut()
        t_cut = time.monotonic()
        while time.monotonic() - t_cut < 25:  # the outage: 25 s > ~15 s of retries
            assert proc.poll() is None, log.read_text()  # training goes on meanwhile
            time.sleep(0.5)
        proxy.restore()
        assert proc.wait(timeout=600) == 0, log.read_text()
    finally:
        proxy.restore()
        proc.kill()
    text_out = log.read_text()
    assert "Traceback" not in text_out and "error:" not in text_out, text_out
    assert "buffering finished episodes" in text_out and "is back after" in text_out, text_out
    import json

    summary = json.loads((out / "summary.json").read_text())
    status = scalar(pg_url, "SELECT status FROM training_runs")
    n = scalar(pg_url, "SELECT COUNT(*) FROM episodes")
    distinct = scalar(pg_url, "SELECT COUNT(DISTINCT rllib_episode_id) FROM episodes")
    bad = scalar(pg_url, "SELECT COUNT(*) FROM episodes e WHERE e.total_steps <> "
                         "(SELECT COUNT(*) FROM steps s WHERE s.episode_id = e.episode_id)")
    assert status == "completed" and n == distinct == summary["episodes"] and bad == 0


class _DownLogger:
    """A RunLogger stand-in whose database is down until ``up`` is set."""

    url = "postgresql+psycopg://u:secret@db.example/x"

    def __init__(self) -> None:
        self.up = threading.Event()
        self.written: list[str] = []

    def log_episode(self, rid: str, info: dict) -> bool:
        if not self.up.is_set():
            raise DatabaseUnavailable("lost the database; gave up after 6 tries")
        self.written.append(rid)
        return True


def _wait(cond: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline
        time.sleep(0.01)  # polling the writer thread's state


def test_writer_buffers_in_order_and_drains_when_the_database_is_back():
    logger = _DownLogger()
    writer = EpisodeWriter(logger, max_buffered=10, retry_every_s=0.05)
    writer.submit([("a", {}), ("b", {})])
    _wait(lambda: writer.in_outage)
    writer.submit([(c, {}) for c in "cdef"])
    assert writer.pending == 6 and logger.written == []
    logger.up.set()
    writer.flush(timeout=30)
    assert logger.written == list("abcdef") and not writer.in_outage
    writer.close()


def test_writer_stops_training_when_the_buffer_is_full_or_the_outage_too_long():
    logger = _DownLogger()
    writer = EpisodeWriter(logger, max_buffered=3, retry_every_s=0.05)
    writer.submit([("a", {}), ("b", {})])
    _wait(lambda: writer.in_outage)
    with pytest.raises(DatabaseUnavailable, match=r"buffer limit 3\); stopping") as err:
        writer.submit([("c", {}), ("d", {})])
    assert "secret" not in str(err.value)
    with pytest.raises(DatabaseUnavailable):  # and it stays failed
        writer.flush(timeout=5)
    writer.close(flush=False)
    slow = EpisodeWriter(_DownLogger(), max_outage_s=0.2, retry_every_s=0.05)
    slow.submit([("a", {})])
    with pytest.raises(DatabaseUnavailable, match="unreachable for .* s \\(limit 0 s\\)"):
        slow.flush(timeout=30)
    slow.close(flush=False)


@pytest.mark.postgres
def test_a_final_status_that_cannot_be_written_is_marked_by_the_next_start(pg_url, scalar, proxy):
    url = proxy.url(pg_url)
    with pytest.raises(RuntimeError, match="training blew up"):
        with RunLogger(url, run_id="lost-status") as logger:
            assert logger.status == "running"
            proxy.cut()  # the database goes away, then training fails
            raise RuntimeError("training blew up")
    proxy.restore()
    assert scalar(pg_url, "SELECT status FROM training_runs") == "running"
    with RunLogger(url, run_id="next-run"):  # the next start on this database marks it
        pass
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT run_id, status FROM training_runs")).all())
    engine.dispose()
    assert rows == {"lost-status": "failed", "next-run": "completed"}


@pytest.mark.postgres
@pytest.mark.slow
def test_outage_beyond_the_limit_stops_rsc_train_with_one_error_line(pg_url, scalar, proxy,
                                                                     tmp_path, monkeypatch,
                                                                     ray_local, capfd):
    """The database never comes back (limit lowered to 3 s): rsc-train stops with one error
    line and exit 2, no traceback; the run's status is noted and set by the next start."""
    from typer.testing import CliRunner

    import rsc_policy.rllib.algorithm as algorithm
    from rsc_policy.cli.train import app

    monkeypatch.setattr(algorithm, "_MAX_OUTAGE_S", 3.0)
    url = proxy.url(pg_url)

    def cut_after_first_episode() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                if scalar(pg_url, "SELECT COUNT(*) FROM episodes") >= 1:
                    proxy.cut()
                    return
            except Exception:  # tables not created yet
                pass
            time.sleep(0.2)  # polling the database

    cutter = threading.Thread(target=cut_after_first_episode, daemon=True)
    cutter.start()
    result = CliRunner().invoke(app, [
        "--start", "2010-01-01", "--end", "2014-12-31", "--val-start", "2015-01-01",
        "--val-end", "2015-06-30", "--num-env-runners", "1", "--envs-per-runner", "2",
        "--env-steps", "10000000", "--checkpoint-every", "0", "--db", url,
        "--out", str(tmp_path / "run")], catch_exceptions=False)
    cutter.join(timeout=5)
    captured = capfd.readouterr()
    everything = result.output + captured.out + captured.err
    assert result.exit_code == 2, everything
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "unreachable for" in errors[0], everything
    assert "Traceback" not in everything
    proxy.restore()
    assert scalar(pg_url, "SELECT status FROM training_runs") == "running"
    with RunLogger(url, run_id="after-the-outage"):
        pass
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT run_id, status FROM training_runs")).all())
    engine.dispose()
    assert sorted(rows.values()) == ["completed", "failed"], rows
