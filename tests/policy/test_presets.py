"""Presets: team is today's defaults; recommended sets its values; file and flags override."""

from __future__ import annotations

import pytest

from rsc_policy.presets import PRESETS, preset_params
from rsc_policy.settings import SettingsError, TrainSettings, load_settings


def test_team_preset_is_exactly_the_defaults() -> None:
    assert preset_params("team") == ({}, {})
    team = load_settings(None, {"preset": "team"}).to_dict()
    assert team == load_settings(None, {}).to_dict() == TrainSettings().to_dict()
    assert team["preset"] == "team"


def test_recommended_preset_then_file_then_flags(tmp_path) -> None:
    agent, env = preset_params("recommended")
    rec = load_settings(None, {"preset": "recommended"})
    for key, value in agent.items():
        assert getattr(rec.agent, key) == value, key
    for key, value in env.items():
        assert getattr(rec.env, key) == value, key
    assert rec.preset == "recommended"
    # The preset named in a settings file applies; the file's own values beat the preset's,
    # flags beat both.
    cfg = tmp_path / "s.toml"
    cfg.write_text('preset = "recommended"\n[env]\ntrade_penalty_mode = "cumulative"\n')
    s = load_settings(cfg, {"observe_position": False})
    assert s.preset == "recommended" and s.env.trade_penalty_mode == "cumulative"
    assert s.env.observe_position is False
    for key, value in agent.items():
        assert getattr(s.agent, key) == value, key
    # The flag's preset beats the file's.
    assert load_settings(cfg, {"preset": "team"}).agent == TrainSettings().agent


def test_unknown_preset_is_a_settings_error(tmp_path) -> None:
    with pytest.raises(SettingsError, match="unknown preset 'fast'; presets: team, recommended"):
        load_settings(None, {"preset": "fast"})
    cfg = tmp_path / "s.toml"
    cfg.write_text("preset = 3\n")
    with pytest.raises(SettingsError, match="unknown preset"):
        load_settings(cfg, {})


def test_strategy_agent_config_preset() -> None:
    from rsc_policy import StrategyAgentConfig

    agent, env = preset_params("recommended")
    cfg = StrategyAgentConfig().environment(env_config={"observe_position": False}).preset(
        "recommended")
    for key, value in agent.items():
        assert getattr(cfg, key) == value, key
    # env_config keys already set win over the preset's.
    assert cfg.env_config == {**env, "observe_position": False}
    team = StrategyAgentConfig().preset("team")
    assert team.epsilon_schedule == StrategyAgentConfig().epsilon_schedule
    with pytest.raises(ValueError, match="unknown preset"):
        StrategyAgentConfig().preset("nope")
    assert set(PRESETS) == {"team", "recommended"}


def test_walk_forward_takes_a_preset_and_a_fee(tmp_path) -> None:
    from pathlib import Path

    from typer.testing import CliRunner

    from rsc_policy.cli.bench import app

    data = str(Path(__file__).resolve().parents[1] / "data" / "googl_daily_2009_2018.csv")
    args = ["walk-forward", "--data", data, "--train-years", "1", "--validation-years", "1",
            "--step-years", "10", "--test-years", "1", "--seeds", "0", "--episodes", "1",
            "--out", str(tmp_path)]
    bad = CliRunner().invoke(app, [*args, "--preset", "magic"])
    assert bad.exit_code == 2 and "unknown preset 'magic'" in bad.output
    ok = CliRunner().invoke(app, [*args, "--preset", "recommended", "--fee-percent", "0.1"])
    assert ok.exit_code == 0, ok.output
    assert "preset recommended, fee 10 bp" in (tmp_path / "walkforward.md").read_text()


def test_walk_forward_takes_a_settings_file_and_set_overrides(tmp_path) -> None:
    import json
    from pathlib import Path

    from typer.testing import CliRunner

    from rsc_policy.cli.bench import app

    data = str(Path(__file__).resolve().parents[1] / "data" / "googl_daily_2009_2018.csv")
    args = ["walk-forward", "--data", data, "--train-years", "1", "--validation-years", "1",
            "--step-years", "10", "--test-years", "1", "--seeds", "0", "--episodes", "1"]
    cfg = tmp_path / "best.toml"
    cfg.write_text('preset = "recommended"\n[agent]\ngamma = 0.8\n[env]\nwindow_size = 10\n')
    bad = CliRunner().invoke(app, [*args, "--config", str(cfg), "--set", "gamma",
                                   "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "--set 'gamma': expected KEY=VALUE" in bad.output
    out = tmp_path / "ok"
    ok = CliRunner().invoke(app, [*args, "--config", str(cfg), "--set", "risk_fraction=0.5",
                                  "--label", "rsc-tune best", "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    # the file's preset applies (no --preset given); the table's title names the label
    assert "rsc-tune best, fee 0.1 bp" in (out / "walkforward.md").read_text()
    written = json.loads((out / "walkforward.json").read_text())
    env, agent = written["settings"]["env"], written["settings"]["agent"]
    assert written["settings"]["preset"] == "recommended"
    assert agent["gamma"] == 0.8 and agent["memory_size"] == 20_000
    assert env["window_size"] == 10 and env["risk_fraction"] == 0.5
    assert env["trade_penalty_mode"] == "per_trade"
