"""Shared fixtures: real data files and one local Ray instance per test session."""

from __future__ import annotations

import os
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
