"""Pieces shared by the command-line tools: the user-error type, the train / held-out data
periods, and starting Ray."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from rsc_cli.errors import UserError, install_signal_handlers
from rsc_env import MarketDataError, prepare_market_data


def load_periods(
    data: str, start: str | None, end: str | None, val_start: str | None, val_end: str | None,
    env_params: dict[str, Any], date_format: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Env configs of the training period and the held-out period after it:
    ``{"data", "start", "end", **env_params}`` with ``start``/``end`` the first and last bar
    actually used (the data is prepared here once to check it; each env runner prepares its
    own copy, so no table travels inside the config). Raise :class:`UserError` naming the
    flag or the file."""
    for flag, first, last in (("--start/--end", start, end),
                              ("--val-start/--val-end", val_start, val_end)):
        if first is None or last is None:
            continue
        try:
            if np.datetime64(first) > np.datetime64(last):
                raise UserError(f"{flag}: start {first} is after end {last}")
        except ValueError:
            raise UserError(f"{flag}: {first!r} / {last!r} are not dates (YYYY-MM-DD)") from None
    try:
        train = prepare_market_data(data, start=start, end=end, min_rows=50,
                                    date_format=date_format)
        val = prepare_market_data(data, start=val_start, end=val_end, min_rows=20,
                                  date_format=date_format)
    except (MarketDataError, ValueError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from None
    if train.index[-1] >= val.index[0]:
        raise UserError("the validation period must start after the training period ends")
    def period(table: Any) -> dict[str, Any]:
        return {"data": data, "start": str(table.index[0].date()),
                "end": str(table.index[-1].date()), **env_params,
                **({"date_format": date_format} if date_format else {})}

    return period(train), period(val)


def start_ray(address: str | None) -> bool:
    """Initialise Ray (on ``address``, else locally on every core) unless it already is; True
    if this call started it."""
    import ray

    if ray.is_initialized():
        return False
    import logging

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no token-authentication banner
    logging.getLogger("ray.rllib").setLevel(logging.ERROR)  # "new API stack" notices
    kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR",
              "configure_logging": True}
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=os.cpu_count(), **kwargs)
    except BaseException:  # Ctrl-C / SIGTERM / an error half way through the start
        stop_ray()
        raise
    install_signal_handlers()  # ray.init installs its own; ours give exit codes 130/143
    return True


def _descendants() -> set[int]:
    """Process ids of this process's descendants (Linux ``/proc``; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    try:
        entries = [e.name for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:
        return set()
    for name in entries:
        try:
            with open(f"/proc/{name}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(name))
    out: set[int] = set()
    stack = [os.getpid()]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in out:
                out.add(child)
                stack.append(child)
    return out


def _running(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            alive.add(pid)
    return alive


def stop_ray(grace_s: float = 2.0) -> None:
    """``ray.shutdown()``, then make sure no process this one started (Ray's GCS, raylet and
    the agents the raylet spawns) outlives it: Ray stops its own processes, but a raylet
    killed while it was starting leaves its DashboardAgent / RuntimeEnvAgent behind for a
    minute. Those still running after ``grace_s`` get SIGTERM, then SIGKILL. Ctrl-C and
    SIGTERM are ignored meanwhile (a second one must not interrupt the cleanup)."""
    import signal
    import time

    import ray

    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        ours = _descendants()  # before the raylet dies: its agents are still its children
        ray.shutdown()
        for sig, wait in ((None, grace_s), (signal.SIGTERM, 2.0), (signal.SIGKILL, 0.0)):
            left = _running(ours)
            if sig is not None:
                for pid in left:
                    try:
                        os.kill(pid, sig)
                    except OSError:
                        pass
            deadline = time.monotonic() + wait
            while _running(ours) and time.monotonic() < deadline:
                time.sleep(0.05)  # polling the process table while processes exit
            if not _running(ours):
                return
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def make_run_dir(run_dir: Path, flag: str, *, allow_existing: bool = False) -> bool:
    """Create ``run_dir`` (True if this call created it), or raise :class:`UserError`: it is
    a file, not writable, or already holds files (another run's metrics, report and
    checkpoint would be mixed with or overwritten by this run's: give each run its own)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"{flag} {run_dir}: is a file, not a directory")
    if not allow_existing and run_dir.is_dir() and any(run_dir.iterdir()):
        held = ", ".join(sorted(p.name for p in run_dir.iterdir())[:5])
        raise UserError(f"{flag} {run_dir}: the directory already holds files ({held}); each "
                        "run needs its own directory: give a new or empty one (or leave "
                        f"{flag} out for runs/<run_id>/)")
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".rsc-write-test"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        if created and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()
        raise UserError(f"{flag} {run_dir}: cannot write there ({exc.strerror or exc})") \
            from None
    return created


#: Ray's error line at every start with remote env runners (ray-project/ray#53727). RLlib
#: itself puts the EnvRunnerGroup's config into the object store (``ray.put``) and passes
#: the reference to every runner actor, which has ``max_restarts > 0`` because failed runners
#: are restarted; Ray logs this for any such actor, whatever the argument's size. rsc's
#: ``env_config`` holds no table (a few hundred bytes), so there is nothing of rsc's to take
#: out of the object store; the reference is held by the driver for the algorithm's whole
#: life (the object stays pinned), so a restart finds it, which is the case the line warns
#: about. The line is therefore kept from the user's terminal, and only it.
RAY_ACTOR_ARG_NOTICE = ("has constructor arguments in the object store and max_restarts > 0",)


class FilteredStderr:
    """Within ``with FilteredStderr(patterns):`` lines written to file descriptor 2 (also by
    C++ code such as Ray's core worker) that contain any of ``patterns`` are dropped; every
    other byte reaches the real stderr unchanged."""

    def __init__(self, patterns: tuple[str, ...] = RAY_ACTOR_ARG_NOTICE) -> None:
        self.patterns = tuple(p.encode() for p in patterns)
        self.dropped = 0

    def __enter__(self) -> FilteredStderr:
        import sys
        import threading

        sys.stderr.flush()
        self._saved = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self._thread = threading.Thread(target=self._pump, args=(read_end,), daemon=True,
                                        name="rsc-stderr-filter")
        self._thread.start()
        return self

    def _pump(self, read_end: int) -> None:
        buffer = b""
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                self._write(lines, newline=True)
        if buffer:
            self._write([buffer], newline=False)

    def _write(self, lines: list[bytes], newline: bool) -> None:
        out = []
        for line in lines:
            if any(p in line for p in self.patterns):
                self.dropped += 1
            else:
                out.append(line + (b"\n" if newline else b""))
        if out:
            os.write(self._saved, b"".join(out))

    def __exit__(self, *exc: object) -> None:
        import sys

        sys.stderr.flush()
        os.dup2(self._saved, 2)  # closes the pipe's last write end: the pump sees EOF
        self._thread.join(timeout=5)
        if not self._thread.is_alive():  # else a child holds the pipe: keep its target open
            os.close(self._saved)
