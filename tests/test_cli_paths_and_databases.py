"""User mistakes about files, directories and databases: one ``error:`` line, exit 2, no
traceback, nothing left behind (rsc-train and rsc-tune)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rsc_cli.errors import UserError
from rsc_policy.cli.train import app as train_app
from rsc_policy.cli.tune import app as tune_app

SMALL = ["--start", "2014-01-01", "--end", "2014-12-31", "--val-start", "2015-01-01",
         "--val-end", "2015-06-30", "--sequential", "--env-steps", "300"]  # fmt: skip
TINY = """
[sweep]
samples = 1
seeds = 1
episodes = 1
train_years = 1.0
validation_years = 0.5
step_years = 9.0
test_years = 2.0

[agent]
lr = {low = 1e-4, high = 3e-3, log = true}
"""


def _invoke(app, args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def _one_error_line(result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("error: "), result.output
    assert "Traceback" not in result.output
    assert all(n in lines[-1] for n in needles), result.output
    return lines[-1]


def _read_only_dir(tmp_path: Path) -> Path:
    """A directory nobody may create entries in (root ignores file modes: use /sys)."""
    if os.geteuid() == 0:
        return Path("/sys/rsc-test-out")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    return ro / "out"


@pytest.fixture
def no_ray(monkeypatch):
    """Starting Ray ends the command with a recognisable user error instead."""
    import rsc_policy.cli.train_job as train_job
    import rsc_policy.common as common

    def refuse(*_a, **_k):
        raise UserError("RAY-WOULD-START")

    monkeypatch.setattr(common, "start_ray", refuse)
    monkeypatch.setattr(train_job, "start_ray", refuse)


def test_settings_file_of_random_bytes(tmp_path, no_ray):
    cfg = tmp_path / "settings.toml"
    cfg.write_bytes(bytes(range(256)) * 4)
    _one_error_line(_invoke(train_app, ["--config", cfg, "--out", tmp_path / "o"]),
                    str(cfg), "is not a text file")
    assert not (tmp_path / "o").exists()
    space = tmp_path / "space.toml"
    space.write_bytes(b"\xff\xfe\x00garbage\x9c")
    _one_error_line(_invoke(tune_app, [space, "--out", tmp_path / "s"]), "is not a text file")


def test_train_out_read_only_or_a_file(tmp_path, no_ray):
    ro = _read_only_dir(tmp_path)
    _one_error_line(_invoke(train_app, [*SMALL, "--out", ro]), f"--out {ro}: cannot write")
    file = tmp_path / "a-file"
    file.write_text("x")
    _one_error_line(_invoke(train_app, [*SMALL, "--out", file]), "is a file, not a directory")
    assert file.read_text() == "x"


def test_train_out_of_an_earlier_run_is_refused(tmp_path):
    out = tmp_path / "run"
    result = _invoke(train_app, [*SMALL, "--out", out])
    assert result.exit_code == 0, result.output
    before = (out / "metrics.jsonl").read_text()
    _one_error_line(_invoke(train_app, [*SMALL, "--out", out]),
                    "already holds files", "each run needs its own directory")
    assert (out / "metrics.jsonl").read_text() == before  # nothing mixed in
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _invoke(train_app, [*SMALL, "--out", empty]).exit_code == 0  # an empty one is fine


@pytest.fixture
def space(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def test_tune_database_mistakes_leave_no_sweep_directory(tmp_path, space, no_ray):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(os.urandom(4096))
    from rsc_db import RunLogger

    ro = tmp_path / "ro.sqlite"
    RunLogger(f"sqlite:///{ro}").start().finish()
    ro.chmod(0o444)
    cases = [
        (f"sqlite:///{junk}", "file is not a database"),
        (f"sqlite:///file:{ro}?mode=ro&uri=true", "readonly"),
        ("postgresql+psycopg://u:secret@127.0.0.1:1/x", "cannot connect to database"),
    ]
    for url, needle in cases:
        out = tmp_path / "sweep"
        line = _one_error_line(_invoke(tune_app, [space, "--db", url, "--out", out]), needle)
        assert "secret" not in line
        assert not out.exists(), url  # no empty sweep directory


def test_tune_out_read_only(tmp_path, space, no_ray):
    ro = _read_only_dir(tmp_path)
    _one_error_line(_invoke(tune_app, [space, "--out", ro]), f"--out {ro}: cannot write")


def test_tune_resume_from_another_working_directory(tmp_path, space, no_ray, monkeypatch):
    first, other = tmp_path / "first", tmp_path / "elsewhere"
    first.mkdir()
    other.mkdir()
    (first / "tiny.toml").write_text(TINY)
    monkeypatch.chdir(first)
    # the sweep starts (sweep.json written, database row) and stops where Ray would start
    _one_error_line(_invoke(tune_app, ["tiny.toml", "--out", "runs/sw"]), "RAY-WOULD-START")
    monkeypatch.chdir(other)
    _one_error_line(_invoke(tune_app, ["--resume", first / "runs" / "sw"]), "RAY-WOULD-START")


@pytest.mark.postgres
def test_tune_real_postgresql_refusing_leaves_no_sweep_directory(tmp_path, space, no_ray):
    url = os.environ.get("RSC_TEST_PG_URL")
    if not url:
        pytest.skip("no PostgreSQL (scripts/pg-test-server.sh)")
    from sqlalchemy.engine import make_url

    missing = make_url(url).set(database="rsc_no_such_db").render_as_string(hide_password=False)
    out = tmp_path / "sweep"
    _one_error_line(_invoke(tune_app, [space, "--db", missing, "--out", out]),
                    "cannot connect to database", "rsc_no_such_db")
    assert not out.exists()
