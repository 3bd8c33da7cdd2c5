"""Real concurrency and real signals: threads and child processes writing to one database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from rsc_db import RunLogger, run_tables, runs_frame

PG_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pg-test-server.sh"

CHILD = textwrap.dedent(
    """
    import sys
    from _synthetic import synthetic_info
    from rsc_db import RunLogger, install_sigterm_handler

    url, run_id, mode, first, last = sys.argv[1:6]
    infos = [synthetic_info(n_steps=int(sys.argv[6]), seed=s) for s in range(4)]
    if mode == "writer":  # join an existing run, log a fixed id range, report the new ones
        logger = RunLogger(url, run_id=run_id).attach()
        new = sum(logger.log_episode(f"ep{i}", infos[i % 4]) for i in range(int(first), int(last)))
        print(new)
        sys.exit(0)
    if mode == "sigterm":
        install_sigterm_handler()
    try:
        with RunLogger(url, parameters={"mode": mode}, run_id=run_id) as logger:
            for i in range(int(first), int(last)):
                logger.log_episode(f"ep{i}", infos[i % 4])
    except KeyboardInterrupt:
        sys.exit(130)
    """
)


@pytest.fixture
def child_script(tmp_path: Path) -> Path:
    path = tmp_path / "child_logger.py"
    path.write_text(CHILD)
    return path


def _episode_count(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM episodes")).scalar() or 0
    except Exception:  # schema not created yet
        return 0
    finally:
        engine.dispose()


def _wait_for_episodes(url: str, proc: subprocess.Popen[Any], n: int = 1) -> None:
    deadline = time.monotonic() + 60
    while _episode_count(url) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "child logged no episode within 60 s"
        time.sleep(0.02)  # poll interval, not a fixed wait


def _assert_all_complete(url: str, run_id: str) -> int:
    tables = run_tables(url, run_id)
    per_episode = tables["steps"].groupby("episode_id").size()
    eps = tables["episodes"]
    for row in eps.itertuples():
        assert per_episode.get(row.episode_id, 0) == row.total_steps
    assert tables["episodes"]["rllib_episode_id"].is_unique
    return len(eps)


@pytest.mark.parametrize(
    ("sig", "status"),
    [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "interrupted"), (signal.SIGKILL, "running")],
    ids=["sigint", "sigterm", "sigkill"],
)
def test_signal_mid_run_keeps_logged_episodes_complete(
    db_url: str, child_script: Path, child_env: dict[str, str], sig: int, status: str
) -> None:
    mode = "sigterm" if sig == signal.SIGTERM else "plain"
    proc = subprocess.Popen(
        [sys.executable, str(child_script), db_url, "sig-run", mode, "0", "100000", "1500"],
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_episodes(db_url, proc)
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    expected_rc = -signal.SIGKILL if sig == signal.SIGKILL else 130
    assert proc.returncode == expected_rc, err.decode()
    runs = runs_frame(db_url)
    assert runs["status"].tolist() == [status]
    assert runs["end_time"].notna().all() == (status != "running")
    assert _assert_all_complete(db_url, "sig-run") >= 1


def test_two_threads_two_loggers_same_run(db_url: str, make_info: Callable[..., Any]) -> None:
    infos = [make_info(n_steps=120, seed=s) for s in range(4)]
    owner = RunLogger(db_url, parameters={}, run_id="r").start()
    other = RunLogger(db_url, run_id="r").attach()
    results: dict[str, int] = {}
    errors: list[BaseException] = []

    def work(name: str, logger: RunLogger, ids: range) -> None:
        try:
            results[name] = sum(logger.log_episode(f"e{i}", infos[i % 4]) for i in ids)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=("a", owner, range(0, 30))),
        threading.Thread(target=work, args=("b", other, range(15, 45))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    owner.finish()
    owner.close()
    other.close()
    assert results["a"] + results["b"] == 45
    assert _assert_all_complete(db_url, "r") == 45


def test_two_processes_same_sqlite_file(
    sqlite_url: str, child_script: Path, child_env: dict[str, str]
) -> None:
    owner = RunLogger(sqlite_url, parameters={}, run_id="r").start()
    procs = [
        subprocess.Popen(
            [sys.executable, str(child_script), sqlite_url, "r", "writer", first, last, "300"],
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for first, last in (("0", "40"), ("20", "60"))
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    owner.finish()
    owner.close()
    assert sum(int(out.strip()) for out, _ in outs) == 60
    assert _assert_all_complete(sqlite_url, "r") == 60


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_restart_mid_run_is_retried_and_the_run_completes(pg_url, tmp_path):
    """`pg_ctl restart -m fast` while rsc-train logs to PostgreSQL: the writes are retried,
    the run completes, and every finished episode is there exactly once."""
    from sqlalchemy import create_engine, text

    out, log = tmp_path / "run", tmp_path / "train.log"
    cmd = [sys.executable, "-m", "rsc_policy.cli.train", "--start", "2010-01-01", "--end",
           "2014-12-31", "--val-start", "2015-01-01", "--val-end", "2015-06-30",
           "--num-env-runners", "1", "--envs-per-runner", "2", "--env-steps", "12000",
           "--db", pg_url, "--out", str(out)]
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT,
                                env={**os.environ, "RSC_PROGRESS": "0"})

    def count() -> int:
        engine = create_engine(pg_url)
        try:
            with engine.connect() as conn:
                return int(conn.execute(text("SELECT COUNT(*) FROM episodes")).scalar())
        except Exception:
            return 0
        finally:
            engine.dispose()

    try:
        deadline = time.monotonic() + 240
        while count() < 1:  # poll until the run has logged an episode
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        restart = subprocess.run(["bash", str(PG_SCRIPT), "restart"], capture_output=True,
                                 text=True, timeout=120)
        assert restart.returncode == 0, restart.stderr
        assert proc.wait(timeout=600) == 0, log.read_text()
    finally:
        proc.kill()
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        status = conn.execute(text("SELECT status FROM training_runs")).scalar()
        ids = conn.execute(text("SELECT rllib_episode_id FROM episodes")).scalars().all()
        bad = conn.execute(text(
            "SELECT COUNT(*) FROM episodes e WHERE e.total_steps <> "
            "(SELECT COUNT(*) FROM steps s WHERE s.episode_id = e.episode_id)")).scalar()
    engine.dispose()
    assert status == "completed" and len(ids) == len(set(ids)) >= 2 and bad == 0
