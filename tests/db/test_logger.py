"""RunLogger on SQLite and PostgreSQL: content, idempotency, atomicity, statuses, sampling."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from rsc_db import RunLogger, run_tables, runs_frame
from rsc_db.engine import make_engine

Info = dict[str, Any]
MakeInfo = Callable[..., Info]


def _counts(url: str, run_id: str) -> dict[str, int]:
    return {name: len(frame) for name, frame in run_tables(url, run_id).items()}


def _assert_complete(url: str, run_id: str) -> pd.DataFrame:
    """Every episode of the run has exactly total_steps steps; returns the episodes."""
    tables = run_tables(url, run_id)
    per_episode = tables["steps"].groupby("episode_id").size()
    eps = tables["episodes"]
    for row in eps.itertuples():
        assert per_episode.get(row.episode_id, 0) == row.total_steps
    return eps


def test_logged_episode_reads_back_exactly(db_url: str, make_info: MakeInfo) -> None:
    info = make_info(n_steps=80, seed=3)
    t0, t1 = datetime(2024, 1, 1, 9, tzinfo=UTC), datetime(2024, 1, 1, 9, 5, tzinfo=UTC)
    params = {"seed": 7, "num_env_runners": 2, "lr": np.float32(0.5), "arr": np.arange(2)}
    with RunLogger(db_url, parameters=params, run_id="run-a", notes="hello") as logger:
        assert logger.log_episode("ep-1", info, start_time=t0, end_time=t1) is True
    tables = run_tables(db_url, "run-a")
    run = tables["training_runs"].iloc[0]
    assert run["status"] == "completed" and run["notes"] == "hello"
    assert run["parameters"] == {"seed": 7, "num_env_runners": 2, "lr": 0.5, "arr": [0, 1]}
    assert run["start_time"].tzinfo is not None and run["end_time"] >= run["start_time"]

    ep = tables["episodes"].iloc[0]
    assert ep["rllib_episode_id"] == "ep-1" and ep["status"] == "completed"
    assert ep["start_time"] == pd.Timestamp(t0) and ep["end_time"] == pd.Timestamp(t1)
    for key in ("initial_portfolio_value", "final_portfolio_value", "pnl", "sharpe_ratio",
                "max_drawdown", "total_reward", "win_rate", "total_steps"):  # fmt: skip
        assert ep[key] == info[key], key

    steps = tables["steps"]
    log = info["episode_log"]
    assert len(steps) == info["total_steps"] == 80
    assert math.isclose(steps["reward"].sum(), info["total_reward"], rel_tol=0, abs_tol=1e-9)
    assert list(steps["timestamp"]) == list(pd.DatetimeIndex(log["date"]).tz_localize("UTC"))
    assert steps["timestamp"].dt.tz is not None
    assert list(steps["action"]) == [("flat", "long", "short")[a] for a in log["action"]]
    assert list(steps["position"]) == [{-1: "short", 0: "flat", 1: "long"}[p]
                                       for p in log["position"]]  # fmt: skip
    np.testing.assert_array_equal(steps["portfolio_value"], log["portfolio_value"])
    np.testing.assert_array_equal(steps["asset_price"], log["price"])
    np.testing.assert_array_equal(steps["reward"], log["reward"])

    trades = tables["trades"]
    assert len(trades) == len(info["completed_trades"]) > 0
    for row, tr in zip(trades.itertuples(), info["completed_trades"], strict=True):
        assert row.entry_time == tr["entry_time"].tz_localize("UTC")
        assert row.exit_time == tr["exit_time"].tz_localize("UTC")
        assert (row.entry_price, row.exit_price, row.quantity, row.direction, row.pnl,
                row.costs) == (tr["entry_price"], tr["exit_price"], tr["quantity"],
                               tr["direction"], tr["pnl"], tr["costs"])  # fmt: skip

    ops = tables["trading_operations"]
    assert len(ops) == len(log["operations"]) > 0
    step_index = {sid: i for i, sid in enumerate(steps["step_id"])}
    for row, (i, kind, size, price) in zip(ops.itertuples(), log["operations"], strict=True):
        assert step_index[row.step_id] == i
        assert row.timestamp == steps["timestamp"].iloc[i]
        assert (row.operation_type, row.size, row.price) == (kind, size, price)
    assert "HOLD" not in set(ops["operation_type"])
    # A reversal is an exit then an entry on the same step.
    reversal = ops.groupby("step_id")["operation_type"].agg(list)
    assert any(len(v) == 2 and v[0].startswith("EXIT") for v in reversal)


def test_same_episode_id_twice_is_logged_once(db_url: str, make_info: MakeInfo) -> None:
    with RunLogger(db_url, parameters={}, run_id="r") as logger:
        assert logger.log_episode("dup", make_info(seed=1)) is True
        assert logger.log_episode("dup", make_info(seed=2)) is False
        assert logger.log_episodes(
            [("dup", make_info(seed=3), None, None), ("new", make_info(seed=4), None, None)]
        ) == [False, True]
        assert logger.episodes_logged == 2
    counts = _counts(db_url, "r")
    assert counts["episodes"] == 2 and counts["steps"] == 120
    eps = _assert_complete(db_url, "r")
    assert eps.set_index("rllib_episode_id").loc["dup", "pnl"] == make_info(seed=1)["pnl"]


def test_a_retry_from_another_logger_is_not_duplicated(db_url: str, make_info: MakeInfo) -> None:
    with RunLogger(db_url, parameters={}, run_id="r") as first:
        first.log_episode("e", make_info())
        second = RunLogger(db_url, parameters={}, run_id="r").attach()  # e.g. restarted runner
        assert second.log_episode("e", make_info()) is False
        second.close()
    assert _counts(db_url, "r")["episodes"] == 1


def test_missing_key_raises_and_writes_nothing(db_url: str, make_info: MakeInfo) -> None:
    with RunLogger(db_url, parameters={}, run_id="r") as logger:
        logger.log_episode("good", make_info())
        bad = make_info()
        del bad["sharpe_ratio"]
        with pytest.raises(ValueError, match="sharpe_ratio"):
            logger.log_episode("bad", bad)
        with pytest.raises(ValueError, match="rllib_episode_id"):
            logger.log_episode("", make_info())
        bad = make_info()
        del bad["episode_log"]["reward"]
        with pytest.raises(ValueError, match="reward"):
            logger.log_episode("bad", bad)
        # a bad item anywhere in a batch: nothing of the batch is written
        with pytest.raises(ValueError, match="total_steps"):
            logger.log_episodes([("ok2", make_info(), None, None), ("bad", {**make_info(),
                                 "total_steps": 59}, None, None)])  # fmt: skip
    eps = _assert_complete(db_url, "r")
    assert list(eps["rllib_episode_id"]) == ["good"]


def test_out_of_range_operation_leaves_no_partial_episode(db_url: str, make_info: MakeInfo) -> None:
    with RunLogger(db_url, parameters={}, run_id="r") as logger:
        logger.log_episode("e1", make_info(seed=1))
        bad = make_info(seed=2)
        bad["episode_log"]["operations"].append((60, "EXIT_LONG", -10.0, 100.0))
        with pytest.raises(ValueError, match=r"operations'\]\[\d+\] step index 60 is outside"):
            logger.log_episode("e2", bad)
        assert logger.log_episode("e3", make_info(seed=3)) is True
    assert list(_assert_complete(db_url, "r")["rllib_episode_id"]) == ["e1", "e3"]


def _install_failing_trigger(url: str) -> None:
    """Make the database itself reject operation rows of size 777 (a real mid-write failure)."""
    engine = make_engine(url)
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER boom BEFORE INSERT ON trading_operations WHEN NEW.size = 777 "
                "BEGIN SELECT RAISE(ABORT, 'boom'); END"
            )
        else:
            conn.execute(text(
                "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN "
                "IF NEW.size = 777 THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            ))  # fmt: skip
            conn.execute(text(
                "CREATE TRIGGER boom BEFORE INSERT ON trading_operations "
                "FOR EACH ROW EXECUTE FUNCTION boom()"
            ))  # fmt: skip
    engine.dispose()


def test_database_failure_mid_episode_rolls_back(db_url: str, make_info: MakeInfo) -> None:
    with RunLogger(db_url, parameters={}, run_id="r") as logger:
        logger.log_episode("e1", make_info(seed=1))
        _install_failing_trigger(db_url)
        bad = make_info(seed=2)
        ops = bad["episode_log"]["operations"]
        i, kind, _, price = ops[len(ops) // 2]
        ops[len(ops) // 2] = (i, kind, 777.0, price)  # fails after episode, trades and steps
        with pytest.raises(Exception, match="boom"):
            logger.log_episode("e2", bad)
        assert logger.log_episode("e3", make_info(seed=3)) is True
        assert logger.log_episode("e2", make_info(seed=2)) is True  # retry works: nothing left
    eps = _assert_complete(db_url, "r")
    assert list(eps["rllib_episode_id"]) == ["e1", "e3", "e2"]
    counts = _counts(db_url, "r")
    expected_ops = sum(len(make_info(seed=s)["episode_log"]["operations"]) for s in (1, 2, 3))
    expected_trades = sum(len(make_info(seed=s)["completed_trades"]) for s in (1, 2, 3))
    assert counts["trading_operations"] == expected_ops
    assert counts["trades"] == expected_trades


@pytest.mark.parametrize(
    ("exc", "status"), [(None, "completed"), (RuntimeError, "failed"),
                        (KeyboardInterrupt, "interrupted")]
)  # fmt: skip
def test_context_manager_final_status(
    db_url: str, make_info: MakeInfo, exc: type[BaseException] | None, status: str
) -> None:
    def run() -> None:
        with RunLogger(db_url, parameters={"x": 1}, run_id="r") as logger:
            assert runs_frame(db_url)["status"].tolist() == ["running"]
            logger.log_episode("e1", make_info())
            if exc is not None:
                raise exc("stop")

    if exc is None:
        run()
    else:
        with pytest.raises(exc):
            run()
    runs = runs_frame(db_url)
    assert runs["status"].tolist() == [status]
    assert runs["end_time"].notna().all() and runs["episodes"].tolist() == [1]
    _assert_complete(db_url, "r")


def test_explicit_finish_and_duplicate_run_id(db_url: str, make_info: MakeInfo) -> None:
    logger = RunLogger(db_url, parameters={}, run_id="r")
    with pytest.raises(RuntimeError, match="start"):
        logger.log_episode("e", make_info())
    logger.start()
    logger.finish("interrupted")
    assert runs_frame(db_url)["status"].tolist() == ["interrupted"]
    with pytest.raises(ValueError, match="status"):
        logger.finish("weird")
    with pytest.raises(ValueError, match="already exists"):
        RunLogger(db_url, parameters={}, run_id="r").start()
    with pytest.raises(ValueError, match="does not exist"):
        RunLogger(db_url, parameters={}, run_id="nope").attach()
    logger.close()


def test_step_logging_off(db_url: str, make_info: MakeInfo) -> None:
    with RunLogger(db_url, parameters={}, run_id="r", log_steps=False) as logger:
        info = make_info()
        del info["episode_log"]  # not needed when steps are off
        logger.log_episode("a", info)
        logger.log_episode("b", make_info(seed=5))
    counts = _counts(db_url, "r")
    assert counts["episodes"] == 2 and counts["steps"] == counts["trading_operations"] == 0
    assert counts["trades"] == len(make_info()["completed_trades"]) + len(
        make_info(seed=5)["completed_trades"]
    )


def test_step_logging_every_third_episode(db_url: str, make_info: MakeInfo) -> None:
    with RunLogger(db_url, parameters={}, run_id="r", step_log_every=3) as logger:
        for i in range(7):
            logger.log_episode(f"e{i}", make_info(seed=i))
            if i == 2:
                logger.log_episode("e0", make_info(seed=0))  # duplicate: no slot consumed
    tables = run_tables(db_url, "r")
    with_steps = set(tables["steps"]["episode_id"])
    logged = tables["episodes"].set_index("episode_id")["rllib_episode_id"]
    assert sorted(logged[list(with_steps)]) == ["e0", "e3", "e6"]
    assert set(tables["trading_operations"]["episode_id"]) == with_steps
    assert len(tables["trades"]) == sum(len(make_info(seed=i)["completed_trades"])
                                        for i in range(7))  # fmt: skip
    with pytest.raises(ValueError):
        RunLogger(db_url, parameters={}, step_log_every=0)


def test_logger_survives_pickling(db_url: str, make_info: MakeInfo) -> None:
    import pickle

    with RunLogger(db_url, parameters={}, run_id="r") as logger:
        logger.log_episode("a", make_info())
        clone = pickle.loads(pickle.dumps(logger))
        assert clone.log_episode("b", make_info(seed=1)) is True
        clone.close()
    assert _counts(db_url, "r")["episodes"] == 2


def test_fast_and_core_writers_store_the_same_rows(db_url: str, make_info: MakeInfo) -> None:
    """The dialect fast path (multi-row INSERT / COPY) against plain SQLAlchemy Core inserts;
    one episode spans several multi-row statements per table, one has a single step."""
    from rsc_db import comparable_rows
    from rsc_db.records import episode_record
    from rsc_db.writer import SQLITE_MAX_PARAMS, insert_episode, write_children

    infos = [make_info(seed=s, n_steps=n) for s, n in enumerate((50, 700, 1))]
    assert len(episode_record(infos[1]).trades) > SQLITE_MAX_PARAMS // 9  # > 1 trades statement
    with RunLogger(db_url, parameters={}, run_id="fast") as logger:
        for i, info in enumerate(infos):
            logger.log_episode(f"fast-{i}", info)
    with RunLogger(db_url, parameters={}, run_id="core") as logger:
        with logger.engine.begin() as conn:
            for i, info in enumerate(infos):
                rec = episode_record(info)
                row = {**rec.summary, "run_id": "core", "rllib_episode_id": f"core-{i}",
                       "start_time": datetime.now(UTC), "end_time": datetime.now(UTC)}  # fmt: skip
                episode_id = insert_episode(conn, row)
                assert episode_id is not None
                write_children(conn, episode_id, rec, method="core")
    fast, core = comparable_rows(db_url, "fast"), comparable_rows(db_url, "core")
    for name in fast:
        pd.testing.assert_frame_equal(fast[name], core[name], check_exact=True, obj=name)
    assert len(core["trading_operations"]) > 0


def test_interrupt_inside_a_write_lands_after_the_transaction():
    """SIGINT raised while a transaction is open is held and delivered when it ends."""
    import os
    import signal

    from rsc_db.logger import signals_deferred

    before = signal.getsignal(signal.SIGINT)
    reached_end_of_block = False
    with pytest.raises(KeyboardInterrupt):
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            reached_end_of_block = True
    assert reached_end_of_block
    assert signal.getsignal(signal.SIGINT) is before
