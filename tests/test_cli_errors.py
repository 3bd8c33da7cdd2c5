"""The user surface under mistakes: typed settings, one ``error:`` line on stderr with exit
code 2 before anything starts, ``--version``, fast ``--help`` with the real defaults."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rsc_db.cli import app as db_app
from rsc_policy.cli.bench import app as bench_app
from rsc_policy.cli.train import app as train_app

SMALL = ["--start", "2014-01-01", "--end", "2014-12-31", "--val-start", "2015-01-01",
         "--val-end", "2015-06-30", "--sequential", "--env-steps", "300"]  # fmt: skip


def _run(app, args):
    return CliRunner().invoke(app, args, catch_exceptions=False)


def _one_error_line(result, needle: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert lines[-1].startswith("error: ") and needle in lines[-1], result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("toml", "needle"), [
    ('num_env_runners = "2"\n', "num_env_runners: Input should be a valid integer (got '2')"),
    ('env_steps = "2000"\n', "env_steps: Input should be a valid integer"),
    ('[env]\ninitial_balance = "100000"\n', "env.initial_balance: Input should be a valid number"),
    ('seed = "abc"\n', "seed: Input should be a valid integer (got 'abc')"),
    ("[agent]\nepsilon_decay = 1.5\n", "epsilon_decay: Input should be less than or equal to 1"),
    ("[env]\nrisk_fraction = 2.0\n", "risk_fraction=2.0: must be in (0, 1]"),
    ("[agent]\nlearnin_rate = 0.1\n", "unknown setting 'learnin_rate'"),
])
def test_wrong_settings_file_values_are_one_error_before_anything_starts(tmp_path, toml,
                                                                         needle):
    cfg = tmp_path / "settings.toml"
    cfg.write_text(toml)
    out = tmp_path / "run"
    result = _run(train_app, ["--config", str(cfg), "--out", str(out)])
    _one_error_line(result, needle)
    assert str(cfg) in result.output
    assert not out.exists()  # no run directory, so no database and no run row either


def test_epsilon_decay_one_is_a_constant_epsilon_without_a_table():
    from rsc_policy.agent.schedule import EpsilonSchedule

    schedule = EpsilonSchedule(0.3, 1.0, 0.01)
    assert len(schedule) == 1 and schedule(0) == schedule(10**9) == 0.3


def test_read_only_sqlite_and_another_schema_version_are_user_errors(tmp_path):
    from sqlalchemy import create_engine, text

    from rsc_db import RunLogger

    path = tmp_path / "ro.sqlite"
    RunLogger(f"sqlite:///{path}").start().finish()
    path.chmod(0o444)
    result = _run(train_app, [*SMALL, "--db", f"sqlite:///file:{path}?mode=ro&uri=true",
                              "--out", str(tmp_path / "a")])
    _one_error_line(result, "readonly")
    old = tmp_path / "old.sqlite"
    RunLogger(f"sqlite:///{old}").start().finish()
    engine = create_engine(f"sqlite:///{old}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE schema_version SET version = 1"))
    engine.dispose()
    result = _run(train_app, [*SMALL, "--db", f"sqlite:///{old}", "--out", str(tmp_path / "b")])
    _one_error_line(result, "schema version 1, but rsc_db uses schema version 3")
    result = _run(db_app, ["runs", "--db", f"sqlite:///{old}"])
    _one_error_line(result, "schema version 1")


def test_too_many_runners_fail_fast_naming_both_numbers(tmp_path):
    want = (os.cpu_count() or 1) + 1
    result = _run(train_app, ["--num-env-runners", str(want), "--env-steps", "100",
                              "--out", str(tmp_path / "o")])
    _one_error_line(result, f"--num-env-runners {want} needs {want} CPUs")
    assert f"has {os.cpu_count()}" in result.output
    result = _run(bench_app, ["seq-vs-par", "--quick", "--runners", str(want),
                              "--out", str(tmp_path / "b")])
    _one_error_line(result, f"--runners {want} needs {want} CPUs")


def test_day_month_files_load_with_date_format_and_ambiguity_is_named(tmp_path):
    days = pd.bdate_range("2012-01-02", periods=900)
    close = 100 + np.cumsum(np.random.default_rng(0).normal(0, 1, len(days)))
    frame = pd.DataFrame({"Open": close, "High": close + 1, "Low": close - 1, "Close": close,
                          "Volume": 1000})
    eu = tmp_path / "eu.csv"
    frame.assign(Date=days.strftime("%d/%m/%Y"))[["Date", *frame.columns]].to_csv(eu,
                                                                                 index=False)
    # The 1st of February..December, 2012-2015: ascending read as d/m (Feb 1, Mar 1, ...) and
    # as m/d (Jan 2, Jan 3, ...) -- the dates cannot tell which: refused as ambiguous.
    dates = [f"01/{m:02d}/{y}" for y in range(2012, 2016) for m in range(2, 13)]
    tiny = tmp_path / "ambiguous.csv"
    frame.iloc[:len(dates)].assign(Date=dates)[["Date", *frame.columns]].to_csv(tiny,
                                                                                index=False)
    from rsc_env import load_ohlcv

    assert load_ohlcv(eu).index[0] == pd.Timestamp("2012-01-02")  # only d/m/Y reads it all
    result = _run(train_app, ["--data", str(tiny), *SMALL, "--out", str(tmp_path / "t")])
    _one_error_line(result, "are ambiguous")
    assert "--date-format" in result.output
    # with its format given, the file is read (then refused for its size, not its dates)
    result = _run(train_app, ["--data", str(tiny), "--date-format", "%d/%m/%Y", *SMALL,
                              "--out", str(tmp_path / "u")])
    _one_error_line(result, "after indicator warm-up the data runs 2015-02-01 to 2015-12-01")


def test_version_and_help_show_the_real_defaults():
    for app, args in ((train_app, ["--version"]), (bench_app, ["--version"]),
                      (db_app, ["--version"])):
        result = _run(app, args)
        assert result.exit_code == 0 and result.output.strip()[0].isdigit()
    text = _run(train_app, ["--help"]).output
    for default in ("100000", "0.001", "0.9", "2005-01-01", "8"):
        assert default in text, default
    # --help imports neither torch, Ray nor pandas (that is what keeps it fast)
    code = ("import sys; from rsc_policy.cli.train import app; from rsc_db.cli import app; "
            "from rsc_policy.cli.bench import app; "
            "print(sorted(m for m in ('torch', 'ray', 'pandas', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
