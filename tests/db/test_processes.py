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
