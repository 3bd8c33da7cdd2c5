"""Faults around real rsc processes: SIGTERM of rsc-tune says how to continue; Ctrl-C while
rsc-train starts Ray leaves no Ray process of the run alive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TINY = """
[sweep]
samples = 2
seeds = 1
episodes = 50
train_years = 1.0
validation_years = 0.5
step_years = 9.0
test_years = 2.0

[agent]
lr = {low = 1e-4, high = 3e-3, log = true}
"""
def _wait_until(cond, proc: subprocess.Popen, log: Path, what: str, seconds: float = 180):
    deadline = time.monotonic() + seconds
    while not cond():
        if proc.poll() is not None:
            pytest.fail(f"the process ended before {what}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {what} within {seconds} s:\n{log.read_text()}")
        time.sleep(0.05)  # polling the file system / process table, not waiting out a race


def test_sigterm_of_rsc_tune_says_how_to_continue(tmp_path):
    space, out, log = tmp_path / "tiny.toml", tmp_path / "sweep", tmp_path / "tune.log"
    space.write_text(TINY)
    with log.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "rsc_policy.cli.tune", str(space),
                                 "--out", str(out)], stdout=sink, stderr=subprocess.STDOUT)
    try:
        _wait_until(lambda: (out / "tune").is_dir(), proc, log, "Tune experiment directory")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 143, log.read_text()
    finally:
        proc.kill()
    text = log.read_text()
    assert f"continue with: rsc-tune --resume {out}" in text, text
    assert "Traceback" not in text and "error: terminated (SIGTERM)" in text


def test_a_swallowed_sigterm_still_stops_the_sweep(monkeypatch):
    """If a library swallows the exception our SIGTERM handler raises (CI saw a sweep run to
    its end after SIGTERM), the Tune callback turns the recorded SIGTERM into Tune's
    graceful stop (SIGINT, once), and the sweep then exits 143."""
    from rsc_cli import errors
    from rsc_policy.tuning.sweep import Recorder

    recorder = Recorder.__new__(Recorder)  # the relay needs none of the sweep's state
    recorder.on_step_begin(0, [])  # no SIGTERM seen: nothing happens
    monkeypatch.setattr(errors, "_received", [signal.SIGTERM])
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            recorder.on_step_begin(1, [])
            for _ in range(1000):  # the handler runs at the next bytecode boundaries
                pass
        recorder.on_step_begin(2, [])  # relayed once only
    finally:
        signal.signal(signal.SIGINT, previous)
    assert errors.sigterm_received()


def test_a_signal_swallowed_by_a_destructor_still_stops_the_command(capsys):
    """SIGTERM whose exception lands in a ``__del__`` is swallowed by Python (CI once saw
    rsc-train train on after SIGTERM): the command's loop raises it again
    (``raise_if_interrupted``), the command exits 143, no "Exception ignored" traceback is
    printed, and the caller's handlers are back afterwards."""
    import typer

    from rsc_cli.errors import cli_errors, raise_if_interrupted

    reached = []

    class Swallows:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs at the next bytecode boundaries
                pass

    @cli_errors("rsc-test")
    def command() -> None:
        Swallows()  # destroyed at once: the handler's exception is swallowed in __del__
        reached.append("after the destructor")
        raise_if_interrupted()
        reached.append("after the check")

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with pytest.raises(typer.Exit) as exc:
        command()
    assert exc.value.exit_code == 143
    assert reached == ["after the destructor"]
    err = capsys.readouterr().err
    assert "terminated (SIGTERM)" in err and "Exception ignored" not in err, err
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_ctrl_c_while_ray_starts_leaves_no_ray_process(tmp_path, processes):
    """SIGINT as soon as the raylet has spawned its agents (Ray still starting): exit 130,
    no traceback, and no process of the run (GCS, raylet, DashboardAgent, RuntimeEnvAgent)
    alive a few seconds later."""
    out, log = tmp_path / "run", tmp_path / "train.log"
    cmd = [sys.executable, "-m", "rsc_policy.cli.train", "--start", "2014-01-01", "--end",
           "2014-12-31", "--val-start", "2015-01-01", "--val-end", "2015-06-30",
           "--num-env-runners", "1", "--env-steps", "100000", "--out", str(out)]
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT,
                                env={**os.environ, "RSC_PROGRESS": "0"})
    seen: set[int] = set()

    def agents_up() -> bool:
        seen.update(processes.ray_tree(proc.pid))
        table = processes.table()
        return any("Agent" in table[p][2] for p in seen if p in table)

    try:
        _wait_until(agents_up, proc, log, "Ray agents")
        proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            seen.update(processes.ray_tree(proc.pid))  # anything spawned while Ray was stopping
            time.sleep(0.05)
        assert proc.wait(timeout=60) == 130, log.read_text()
    finally:
        proc.kill()
    assert "Traceback" not in log.read_text(), log.read_text()
    deadline = time.monotonic() + 5
    while processes.alive(seen) and time.monotonic() < deadline:
        time.sleep(0.2)  # polling the process table while processes exit
    left = processes.alive(seen)
    for pid in left:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert not left, f"alive after Ctrl-C during Ray start: {left}"
