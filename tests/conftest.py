"""Shared fixtures: real data files and one local Ray instance per test session."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def googl_csv() -> Path:
    """GOOGL daily bars 2009-2018 (gym-anytrading package data, MIT)."""
    return DATA_DIR / "googl_daily_2009_2018.csv"


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray (2 CPUs, no dashboard), started once and shared by the session."""
    import ray

    if not ray.is_initialized():
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


class Processes:
    """The machine's process table, for tests that check which Ray processes a run leaves."""

    RAY_MARKS = ("raylet", "gcs_server", "ray::", "ray/_private", "ray/dashboard",
                 "ray/autoscaler")

    @staticmethod
    def table() -> dict[int, tuple[int, str, str]]:
        """pid -> (parent pid, state, command line) of every live process."""
        out = subprocess.run(["ps", "-ww", "-eo", "pid=,ppid=,stat=,args="],
                             capture_output=True, text=True).stdout
        table = {}
        for line in out.splitlines():
            pid, ppid, stat, *args = line.split(None, 3)
            table[int(pid)] = (int(ppid), stat, args[0] if args else "")
        return table

    def ray_tree(self, root: int) -> set[int]:
        """The Ray processes descending from ``root`` (its raylet, GCS, workers, agents).
        Only this run's: other Ray sessions on the machine are not counted."""
        table, tree, frontier = self.table(), set(), {root}
        while frontier:
            frontier = {pid for pid, (ppid, _, _) in table.items() if ppid in frontier} - tree
            tree |= frontier
        return {pid for pid in tree if any(k in table[pid][2] for k in self.RAY_MARKS)}

    def alive(self, pids: set[int]) -> dict[int, str]:
        """Those of ``pids`` still running, with their command lines (zombies count as
        gone)."""
        table = self.table()
        return {pid: table[pid][2] for pid in pids
                if pid in table and not table[pid][1].startswith("Z")}


@pytest.fixture
def processes() -> Processes:
    """:class:`Processes`: the process table, the Ray processes of a run, which are alive."""
    return Processes()
