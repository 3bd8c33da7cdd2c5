"""Bulk-write throughput of RunLogger (pytest-benchmark).

    python -m pytest bench/bench_db.py -s                       # SQLite
    RSC_TEST_PG_URL=postgresql+psycopg://... python -m pytest bench/bench_db.py -s   # + PostgreSQL

One round = one 5,000-step episode in one transaction. ``random`` episodes change position on
~2/3 of the steps (so they also carry ~4,400 operation and ~2,200 trade rows); ``steps_only``
episodes carry none. Reported: step rows/s and all rows/s (steps + operations + trades).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from rsc_db import RunLogger

N_STEPS = 5_000
_SYNTH = Path(__file__).resolve().parents[1] / "tests" / "db" / "_synthetic.py"


def _synthetic_info(**kw: Any) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("rsc_db_bench_synthetic", _SYNTH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.synthetic_info(**kw)


def _info(kind: str) -> dict[str, Any]:
    info = _synthetic_info(n_steps=N_STEPS, seed=0)
    if kind == "steps_only":
        info["completed_trades"] = []
        info["episode_log"]["operations"] = []
    return info


def _pg_url() -> str | None:
    base = os.environ.get("RSC_TEST_PG_URL")
    if not base:
        return None
    return base


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bench.sqlite'}"
        return
    base = _pg_url()
    if base is None:
        pytest.skip("set RSC_TEST_PG_URL (scripts/pg-test-server.sh) to benchmark PostgreSQL")
    name = f"rsc_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield base.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.parametrize("kind", ["random", "steps_only"])
def test_bulk_write_episode(benchmark: Any, url: str, kind: str) -> None:
    info = _info(kind)
    rows = N_STEPS + len(info["episode_log"]["operations"]) + len(info["completed_trades"])
    ids = (f"ep-{i}" for i in itertools.count())
    with RunLogger(url, parameters={"bench": kind}) as logger:
        logger.log_episode("warm-up", info)
        benchmark.pedantic(lambda: logger.log_episode(next(ids), info), rounds=15, iterations=1)
    mean = benchmark.stats.stats.mean
    benchmark.extra_info["step_rows_per_s"] = round(N_STEPS / mean)
    benchmark.extra_info["all_rows_per_s"] = round(rows / mean)
    print(
        f"\n{url.split(':', 1)[0]} {kind}: {N_STEPS / mean:,.0f} step rows/s, "
        f"{rows / mean:,.0f} rows/s incl. {rows - N_STEPS} operation+trade rows"
    )
