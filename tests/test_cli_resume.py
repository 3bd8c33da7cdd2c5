"""``rsc-train --resume`` checks the whole checkpoint before Ray starts or a run row is
written, and is refused where it cannot be honoured (the sequential trainer)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rsc_policy.cli import train_job
from rsc_policy.cli.train import app

SMALL = ["--start", "2014-01-01", "--end", "2014-12-31", "--val-start", "2015-01-01",
         "--val-end", "2015-06-30", "--num-env-runners", "1", "--envs-per-runner", "2"]  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint(ray_local, tmp_path_factory) -> Path:
    """A real checkpoint of rsc-train's configuration (one iteration, the learner local)."""
    from rsc_env import TradingEnv
    from rsc_policy import StrategyAgentConfig
    from rsc_policy.common import load_periods
    from rsc_policy.settings import load_settings

    settings = load_settings(None, {"start": "2014-01-01", "end": "2014-12-31"})
    train_cfg, _ = load_periods(settings.data, settings.start, settings.end, "2015-01-01",
                                "2015-06-30", settings.env.model_dump())
    algo = (StrategyAgentConfig().environment(TradingEnv, env_config=train_cfg)
            .env_runners(num_env_runners=0, num_envs_per_env_runner=2)
            .training(exact=False, **settings.agent.model_dump())
            .debugging(seed=0)).build_algo()
    try:
        algo.train()
        run_dir = tmp_path_factory.mktemp("ckpt-run")
        return train_job.save_checkpoint(algo, run_dir)
    finally:
        algo.stop()


@pytest.fixture
def no_ray(monkeypatch):
    """Fail the test if the job gets as far as starting Ray."""
    def refuse(address):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(train_job, "start_ray", refuse)


def _resume(tmp_path: Path, ckpt: Path, *extra: str):
    db = tmp_path / "db.sqlite"
    result = CliRunner().invoke(app, [*SMALL, *extra, "--resume", str(ckpt), "--db",
                                      f"sqlite:///{db}", "--out", str(tmp_path / "out")],
                                catch_exceptions=False)
    assert not (tmp_path / "out").exists() and not db.exists()  # no run dir, no run row
    return result


def _one_error_line(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert all(n in lines[0] for n in needles), result.output


def test_the_fixture_checkpoint_is_complete(checkpoint):
    from rsc_policy.rllib.checkpoint import validate_checkpoint

    weights = validate_checkpoint(checkpoint)
    assert weights["q.0.weight"].shape[1] == 102


def test_missing_learner_directory_is_refused_before_ray(checkpoint, tmp_path, no_ray):
    ckpt = tmp_path / "checkpoint"
    shutil.copytree(checkpoint, ckpt)
    shutil.rmtree(ckpt / "learner_group" / "learner")
    _one_error_line(_resume(tmp_path, ckpt), "learner_group/learner/", "is missing",
                    "fresh weights")


def test_missing_network_state_is_refused(checkpoint, tmp_path, no_ray):
    ckpt = tmp_path / "checkpoint"
    shutil.copytree(checkpoint, ckpt)
    (ckpt / "learner_group/learner/rl_module/default_policy/module_state.pkl").unlink()
    _one_error_line(_resume(tmp_path, ckpt), "module_state.pkl", "is missing")


def test_corrupt_learner_state_is_refused_before_ray(checkpoint, tmp_path, no_ray):
    ckpt = tmp_path / "checkpoint"
    shutil.copytree(checkpoint, ckpt)
    state = ckpt / "learner_group" / "learner" / "state.pkl"
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    _one_error_line(_resume(tmp_path, ckpt), "learner_group/learner/state.pkl cannot be read",
                    "damaged")


def test_corrupt_replay_and_run_settings_are_refused(checkpoint, tmp_path, no_ray):
    ckpt = tmp_path / "checkpoint"
    shutil.copytree(checkpoint, ckpt)
    replay = ckpt / "learner_group" / "learner" / "replay" / "state.pkl"
    replay.write_bytes(b"\x80\x05garbage")
    _one_error_line(_resume(tmp_path, ckpt), "replay/state.pkl cannot be read")
    shutil.rmtree(ckpt)
    shutil.copytree(checkpoint, ckpt)
    (ckpt / "rsc_run.json").write_bytes(b"\xff\xfe not json")
    _one_error_line(_resume(tmp_path, ckpt), "rsc_run.json cannot be read")


def test_resume_with_sequential_is_refused(checkpoint, tmp_path, no_ray):
    _one_error_line(_resume(tmp_path, checkpoint, "--sequential"),
                    "--resume cannot be combined with --sequential")
