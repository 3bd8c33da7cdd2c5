"""DataFrame helpers and the rsc-db CLI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from rsc_db import (
    RunLogger,
    SchemaVersionMismatch,
    comparable_rows,
    episodes_frame,
    run_tables,
    runs_frame,
    steps_frame,
)
from rsc_db.cli import app

MakeInfo = Callable[..., dict[str, Any]]


def _log(url: str, run_id: str, infos: list[tuple[str, dict[str, Any]]], **kw: Any) -> None:
    with RunLogger(url, parameters={"seed": 1}, run_id=run_id, **kw) as logger:
        for rid, info in infos:
            logger.log_episode(rid, info)


def test_frames(db_url: str, make_info: MakeInfo) -> None:
    _log(db_url, "r1", [("a", make_info(seed=1)), ("b", make_info(seed=2, n_steps=30))])
    _log(db_url, "r2", [("c", make_info(seed=3))])
    runs = runs_frame(db_url)
    assert set(runs["run_id"]) == {"r1", "r2"}
    assert runs.set_index("run_id")["episodes"].to_dict() == {"r1": 2, "r2": 1}
    assert isinstance(runs["start_time"].dtype, pd.DatetimeTZDtype)
    eps = episodes_frame(db_url, "r1")
    assert eps["rllib_episode_id"].tolist() == ["a", "b"]
    assert len(steps_frame(db_url, "r1")) == 90
    assert len(steps_frame(db_url, run_id="r2")) == 60
    first_id = int(eps["episode_id"].iloc[1])
    one = steps_frame(db_url, first_id)
    assert len(one) == 30 and set(one["episode_id"]) == {first_id}
    assert one.equals(steps_frame(db_url, episode_id=first_id))
    assert isinstance(one["timestamp"].dtype, pd.DatetimeTZDtype)
    with pytest.raises(ValueError):
        steps_frame(db_url)
    tables = run_tables(db_url, "r2")
    assert set(tables) == {"training_runs", "episodes", "steps", "trades", "trading_operations"}
    assert "step_id" in tables["trading_operations"]


def test_comparable_rows_ignore_ids_time_and_logging_order(
    db_url: str, make_info: MakeInfo
) -> None:
    infos = {s: make_info(seed=s, n_steps=40) for s in range(4)}
    infos[4] = make_info(seed=0, n_steps=40, start="2016-01-04")  # later first bar
    _log(db_url, "first", [(f"x{s}", infos[s]) for s in (0, 1, 2, 3, 4)])
    _log(db_url, "noise", [("n", make_info(seed=9))])  # other runs do not leak in
    _log(db_url, "second", [(f"y{s}", infos[s]) for s in (4, 2, 0, 3, 1)])
    a, b = comparable_rows(db_url, "first"), comparable_rows(db_url, "second")
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)
    assert "episode_id" not in a["steps"] and "rllib_episode_id" not in a["episodes"]
    assert "step_id" not in a["trading_operations"]
    assert a["episodes"]["episode_order"].tolist() == [0, 1, 2, 3, 4]
    assert a["steps"].groupby("episode_order").size().tolist() == [40] * 5
    assert a["training_runs"]["parameters"].tolist() == ['{"seed": 1}']
    # an actual difference is visible
    _log(db_url, "third", [(f"z{s}", infos[s]) for s in (0, 1, 2, 3)])
    assert len(comparable_rows(db_url, "third")["episodes"]) == 4


def test_query_of_empty_database_is_clear(sqlite_url: str) -> None:
    with pytest.raises(SchemaVersionMismatch, match="no rsc_db tables"):
        runs_frame(sqlite_url)


def test_cli_runs_and_episodes(sqlite_url: str, make_info: MakeInfo) -> None:
    _log(sqlite_url, "cli-run", [("a", make_info(seed=1)), ("b", make_info(seed=2))])
    runner = CliRunner()
    result = runner.invoke(app, ["runs", "--db", sqlite_url], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "cli-run" in result.output and "completed" in result.output
    result = runner.invoke(app, ["episodes", "cli-run", "--db", sqlite_url],
                           env={"COLUMNS": "250"})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "rllib_episode_id" in result.output and "60" in result.output
    result = runner.invoke(app, ["episodes", "nope", "--db", sqlite_url])
    assert result.exit_code == 2 and "no episodes" in result.output
    missing = sqlite_url.replace("rsc.sqlite", "missing.sqlite")
    result = runner.invoke(app, ["runs", "--db", missing])
    assert result.exit_code == 2 and "no database file" in result.output


def test_cli_uses_database_url(sqlite_url: str, make_info: MakeInfo) -> None:
    _log(sqlite_url, "env-run", [("a", make_info())])
    result = CliRunner().invoke(app, ["runs"], env={"DATABASE_URL": sqlite_url, "COLUMNS": "200"})
    assert result.exit_code == 0 and "env-run" in result.output


def test_mark_interrupted_stale_with_nothing_stale_says_so(db_url: str,
                                                           make_info: MakeInfo) -> None:
    _log(db_url, "done", [("a", make_info(seed=1))])  # completed: not stale
    runner = CliRunner()
    result = runner.invoke(app, ["mark-interrupted", "--stale", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert "no stale runs" in result.output and "nothing marked" in result.output
    assert "give --stale" not in result.output
    result = runner.invoke(app, ["mark-interrupted", "--db", db_url])  # neither ids nor --stale
    assert result.exit_code == 2 and "name the runs to mark, or give --stale" in result.output
