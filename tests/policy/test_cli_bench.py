"""``rsc-bench seq-vs-par``: the quick configuration end to end, and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rsc_policy.cli.bench import app

runner = CliRunner()


def test_seq_vs_par_quick_writes_consistent_report(ray_local, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    result = runner.invoke(app, ["seq-vs-par", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("seq_vs_par.json", "seq_vs_par.md", "seq_vs_par.png"):
        assert (out / name).stat().st_size > 0, name
    assert ray_local.is_initialized()  # the CLI reused the session's Ray and left it running

    doc = json.loads((out / "seq_vs_par.json").read_text())
    runs = doc["runs"]
    assert [r["num_env_runners"] for r in runs] == [0, *doc["settings"]["runners"]] == [0, 1, 2]
    assert doc["machine"]["cpu_count"] >= 1 and doc["machine"]["torch"] and doc["machine"]["ray"]
    budget = doc["env_steps"]  # the target rounded up to whole runner requests
    assert budget >= doc["target_env_steps"] == doc["settings"]["target_env_steps"]
    chunk = doc["settings"]["envs_per_runner"] * doc["settings"]["fragment"]
    assert budget % chunk == 0
    assert runs[0]["env_steps"] == budget  # the sequential loop stops exactly at the budget
    seq_rate = runs[0]["env_steps_per_s"]
    for run in runs:
        # RLlib runs stop at the first whole request at or past the budget.
        assert budget <= run["env_steps"] < budget + max(1, run["num_env_runners"]) * chunk
        assert run["env_steps_per_s"] > 0 and run["updates_per_s"] > 0
        assert math.isclose(run["env_steps_per_s"], run["env_steps"] / run["wall_time_s"])
        assert math.isclose(run["speedup"], run["env_steps_per_s"] / seq_rate)
        split = run["time_split_s"]
        assert set(split) == {"sample_s", "learn_step_s", "sync_s", "log_s", "other_s"}
        assert split["log_s"] == 0.0 and all(v >= 0 for v in split.values())
        assert sum(split.values()) <= run["wall_time_s"] * 1.01 + 1e-6
        agent = run["evaluation"]["rows"]["agent"]
        assert {"pnl", "total_return", "sharpe", "max_drawdown", "trades", "cagr"} <= set(agent)
        assert run["evaluation"]["n_random"] == 100

    lim = doc["limits"]  # the ceiling derived from costs measured in the same run
    per_step = lim["env_step_us"] + lim["act_us"] + lim["learn_step_us"]
    assert lim["gemm_floor_us"] > 0 and lim["learn_step_us"] > 0
    assert math.isclose(lim["sequential_ceiling"], 1e6 / per_step)
    assert math.isclose(lim["parallel_ceiling"],
                        min(1e6 / lim["learn_step_us"], lim["cores"] * 1e6 / per_step))

    table = (out / "seq_vs_par.md").read_text()
    assert "core ceiling with one learner" in table
    assert all(f"| {r['label']} |" in table for r in runs)
    assert "| configuration |" in table and "speed-up" in table
    assert "| buy and hold |" in table and "| SMA 50/200 crossover |" in table


@pytest.mark.parametrize(("args", "message"), [
    (["--env", "bogus"], "--env 'bogus'"),
    (["--runners", "0,2"], "runner counts must be >= 1"),
    (["--runners", "two"], "comma-separated integers"),
    (["--start", "2015-06-01", "--end", "2015-01-01"], "is after"),
    (["--end", "2016-06-30"], "validation period must start after"),
    (["--env-steps", "0"], "--env-steps=0"),
])
def test_bad_input_exits_2_with_one_message(tmp_path: Path, args: list[str],
                                            message: str) -> None:
    result = runner.invoke(app, ["seq-vs-par", "--quick", "--out", str(tmp_path), *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "seq_vs_par.json").exists()


def test_sweep_writes_the_five_ways_and_the_flop_limit(ray_local, tmp_path: Path) -> None:
    """``rsc-bench sweep`` with 3 members: (a) to (e) each train every member the same
    number of env steps, the FLOP limit is derived from the step's FLOPs and the measured
    GEMM rate, and each member has a held-out figure from (a) and from (c)."""
    out = tmp_path / "sweep"
    result = runner.invoke(app, ["sweep", "--members", "3", "--env-steps", "256",
                                 "--envs-per-runner", "2", "--fragment", "32",
                                 "--start", "2015-01-01", "--end", "2015-12-31",
                                 "--val-start", "2016-01-01", "--val-end", "2016-12-31",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "sweep.json").read_text())
    for key in ("members", "cores", "sequential_env_steps_per_s", "per_core_env_steps_per_s",
                "population_env_steps_per_s", "flop_limit_env_steps_per_s"):
        assert doc[key] > 0, key
    assert doc["members"] == 3 and doc["population_env_steps"] >= 3 * 256
    assert math.isclose(doc["flop_limit_env_steps_per_s"],
                        doc["cores"] * doc["gemm_gflops_per_core"] * 1e3 / doc["step_mflop"])
    assert [h["member"] for h in doc["held_out_sharpe"]] == ["m0", "m1", "m2"]
    assert all(isinstance(h["sequential"], float) and isinstance(h["population"], float)
               for h in doc["held_out_sharpe"])  # NaN when a policy never trades
    assert "(c) one population" in (out / "sweep.md").read_text()
    # (d), the plain population loop, and (e), that loop in StrategyAgentAlgo's learner,
    # train each member exactly as (a) does
    assert doc["population_loop_env_steps_per_s"] > 0
    assert doc["population_learner_env_steps_per_s"] > 0
    for h in doc["held_out_sharpe"]:
        for way in ("population_loop", "population_learner"):
            assert h[way] == h["sequential"] or (
                math.isnan(h[way]) and math.isnan(h["sequential"])), (way, h["member"])
    assert "(e) the same population on StrategyAgentAlgo" in (out / "sweep.md").read_text()
    # the products on one member's own shapes, and (e)'s member env step beside them
    assert doc["member_products_us"] > 0
    assert math.isclose(doc["member_shapes_limit_env_steps_per_s"],
                        doc["cores"] * 1e6 / doc["member_products_us"])
    assert math.isclose(doc["member_step_us"] * doc["population_learner_env_steps_per_s"],
                        doc["cores"] * 1e6)
    assert "On one member's own shapes" in (out / "sweep.md").read_text()
    # the stricter limit and how far (e) is below it
    assert doc["strictest_limit_env_steps_per_s"] == max(
        doc["flop_limit_env_steps_per_s"], doc["member_shapes_limit_env_steps_per_s"])
    assert math.isclose(doc["learner_below_strictest_limit"] * doc[
        "population_learner_env_steps_per_s"], doc["strictest_limit_env_steps_per_s"])
    assert "The stricter of the two limits" in (out / "sweep.md").read_text()


def test_sweep_refuses_bad_sizes(tmp_path: Path) -> None:
    result = runner.invoke(app, ["sweep", "--members", "0", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--members must be >= 1" in result.output


def test_one_core_timing_holds_blas_to_one_thread() -> None:
    """The per-core GEMM rate is timed with BLAS on one thread (a stacked K-member product
    would otherwise run on every core and count the cores twice), and the limit is lifted
    afterwards."""
    from threadpoolctl import threadpool_info

    from rsc_policy.cli.limits import one_core_us

    def blas_threads() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    seen: list[list[int]] = []
    assert one_core_us(lambda: seen.append(blas_threads()), 3) >= 0
    assert seen and all(t == [1] * len(before) for t in seen)
    assert blas_threads() == before
