"""Faults around a real rsc-train process: SIGTERM and Ctrl-C stop it cleanly (exit 143 /
130, a resumable checkpoint, no Ray process left behind); SIGKILL leaves a run that
``rsc-db runs`` shows as stale and ``mark-interrupted`` closes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from rsc_db.cli import app as db_app

pytestmark = pytest.mark.slow

PERIODS = ["--start", "2014-01-01", "--end", "2014-12-31", "--val-start", "2015-01-01",
           "--val-end", "2015-06-30"]  # fmt: skip


def _episodes(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT COUNT(*) FROM episodes")).scalar())
    except Exception:  # not created yet
        return 0
    finally:
        engine.dispose()


def _start(args: list[str], out: Path, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "rsc_policy.cli.train", *PERIODS, *args, "--out", str(out)]
    with log.open("wb") as sink:
        return subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT,
                                env={**os.environ, "RSC_PROGRESS": "0"})


def _wait_for_episodes(proc: subprocess.Popen, url: str, log: Path, n: int = 1) -> None:
    deadline = time.monotonic() + 180
    while _episodes(url) < n:
        if proc.poll() is not None:
            pytest.fail(f"rsc-train ended early:\n{log.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no episode logged within 180 s:\n{log.read_text()}")
        time.sleep(0.2)  # polling the database, not waiting out a race


def _exit_code(proc: subprocess.Popen, log: Path, timeout: float) -> int:
    """``proc``'s exit code; if it is still running after ``timeout`` s, fail with its
    output, every thread's stack included (rsc-train prints them on SIGUSR1)."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=3)  # bounded: lets the stack dump reach the log
        pytest.fail(f"rsc-train still running {timeout:.0f} s after the signal:\n"
                    f"{log.read_text()}")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_cleanly_with_a_resumable_checkpoint(tmp_path, sig, code, processes):
    out, log = tmp_path / "run", tmp_path / "train.log"
    proc = _start(["--num-env-runners", "1", "--envs-per-runner", "2",
                   "--env-steps", "100000000", "--checkpoint-every", "1000"], out, log)
    try:
        _wait_for_episodes(proc, f"sqlite:///{out}/rsc.sqlite", log, n=2)
        ray_procs = processes.ray_tree(proc.pid)
        table = processes.table()
        assert any("raylet" in table[p][2] for p in ray_procs), [table[p] for p in ray_procs]
        proc.send_signal(sig)
        assert _exit_code(proc, log, 120) == code, log.read_text()
    finally:
        proc.kill()
    text_out = log.read_text()
    assert "Traceback" not in text_out and "SIGTERM received" not in text_out
    assert "*** " not in text_out  # no C++ stack dump
    assert (out / "checkpoint" / "rsc_run.json").is_file(), text_out
    deadline = time.monotonic() + 30
    while processes.alive(ray_procs) and time.monotonic() < deadline:
        time.sleep(0.2)  # polling the process table while Ray's processes exit
    assert not processes.alive(ray_procs), "Ray processes of the stopped run are still alive"
    engine = create_engine(f"sqlite:///{out}/rsc.sqlite")
    with engine.connect() as conn:
        status = conn.execute(text("SELECT status FROM training_runs")).scalar()
    engine.dispose()
    assert status == "interrupted"
    if sig == signal.SIGTERM:  # resume the interrupted run from its checkpoint (a new run)
        resumed = tmp_path / "resumed"
        log2 = tmp_path / "resume.log"
        proc = _start(["--num-env-runners", "1", "--envs-per-runner", "2", "--env-steps",
                       "600", "--resume", str(out)], resumed, log2)
        assert _exit_code(proc, log2, 300) == 0, log2.read_text()
        assert "resumed from" in log2.read_text()
        engine = create_engine(f"sqlite:///{resumed}/rsc.sqlite")
        with engine.connect() as conn:
            params = conn.execute(text("SELECT parameters FROM training_runs")).scalar()
        engine.dispose()
        assert str((out / "checkpoint").resolve()) in params


def test_sigkill_leaves_a_stale_run_that_mark_interrupted_closes(tmp_path):
    """(Before the SIGKILL: SIGUSR1 makes the running rsc-train print its stacks and go on.)"""
    out, log = tmp_path / "run", tmp_path / "train.log"
    url = f"sqlite:///{out}/rsc.sqlite"
    proc = _start(["--sequential", "--env-steps", "100000000"], out, log)
    try:
        _wait_for_episodes(proc, url, log)
        proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 30
        while "train_job.py" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)  # polling the log for the stack dump
        assert "(most recent call first)" in log.read_text() and "train_job.py" in \
            log.read_text(), log.read_text()
        assert proc.poll() is None  # it trains on
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    runner = CliRunner()
    fresh = runner.invoke(db_app, ["runs", "--db", url])  # heartbeat is recent: running
    assert "│ running " in fresh.output and "│ stale " not in fresh.output
    result = runner.invoke(db_app, ["runs", "--db", url, "--stale-after", "0"])
    assert result.exit_code == 0 and "│ stale " in result.output, result.output
    assert "mark-interrupted --stale" in result.output
    result = runner.invoke(db_app, ["mark-interrupted", "--stale", "--stale-after", "0",
                                    "--db", url])
    assert result.exit_code == 0 and "marked 1 run(s) interrupted" in result.output
    result = runner.invoke(db_app, ["runs", "--db", url, "--stale-after", "0"])
    assert "│ interrupted " in result.output and "│ stale " not in result.output
