"""bench/tune_best_settings.py: a finished sweep's best trial becomes a settings file that
load_settings reads back with each parameter in its group; bad input is one error line."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from pathlib import Path

from rsc_policy.settings import load_settings

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "tune_best_settings.py"


def _script():
    spec = importlib.util.spec_from_file_location("tune_best_settings", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _sweep(run_dir: Path, params: dict, groups: dict) -> None:
    run_dir.mkdir()
    (run_dir / "sweep.json").write_text(json.dumps({
        "sweep_id": "s1", "space": {"params": {k: {"group": g} for k, g in groups.items()}}}))
    with sqlite3.connect(run_dir / "rsc.sqlite") as con:
        con.execute("CREATE TABLE sweeps (sweep_id TEXT, verdict TEXT)")
        con.execute("INSERT INTO sweeps VALUES ('s1', ?)", (json.dumps({"params": params}),))


def test_best_trial_becomes_a_settings_file(tmp_path, capsys) -> None:
    mod = _script()
    params = {"gamma": 0.87, "double_q": True, "td_error_loss_fn": "huber",
              "window_size": 10, "observe_position": False, "epsilon_schedule": "linear"}
    groups = {"gamma": "agent", "double_q": "agent", "td_error_loss_fn": "agent",
              "epsilon_schedule": "agent", "window_size": "env", "observe_position": "env"}
    _sweep(tmp_path / "run", params, groups)
    out = tmp_path / "best.toml"
    # a linear schedule needs the walk-forward run's length: refused without it
    assert mod.main([str(tmp_path / "run"), str(out)]) == 2
    assert "error: the best configuration has a linear epsilon" in capsys.readouterr().err
    assert not out.exists()
    assert mod.main([str(tmp_path / "run"), str(out), "--episodes", "10",
                     "--train-bars", "1200"]) == 0
    s = load_settings(out, {})
    assert s.agent.gamma == 0.87 and s.agent.double_q is True
    assert s.agent.td_error_loss_fn == "huber" and s.agent.epsilon_total_steps == 12_000
    assert s.env.window_size == 10 and s.env.observe_position is False
    assert s.preset == "team"


def test_not_a_sweep_directory_is_one_error(tmp_path, capsys) -> None:
    assert _script().main([str(tmp_path), str(tmp_path / "b.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an rsc-tune sweep directory" in err
