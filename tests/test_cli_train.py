"""rsc-train as a user runs it: a small real run, the sequential variant, resume, errors,
and Ctrl-C. In-process runs share the session's local Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from rsc_policy.cli.train import app

SMALL = ["--start", "2014-01-01", "--end", "2014-12-31", "--val-start", "2015-01-01",
         "--val-end", "2015-06-30", "--num-env-runners", "1", "--envs-per-runner", "2"]  # fmt: skip


def _invoke(args: list[str]):
    return CliRunner().invoke(app, args, catch_exceptions=False)


def _run_rows(url: str) -> list[tuple]:
    eng = create_engine(url)
    with eng.connect() as conn:
        rows = conn.execute(text(
            "SELECT r.status, COUNT(e.episode_id), SUM(e.total_steps) FROM training_runs r "
            "LEFT JOIN episodes e ON e.run_id = r.run_id GROUP BY r.run_id, r.status")).all()
        steps = conn.execute(text("SELECT COUNT(*) FROM steps")).scalar()
    eng.dispose()
    return [(*r, steps) for r in rows]


def test_train_writes_report_plots_checkpoint_and_db(ray_local, tmp_path):
    out = tmp_path / "run"
    result = _invoke([*SMALL, "--env-steps", "1100", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("report.md", "equity.png", "training.png", "throughput.png", "summary.json",
                 "policy/qnet.pt", "checkpoint/rsc_run.json", "metrics.jsonl"):
        assert (out / name).is_file(), name
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines and all("rsc/epsilon" in x and "env_steps" in x for x in lines)
    assert not any(k.startswith("config/") for k in lines[0])
    assert [x["env_steps"] for x in lines] == sorted(x["env_steps"] for x in lines)
    assert list(out.glob("events.out.tfevents.*"))  # TensorBoard event file
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env_steps"] >= 1100 and summary["episodes"] >= 2
    rows = summary["evaluation"]["rows"]
    assert {"agent", "buy and hold", "SMA 50/200 crossover"} <= set(rows)
    # buy-and-hold of the whole balance over 2015-01-02..2015-06-30 (the index rose ~1 %)
    assert rows["buy and hold"]["total_return"] == pytest.approx(0.0073, abs=0.005)
    assert summary["evaluation"]["n_random"] == 100 and summary["evaluation"]["fee_bp"] == 0.1
    report = (out / "report.md").read_text()
    assert "| agent |" in report and "env steps/s** (step logging included)" in report
    assert "below 1 bp" in report and "Beats buy-and-hold's Sharpe on this period:" in report
    assert "random (100 seeds, 5th pct)" in report
    [(status, n_episodes, total_steps, n_step_rows)] = _run_rows(f"sqlite:///{out}/rsc.sqlite")
    assert status == "completed" and n_episodes == summary["episodes"]
    assert n_step_rows == total_steps

    resumed = tmp_path / "resumed"
    result = _invoke([*SMALL, "--env-steps", "600", "--resume", str(out / "checkpoint"),
                      "--out", str(resumed)])
    assert result.exit_code == 0, result.output
    again = json.loads((resumed / "summary.json").read_text())
    assert again["env_steps"] >= 600
    # this run's env and learning steps, the checkpoint's history apart (not mixed)
    lifetime = again["lifetime"]
    assert lifetime["resumed_at_env_steps"] == summary["env_steps"]
    assert lifetime["resumed_at_learning_steps"] == summary["learning_steps"]
    assert lifetime["learning_steps"] == summary["learning_steps"] + again["learning_steps"]
    assert lifetime["env_steps"] == summary["env_steps"] + again["env_steps"]
    assert "the figures above are this run's; lifetime" in (resumed / "report.md").read_text()
    assert summary["lifetime"] is None

    faster = tmp_path / "faster.toml"
    faster.write_text("[agent]\nlearning_rate = 0.005\n")
    result = _invoke([*SMALL, "--config", str(faster), "--env-steps", "300", "--resume",
                      str(out / "checkpoint"), "--out", str(tmp_path / "faster")])
    assert result.exit_code == 0, result.output
    assert "applying learning_rate=0.005 (the checkpoint trained with 0.001)" in result.output

    other = tmp_path / "other.toml"
    other.write_text("[agent]\nmemory_size = 500\n")
    result = _invoke([*SMALL, "--config", str(other), "--resume", str(out / "checkpoint"),
                      "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "from another configuration" in result.output


def test_sequential_variant(tmp_path):
    out = tmp_path / "seq"
    result = _invoke([*SMALL, "--sequential", "--episodes", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    [(status, n_episodes, total_steps, n_step_rows)] = _run_rows(f"sqlite:///{out}/rsc.sqlite")
    assert (status, n_episodes) == ("completed", 2) and n_step_rows == total_steps
    assert "sequential trainer, 1 env" in (out / "report.md").read_text()

    quiet = tmp_path / "seq-episodes-only"
    result = _invoke([*SMALL, "--sequential", "--episodes", "2", "--no-log-steps",
                      "--out", str(quiet)])
    assert result.exit_code == 0, result.output
    [(status, n_episodes, _, n_step_rows)] = _run_rows(f"sqlite:///{quiet}/rsc.sqlite")
    assert (status, n_episodes, n_step_rows) == ("completed", 2, 0)
    assert "(episode logging included)" in (quiet / "report.md").read_text()


def test_learning_option_flags_reach_the_run(tmp_path):
    out = tmp_path / "opts"
    result = _invoke([*SMALL, "--sequential", "--env-steps", "300", "--epsilon-schedule",
                      "linear", "--double-q", "--td-error-loss-fn", "huber",
                      "--observe-position", "--trade-penalty-mode", "per_trade",
                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    settings = json.loads((out / "summary.json").read_text())["settings"]
    assert {k: settings["agent"][k] for k in ("epsilon_schedule", "double_q",
                                              "td_error_loss_fn", "epsilon_total_steps")} == {
        "epsilon_schedule": "linear", "double_q": True, "td_error_loss_fn": "huber",
        "epsilon_total_steps": 300}
    assert settings["env"]["observe_position"] is True
    assert settings["env"]["trade_penalty_mode"] == "per_trade"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--data", "missing.csv"], "no such file"),
        (["--start", "2016-01-01", "--end", "2015-01-01"], "is after end"),
        (["--val-start", "2014-06-01"], "validation period must start after"),
        (["--db", "postgresql+psycopg://u:secret@127.0.0.1:1/x"], "127.0.0.1:1"),
        (["--config", "CONFIG"], "unknown setting 'learning_rat'"),
        (["--episodes", "0"], "--episodes: Input should be greater than or equal to 1"),
        (["--lr", "-1"], "--lr: Input should be greater than 0"),
        (["--data", "DIR"], "is a directory"),
        (["--db", "foo://x"], "cannot use database URL foo://x"),
        (["--db", "mysql://u@127.0.0.1/x"], "cannot use database URL mysql://u@127.0.0.1/x"),
        (["--epsilon-schedule", "cosine"], "--epsilon-schedule: Input should be"),
        (["--trade-penalty-mode", "foo"], "trade_penalty_mode='foo'"),
    ],
)
def test_user_errors_are_one_clear_message(tmp_path, args, needle):
    cfg = tmp_path / "c.toml"
    cfg.write_text("learning_rat = 0.1\n")
    args = [str(cfg) if a == "CONFIG" else str(tmp_path) if a == "DIR" else a for a in args]
    result = _invoke([*SMALL, "--sequential", *args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert needle in result.output and "Traceback" not in result.output
    assert "secret" not in result.output
    assert not (tmp_path / "o").exists()  # no empty run directory left behind


def test_bad_csv_is_named(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,1,2,5\n2020-01-02,1,2,1,2,5\n")
    result = _invoke(["--data", str(bad), "--sequential", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and str(bad) in result.output and "duplicate" in result.output


def test_ctrl_c_ends_run_interrupted_with_finished_episodes_intact(tmp_path):
    """A real rsc-train process gets SIGINT after its first logged episode."""
    out = tmp_path / "int"
    url = f"sqlite:///{out}/rsc.sqlite"
    cmd = [sys.executable, "-m", "rsc_policy.cli.train", *SMALL[:4], "--sequential",
           "--env-steps", "1000000", "--out", str(out)]
    log = tmp_path / "train.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT,
                                env={**os.environ, "RSC_PROGRESS": "0"})
    deadline = time.monotonic() + 180
    try:
        while True:  # poll the database until an episode is logged (or the deadline)
            if time.monotonic() > deadline:
                pytest.fail(f"no episode logged within 180 s:\n{log.read_text()}")
            try:
                proc.wait(timeout=0.2)
                pytest.fail(f"rsc-train ended early:\n{log.read_text()}")
            except subprocess.TimeoutExpired:
                pass
            if (out / "rsc.sqlite").exists():
                try:
                    rows = _run_rows(url)
                except Exception:  # schema being created right now
                    rows = []
                if rows and rows[0][1] >= 1:
                    break
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    [(status, n_episodes, total_steps, n_step_rows)] = _run_rows(url)
    assert status == "interrupted" and n_episodes >= 1 and n_step_rows == total_steps
