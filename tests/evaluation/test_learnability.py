"""rsc-check learnability: verdicts on fixed inputs, the oracle through the env, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from rsc_policy.evaluation import learnability as lc


def test_t_interval_matches_the_textbook() -> None:
    v = [1.0, 2.0, 3.0, 4.0]
    mean, lo, hi = lc.t_interval(v)
    half = stats.t.ppf(0.975, 3) * np.std(v, ddof=1) / 2.0  # sem = s / sqrt(4)
    assert mean == 2.5 and lo == pytest.approx(2.5 - half) and hi == pytest.approx(2.5 + half)
    assert lc.t_interval([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    m, lo1, hi1 = lc.t_interval([3.0])
    assert m == 3.0 and np.isnan(lo1) and np.isnan(hi1)


def test_collapse_detection() -> None:
    assert lc.collapse([100, 0, 0], entries=0) == "no trade"
    assert lc.collapse([0, 100, 0], entries=1) == "constant long"
    assert lc.collapse([0, 0, 7], entries=1) == "constant short"
    assert lc.collapse([50, 50, 0], entries=0) == "no trade"  # longs that never filled
    assert lc.collapse([50, 40, 10], entries=12) is None
    log = {"action": np.array([1, 1, 0, 2], dtype=np.int8),
           "operations": [(0, "ENTRY_LONG", 5, 1.0), (2, "EXIT_LONG", -5, 1.0),
                          (3, "ENTRY_SHORT", -5, 1.0)]}
    assert lc.episode_collapse(log) == ([1, 2, 1], 2, None)


def _verdict(agent: list[float], oracle: float = 10.0, null: bool = False,
             collapsed: dict[int, str] | None = None) -> lc.SeriesVerdict:
    seeds = list(range(len(agent)))
    return lc.SeriesVerdict("x", null, seeds, agent, [oracle] * len(agent),
                            collapsed=collapsed or {})


def test_edge_series_verdicts() -> None:
    good = _verdict([6.0, 5.0, 7.0, 5.5, 6.5])
    assert good.passed and good.fraction == pytest.approx(0.6) and good.significant_edge
    assert not _verdict([4.0, 5.0, 4.5, 4.8, 4.6]).passed  # 47 % of the oracle
    # Enough on average, but one seed never traded: fails.
    assert not _verdict([9.0, 9.0, 9.0, 9.0, 0.0], collapsed={4: "no trade"}).passed


def test_a_verdict_near_the_bar_is_not_firm() -> None:
    # 5 seeds whose mean is 54 % of the oracle but spread widely: a pass, not a firm one
    loose = _verdict([2.0, 9.0, 3.0, 8.0, 5.0])
    mean, lo, hi = loose.interval
    assert loose.fraction_interval == pytest.approx((lo / 10.0, hi / 10.0))
    assert loose.passed and lo / 10.0 < 0.5 <= mean / 10.0 and not loose.firm
    # the same mean with a tight spread is firm, and so is a clear fail
    assert _verdict([5.3, 5.5, 5.4, 5.6, 5.2]).firm
    assert _verdict([1.0, 1.2, 0.9, 1.1, 1.3]).firm
    text = lc.table({"series": [loose.to_dict(), _verdict([5.3, 5.5, 5.4, 5.6, 5.2]).to_dict()]})
    assert "pass (not firm: the interval spans 50%)" in text
    assert text.count("not firm") == 1 and "Not firm: x:" in text and "more --seeds" in text
    assert loose.to_dict()["firm"] is False and len(loose.to_dict()["fraction_ci95"]) == 2
    # one seed has no interval: never firm; the null is judged by its own test
    assert not _verdict([6.0]).firm and np.isnan(_verdict([6.0]).fraction_interval[0])
    assert _verdict([0.8, -0.5, 0.3], oracle=0.0, null=True).firm


def test_null_series_verdicts() -> None:
    noise = _verdict([0.8, -0.5, 0.3, -1.0, 0.4], oracle=0.0, null=True)
    assert not noise.significant_edge and noise.passed and np.isnan(noise.fraction)
    # A consistent "edge" on a random walk is leakage or overfitting: fails.
    leak = _verdict([1.0, 1.2, 0.9, 1.1, 1.3], oracle=0.0, null=True)
    assert leak.significant_edge and not leak.passed
    # Never trading on the null is the right answer: reported, not failed.
    flat = _verdict([0.0] * 5, oracle=0.0, null=True, collapsed={i: "no trade" for i in range(5)})
    assert flat.passed and flat.to_dict()["collapsed"] == {str(i): "no trade" for i in range(5)}


def test_oracle_through_the_env_earns_the_planted_edge() -> None:
    from rsc_env.params import TEAM_TRAINING_PARAMS

    data, _train, val = lc.periods("mean_reversion", 0, 100, 300)
    positions = data.oracle.reindex(val.index).to_numpy()
    cfg = {"df": val, **TEAM_TRAINING_PARAMS, "initial_balance": 100_000.0}
    act = lc.oracle_act(positions)
    oracle = lc.held_out(act, cfg)
    assert oracle["collapse"] is None and oracle["sharpe"] > 4
    flat = lc.held_out(lambda _o, _k: 0, cfg)
    assert flat["collapse"] == "no trade" and flat["sharpe"] == 0.0
    # The env executes step k's action at bar k + 1: one bar late or early earns far less.
    late = lc.held_out(lambda o, k: act(o, k - 1), cfg)
    early = lc.held_out(lambda o, k: act(o, k + 1), cfg)
    assert late["sharpe"] < oracle["sharpe"] / 2 and early["sharpe"] < 0


def test_cli_user_error_and_json(tmp_path, monkeypatch) -> None:
    from rsc_policy.cli.check import app

    runner = CliRunner()
    bad = runner.invoke(app, ["learnability", "--series", "sine,nope"])
    assert bad.exit_code == 2 and "error: --series" in bad.output
    bad = runner.invoke(app, ["learnability", "--preset", "magic"])
    assert bad.exit_code == 2 and "unknown preset 'magic'" in bad.output

    def fake(jobs, on_done=None, threads=None):  # the population seam: always flat
        return [lc.MemberResult(j, lambda _obs: 0, 0, 0.0) for j in jobs]

    monkeypatch.setattr(lc, "train_members", fake)
    out = tmp_path / "check.json"
    res = runner.invoke(app, ["learnability", "--series", "sine,random_walk", "--seeds", "2",
                              "--train-bars", "60", "--val-bars", "60", "--out", str(out)])
    assert res.exit_code == 3, res.output  # the sine's flat seeds collapsed: fail
    data = json.loads(out.read_text())
    sine, null = data["series"]
    assert sine["collapsed"] == {"0": "no trade", "1": "no trade"} and not sine["passed"]
    assert null["null"] and null["passed"] and not data["passed"]
    assert data["settings"]["preset"] == "team"


def test_rsc_train_report_names_a_collapsed_policy() -> None:
    from rsc_policy.plots import collapse_line

    never = {"action": np.zeros(50, dtype=np.int8), "operations": []}
    why, line = collapse_line(never)
    assert why == "no trade" and "**collapsed policy (no trade)**" in line
    mixed = {"action": np.array([1, 0, 2, 0], dtype=np.int8),
             "operations": [(0, "ENTRY_LONG", 1, 1.0), (1, "EXIT_LONG", -1, 1.0),
                            (2, "ENTRY_SHORT", -1, 1.0), (3, "EXIT_SHORT", 1, 1.0)]}
    assert collapse_line(mixed) == (None, "- policy: actions flat/long/short 2/1/1, 2 entries")


def test_recommended_preset_learns_a_sine_and_the_team_rule_does_not() -> None:
    """Small scale (400 training bars, 10,000 env steps, one seed): ~10 s per preset."""
    from rsc_policy.settings import load_settings

    def check(preset: str) -> dict:
        s = load_settings(None, {"preset": preset, "env_steps": 10_000})
        plan = lc.CheckPlan(series=("sine",), seeds=(0,), train_bars=400, val_bars=200,
                            env_steps=10_000, env_params=s.env.model_dump(),
                            agent_params=s.agent.model_dump(exclude={"updates_per_step"}))
        return lc.run_check(plan)["series"][0]

    rec = check("recommended")
    assert rec["passed"] and not rec["collapsed"], rec
    assert rec["agent_sharpe_mean"] >= 0.5 * rec["oracle_sharpe_mean"]
    team = check("team")
    assert team["agent_sharpe_mean"] < 0.25 * team["oracle_sharpe_mean"], team


def test_rsc_tune_trials_score_collapse() -> None:
    from rsc_env.params import TEAM_TRAINING_PARAMS
    from rsc_policy.tuning.trial import score_window

    _data, _train, val = lc.periods("sine", 1, 60, 80)
    cfg = {"df": val, **TEAM_TRAINING_PARAMS, "initial_balance": 100_000.0}
    flat, _ = score_window(lambda _obs: 0, cfg)
    assert flat["collapse"] == "no trade"
    long, _ = score_window(lambda _obs: 1, cfg)
    assert long["collapse"] == "constant long"
