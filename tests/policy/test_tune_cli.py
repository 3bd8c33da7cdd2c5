"""rsc-tune end to end on the bundled data with a tiny space (2 samples, 1 seed, 1 episode,
2 short folds): trials in the database, the report, bad space files refused before Ray
starts, and an interrupted sweep resumed without losing or duplicating a finished trial."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rsc_db.cli import app as db_app
from rsc_db.query import runs_frame
from rsc_db.sweeps import sweeps_frame, trials_frame
from rsc_policy.cli.tune import app as tune_app

TINY = """
[sweep]
samples = 2
seeds = 1
episodes = 1
train_years = 1.0
validation_years = 0.5
step_years = 9.0
test_years = 2.0

[agent]
lr = {low = 1e-4, high = 3e-3, log = true}
target_update_freq = {low = 10, high = 100}

[env]
window_size = {choices = [5, 10]}
"""
N_FOLDS = 2  # 1999-02 + 1.5 y and 2008-02 + 1.5 y fit before the 2017-18 test period


def _invoke(app, args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.mark.parametrize(("text", "needle"), [
    (TINY.replace("lr =", "learnin_rate ="), "agent.learnin_rate: unknown agent parameter"),
    (TINY.replace("low = 10, high = 100", "low = 100, high = 10"),
     "agent.target_update_freq: low (100) must be < high (10)"),
    (TINY.replace("low = 10, high = 100", "low = 10.5, high = 100"),
     "target_update_freq is an integer parameter: low must be an integer"),
    (TINY.replace("[env]", "[env]\ndrawdown_penalty = {low = 0.0, high = 0.1, lg = true}"),
     "env.drawdown_penalty: lg: Extra inputs are not permitted"),
    (TINY.replace("samples = 2", "samples = 0"), "sweep.samples: Input should be greater"),
    (TINY.replace("[agent]", "[agent]\ngamma = {low = 0.5, high = 1.5}"),
     "agent.gamma.high: Input should be less than or equal to 1"),
    ("[agent\nlr = 1", "Expected ']'"),
])
def test_a_bad_space_file_is_one_error_line_before_ray_starts(tmp_path, monkeypatch, text,
                                                               needle):
    import rsc_policy.common as common

    def no_ray(*_a, **_k):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(common, "start_ray", no_ray)
    space = tmp_path / "space.toml"
    space.write_text(text)
    out = tmp_path / "sweep"
    result = _invoke(tune_app, [space, "--out", out])
    assert result.exit_code == 2, result.output
    last = [ln for ln in result.output.splitlines() if ln.strip()][-1]
    assert last.startswith("error: ") and needle in last and str(space) in last, last
    assert "Traceback" not in result.output
    assert not out.exists()


def test_a_missing_space_file_and_a_bad_flag_are_user_errors(tmp_path):
    result = _invoke(tune_app, [tmp_path / "nope.toml", "--out", tmp_path / "o"])
    assert result.exit_code == 2 and "nope.toml does not exist" in result.output
    result = _invoke(tune_app, ["--scheduler", "hyperband", "--out", tmp_path / "o"])
    assert result.exit_code == 2 and "--scheduler 'hyperband'" in result.output
    result = _invoke(tune_app, ["--metric", "beauty", "--out", tmp_path / "o"])
    assert result.exit_code == 2 and "metric 'beauty' is not one of" in result.output
    result = _invoke(tune_app, ["--resume", tmp_path])
    assert result.exit_code == 2 and "not a sweep directory" in result.output
    result = _invoke(tune_app, ["--configs-per-trial", "2", "--out", tmp_path / "o"])
    assert result.exit_code == 2 and "needs --scheduler none and --search random" in \
        result.output and "--scheduler asha" in result.output
    result = _invoke(tune_app, ["--configs-per-trial", "3", "--samples", "4", "--scheduler",
                                "none", "--out", tmp_path / "o"])
    assert result.exit_code == 2 and "samples (4) must be a multiple of configs_per_trial " \
        "(3)" in result.output
    assert not (tmp_path / "o").exists()


def _rows(url: str):
    sweeps = sweeps_frame(url)
    assert len(sweeps) == 1
    return sweeps.iloc[0], trials_frame(url, sweeps.iloc[0]["sweep_id"])


@pytest.mark.slow
def test_two_trial_sweep_logs_both_trials_and_writes_the_report(ray_local, tiny, tmp_path):
    out, url = tmp_path / "sweep", f"sqlite:///{tmp_path / 'db.sqlite'}"
    result = _invoke(tune_app, [tiny, "--out", out, "--db", url])
    assert result.exit_code == 0, result.output
    sweep, trials = _rows(url)
    assert sweep["status"] == "completed" and len(trials) == 2
    assert trials["trial_id"].is_unique
    assert json.loads((out / "summary.json").read_text())["engine"] == "rllib"  # ASHA
    for t in trials.itertuples():
        # every round scores every fold; the tiny space trains one episode (one round)
        assert t.status == "completed" and t.folds_done == N_FOLDS
        assert len(t.fold_metrics) == t.folds_done >= 1 and t.env_steps > 0
        assert set(t.params) == {"learning_rate", "target_update_freq", "window_size"}
        assert 10 <= t.params["target_update_freq"] <= 100
    runs = runs_frame(url).set_index("run_id")
    assert (runs.loc[trials["run_id"], "status"] == "completed").all()
    verdict = sweep["verdict"]
    assert verdict["best_trial_id"] == sweep["best_trial_id"] in set(trials["trial_id"])
    assert runs.loc[verdict["run_id"], "status"] == "completed"
    assert verdict["period"][0] >= "2017-01-01"  # the test period is after every fold
    assert all(f["val_end"] < "2017-01-01" for t in trials.itertuples()
               for f in t.fold_metrics)
    report = (out / "report.md").read_text()
    answer = "yes" if verdict["beats_buy_and_hold"] else "no"
    assert f"Beats buy-and-hold's Sharpe on the test period (2017-01-03 to 2018-12-31): " \
           f"{answer}." in report
    assert all(tid in report for tid in trials["trial_id"])
    # every run of every fold says whether its greedy policy collapsed
    assert "| collapsed runs |" in report
    assert all("collapse" in r for t in trials.itertuples() for f in t.fold_metrics
               for r in f["runs"])
    assert (out / "params.png").stat().st_size > 0 and (out / "test_equity.png").exists()
    # tracking: every trial result as a JSON line, and TensorBoard events per trial
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    for t in trials.itertuples():
        mine = [x for x in lines if x["trial_id"] == t.trial_id]
        assert len(mine) == mine[-1]["episodes_done"] and mine[-1]["score"] == pytest.approx(
            t.metric_value)
    assert len(list(out.rglob("events.out.tfevents*"))) >= 2
    listed = _invoke(db_app, ["sweeps", "--db", url]).output
    assert sweep["sweep_id"] in listed and "completed" in listed
    listed = _invoke(db_app, ["trials", sweep["sweep_id"], "--db", url]).output
    assert all(tid in listed for tid in trials["trial_id"])


@pytest.mark.slow
def test_an_interrupted_sweep_resumes_without_losing_or_duplicating_trials(ray_local, tiny,
                                                                           tmp_path):
    out, url = tmp_path / "sweep", f"sqlite:///{tmp_path / 'db.sqlite'}"
    result = _invoke(tune_app, [tiny, "--out", out, "--db", url, "--max-concurrent", "1",
                                "--scheduler", "none", "--stop-after-trials", "1"])
    assert result.exit_code == 130, result.output
    assert "rsc-tune --resume" in result.output
    sweep, before = _rows(url)
    assert sweep["status"] == "interrupted"
    done = before[before["status"] == "completed"]
    assert len(done) == 1 and (before["status"] != "running").all()
    assert "Sweep not finished" in (out / "report.md").read_text()

    result = _invoke(tune_app, ["--resume", out])
    assert result.exit_code == 0, result.output
    sweep, after = _rows(url)
    assert sweep["status"] == "completed" and sweep["best_trial_id"] is not None
    assert len(after) == 2 and after["trial_id"].is_unique
    assert (after["status"] == "completed").all() and (after["folds_done"] == N_FOLDS).all()
    kept = after.set_index("trial_id").loc[done["trial_id"].iloc[0]]
    # the trial finished before the interrupt was not run again
    assert kept["finished_at"] == done["finished_at"].iloc[0]
    assert kept["metric_value"] == done["metric_value"].iloc[0]
    assert len(runs_frame(url)) == 3  # two trials and the final retraining, no duplicates
    summary = json.loads((out / "summary.json").read_text())
    assert summary["engine"] == "rllib"  # FIFO too: StrategyAgentAlgo, one report per trial
    assert summary["env_steps"] == int(after["env_steps"].sum()) > 0
    assert summary["env_steps_per_s"] == pytest.approx(summary["env_steps"] / summary["wall_s"])


def test_help_is_light_and_the_example_space_is_valid():
    import subprocess
    import sys

    code = ("import sys; from rsc_policy.cli.tune import app; "
            "print(sorted(m for m in ('torch', 'ray', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    from rsc_policy.tuning.space import load_space

    space = load_space(None)  # the built-in example (package data)
    assert space.options.samples >= 2 and len(space.searched) >= 4
    assert {space.params[n].group for n in space.searched} == {"agent", "env"}


@pytest.mark.slow
@pytest.mark.parametrize("flags", [["--search", "optuna"], ["--scheduler", "pbt"]])
def test_optuna_search_and_pbt_run_a_sweep_to_its_verdict(ray_local, tiny, tmp_path, flags):
    out, url = tmp_path / "sweep", f"sqlite:///{tmp_path / 'db.sqlite'}"
    result = _invoke(tune_app, [tiny, "--out", out, "--db", url, *flags])
    assert result.exit_code == 0, result.output
    sweep, trials = _rows(url)
    assert sweep["status"] == "completed" and sweep["settings"][flags[0][2:]] == flags[1]
    assert len(trials) == 2 and trials["status"].isin(["completed", "stopped"]).all()
    assert sweep["verdict"]["best_trial_id"] in set(trials["trial_id"])


def test_the_example_space_searches_the_learnability_options():
    from rsc_policy.tuning.space import load_space

    space = load_space(None)
    wanted = {"trade_penalty_mode": "env", "observe_position": "env", "double_q": "agent",
              "td_error_loss_fn": "agent", "epsilon_schedule": "agent",
              "position_sizing_method": "env", "risk_fraction": "env"}
    for name, group in wanted.items():
        p = space.params[name]
        assert p.group == group and p.kind != "fixed", name
    assert set(space.params["trade_penalty_mode"].choices) == {"cumulative", "per_trade"}
    assert set(space.params["observe_position"].choices) == {False, True}


def test_trials_are_scored_against_the_sweeps_random_policies(tmp_path):
    """The random policies of each validation window are drawn once per sweep; a trial's run
    gets its percentile among them, unless the trial changes the trading settings: then the
    sweep's draws are not its random policies, and it is ranked among its own (drawn with
    its settings, once per process)."""
    from rsc_policy.evaluation.benchmarks import percentile_among, random_draws
    from rsc_policy.tuning.space import load_space
    from rsc_policy.tuning.sweep import build_context
    from rsc_policy.tuning.trial import _result, _score, split_config

    path = tmp_path / "space.toml"
    path.write_text(TINY.replace("[env]\nwindow_size = {choices = [5, 10]}\n",
                                 "[env]\nrisk_fraction = {low = 0.05, high = 0.5}\n"))
    space = load_space(path)
    ctx = build_context(space, {**space.options.model_dump(), "engine": "loop"})
    assert len(ctx["fold_random"]) == len(ctx["folds"]) == N_FOLDS
    k, (_, _, val_start, val_end) = 1, ctx["folds"][1]
    window = {**ctx["base_env"], "start": val_start, "end": val_end}
    assert ctx["fold_random"][k] == random_draws(window)["sharpe"].tolist()

    def always(action):
        return lambda obs: action

    n = len(ctx["folds"]) * len(ctx["seeds"])
    env, _ = split_config({"learning_rate": 1e-3}, ctx)  # the sweep's trading settings
    folds = _score(env, ctx, [always(1)] * n)
    run = folds[k]["runs"][0]
    assert run["random_percentile"] == percentile_among(run["sharpe"], ctx["fold_random"][k])
    assert 0.0 < run["random_percentile"] < 100.0
    assert _result({"folds": folds, "rounds": 1, "env_steps": 1, "train_s": 1.0,
                    "wall_s": 1.0}, ctx)["random_percentile"] == pytest.approx(np.mean(
                        [r["random_percentile"] for f in folds for r in f["runs"]]))
    env, _ = split_config({"risk_fraction": 0.3}, ctx)  # other sizing: other random policies
    own = random_draws({**env, "start": val_start, "end": val_end})["sharpe"]
    assert not np.array_equal(own, ctx["fold_random"][k])
    run = _score(env, ctx, [always(1)] * n)[k]["runs"][0]
    assert run["random_percentile"] == percentile_among(run["sharpe"], own)


@pytest.mark.slow
def test_parity_of_configurations_bundled_in_one_population(ray_local, tiny, tmp_path):
    """``--configs-per-trial 2``: one Tune trial trains both sampled configurations (x folds
    x seeds) as populations; each configuration is its own sweep row, and each of its runs
    scores exactly what the sequential trainer gives for that configuration, fold and seed."""
    from rsc_policy.agent.sequential import train_sequential
    from rsc_policy.tuning.space import load_space
    from rsc_policy.tuning.sweep import build_context
    from rsc_policy.tuning.trial import score_window, split_config

    out, url = tmp_path / "sweep", f"sqlite:///{tmp_path / 'db.sqlite'}"
    result = _invoke(tune_app, [tiny, "--out", out, "--db", url, "--scheduler", "none",
                                "--configs-per-trial", "2"])
    assert result.exit_code == 0, result.output
    sweep, trials = _rows(url)
    assert sweep["status"] == "completed" and len(trials) == 2
    ids = sorted(trials["trial_id"])
    assert ids[0].endswith("-c0") and ids[1] == ids[0][:-1] + "1"  # one Tune trial
    assert trials.iloc[0]["params"] != trials.iloc[1]["params"]  # two draws of the space
    assert json.loads((out / "summary.json").read_text())["env_steps"] == int(
        trials["env_steps"].sum()) > 0
    space = load_space(tiny)
    ctx = build_context(space, {**space.options.model_dump(), "engine": "loop"})
    for t in trials.itertuples():
        assert t.status == "completed" and t.folds_done == N_FOLDS
        env, agent = split_config(t.params, ctx)
        for fold, (train_start, train_end, val_start, val_end) in zip(
                t.fold_metrics, ctx["folds"], strict=True):
            run = fold["runs"][0]
            alone = train_sequential({**env, "start": train_start, "end": train_end},
                                     episodes=1, seed=run["seed"], **agent)
            figures, _ = score_window(alone.agent.greedy,
                                      {**env, "start": val_start, "end": val_end})
            assert run["sharpe"] == pytest.approx(figures["sharpe"], rel=0, abs=0), t.trial_id
            assert run["total_return"] == figures["total_return"]


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["multiplicative", "linear"])
def test_rllib_engine_trial_parity_with_sequential(ray_local, tmp_path, schedule):
    """The RLlib engine (ASHA, PBT) trains a trial's (fold, seed) members in rounds of one
    whole episode each, although the folds differ in length: after E rounds each member
    equals ``train_sequential(episodes=E)`` on its fold bit for bit (with a linear epsilon
    schedule too, whose horizon is each member's own run), as the FIFO loop engine does."""
    from ray.rllib.core import DEFAULT_MODULE_ID

    from rsc_env import TradingEnv
    from rsc_policy.agent.sequential import train_sequential
    from rsc_policy.tuning.space import load_space
    from rsc_policy.tuning.sweep import build_context
    from rsc_policy.tuning.trial import build_population, split_config

    path = tmp_path / "two.toml"
    path.write_text(TINY.replace("episodes = 1", "episodes = 2"))
    space = load_space(path)
    ctx = build_context(space, {**space.options.model_dump(), "engine": "rllib"})
    env, agent = split_config({"learning_rate": 2e-3, "target_update_freq": 30,
                               "window_size": 5}, ctx)
    agent["epsilon_schedule"] = schedule
    lengths = [TradingEnv({**env, "start": f[0], "end": f[1]}).episode_length
               for f in ctx["folds"]]
    assert len(set(lengths)) == len(lengths) > 1
    algo = build_population(env, agent, ctx)
    try:
        steps = [algo.train()["rsc"]["population_env_steps"] for _ in range(ctx["episodes"])]
        weights = np.asarray(algo.learner_group.get_weights()[DEFAULT_MODULE_ID]["params"])
    finally:
        algo.stop()
    assert steps == [sum(lengths) * len(ctx["seeds"])] * ctx["episodes"]
    for k, m in enumerate(ctx["members"]):
        alone = train_sequential({**env, **m["env"]}, episodes=ctx["episodes"],
                                 seed=m["seed"], **agent)
        flat = np.concatenate([v.reshape(-1).numpy() for v in alone.state_dict.values()])
        assert np.array_equal(weights[k], flat), m["name"]


@pytest.mark.slow
def test_each_completed_trial_is_also_scored_on_planted_series(ray_local, tmp_path):
    """``planted = [...]`` in [sweep]: every trial that ran all its episodes also trains its
    configuration on those planted series (rsc-check learnability's code, seed 0); the
    figures are in the trial's results and in the report's ranking, equal to the check run
    directly on the same configuration."""
    from rsc_policy.tuning.report import planted_by_trial
    from rsc_policy.tuning.space import load_space
    from rsc_policy.tuning.sweep import build_context
    from rsc_policy.tuning.trial import planted_score, split_config

    space_file = tmp_path / "planted.toml"
    space_file.write_text(TINY.replace("episodes = 1\n", "episodes = 1\nplanted = "
                                       "[\"sine\", \"random_walk\"]\nplanted_env_steps = 1500\n"))
    out, url = tmp_path / "sweep", f"sqlite:///{tmp_path / 'db.sqlite'}"
    result = _invoke(tune_app, [space_file, "--out", out, "--db", url, "--scheduler", "none"])
    assert result.exit_code == 0, result.output
    _, trials = _rows(url)
    scores = planted_by_trial(out)
    assert set(scores) == set(trials["trial_id"])
    report = (out / "report.md").read_text()
    assert "planted: fraction of the oracle" in report and "sine, random_walk" in report
    space = load_space(space_file)
    ctx = build_context(space, {**space.options.model_dump(), "engine": "loop"})
    t = trials.iloc[0]
    env, agent = split_config(t["params"], ctx)
    direct = planted_score(env, agent, ctx)
    assert set(direct) == {"planted_sine", "planted_random_walk", "planted_fraction",
                           "planted_collapsed", "planted_passed", "planted_env_steps"}
    assert scores[t["trial_id"]] == pytest.approx(direct, rel=0, abs=0, nan_ok=True)
    assert f"{direct['planted_fraction']:.0%}" in report
    # the planted trainings are training env steps of the sweep, counted apart in the summary
    assert direct["planted_env_steps"] == 2 * 1500
    summary = json.loads((out / "summary.json").read_text())
    assert summary["planted_env_steps"] == 2 * 1500 * len(trials)
    assert summary["fold_env_steps"] == trials["env_steps"].sum()
    assert summary["env_steps"] == summary["fold_env_steps"] + summary["planted_env_steps"]


def test_an_unknown_planted_series_is_refused(tmp_path):
    space = tmp_path / "space.toml"
    space.write_text(TINY.replace("episodes = 1\n", "episodes = 1\nplanted = [\"sin\"]\n"))
    result = _invoke(tune_app, [space, "--out", tmp_path / "o"])
    assert result.exit_code == 2 and "planted: unknown series ['sin']" in result.output
    assert not (tmp_path / "o").exists()
