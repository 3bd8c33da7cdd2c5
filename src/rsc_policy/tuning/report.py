"""The sweep report: ranking table, parameter-vs-metric plots, the best configuration's
test-period equity against buy-and-hold, and the verdict with its interval over seeds."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval of the mean (NaN with fewer than two values)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean() - half), float(v.mean() + half)


def test_period_verdict(per_seed: Sequence[Mapping[str, Any]], metric: str = "sharpe"
                 ) -> dict[str, Any]:
    """Does the retrained best configuration beat buy-and-hold's ``metric`` on the test
    period? ``yes`` only if the whole 95 % t interval of (agent - buy-and-hold) over seeds
    is above 0."""
    agent = [float(r["rows"]["agent"][metric]) for r in per_seed]
    bh = float(per_seed[0]["rows"]["buy and hold"][metric])
    diff = [a - bh for a in agent]
    low, high = t_interval(diff)
    beats = bool(math.isfinite(low) and low > 0)
    period = per_seed[0]["period"]
    interval = (f"95 % t interval over {len(agent)} seeds {low:+.2f} to {high:+.2f}"
                if math.isfinite(low) else "one seed: no interval")
    text = (f"**Beats buy-and-hold's {metric.capitalize()} on the test period "
            f"({period[0]} to {period[1]}): {'yes' if beats else 'no'}.** The best "
            f"configuration, retrained on everything before the test period, has mean "
            f"{metric} {np.mean(agent):.2f} against buy-and-hold's {bh:.2f}: difference "
            f"{np.mean(diff):+.2f} ({interval}).")
    # position entries of each seed's test episode (``entries``; 0: it stayed flat, and a
    # policy that never holds a position measures no edge at all)
    idle = sum(1 for r in per_seed if r.get("entries") == 0)
    if idle:
        text += (f" In {idle} of {len(agent)} seeds the retrained policy never opened a "
                 f"position on the test period: it stayed flat, so its {metric} says nothing "
                 f"about an edge.")
    return {"metric": metric, "flat_seeds": idle, "period": list(period), "agent": agent,
            "buy_and_hold": bh,
            "difference_mean": float(np.mean(diff)), "difference_ci95": [low, high],
            "beats_buy_and_hold": beats, "seeds": [r["seed"] for r in per_seed],
            "agent_return_mean": float(np.mean([r["rows"]["agent"]["total_return"]
                                                for r in per_seed])),
            "buy_and_hold_return": float(per_seed[0]["rows"]["buy and hold"]["total_return"]),
            "fee_bp": per_seed[0]["fee_bp"], "text": text}


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else f"{v:.4g}"
    return str(v)


def plot_params(path: Path, rows: Sequence[Mapping[str, Any]], space: Mapping[str, Any],
                metric: str) -> Path | None:
    """One scatter per searched parameter: its value against the trial's metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    names = [n for n, p in space["params"].items() if p["kind"] != "fixed"]
    rows = [r for r in rows if r["metric_value"] is not None]
    if not names or not rows:
        return None
    cols = min(3, len(names))
    nrows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.3 * nrows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        for status, color in (("completed", "tab:blue"), ("stopped", "tab:gray")):
            pts = [(r["params"].get(name), r["metric_value"]) for r in rows
                   if r["status"] == status]
            if pts:
                x, y = zip(*pts, strict=True)
                labels = [str(v) for v in x]
                xs = x if all(isinstance(v, int | float) for v in x) else labels
                ax.scatter(xs, y, color=color, s=24, label=status)
        if space["params"][name].get("log"):
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(name)
        ax.set_ylabel(f"validation {metric}")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("Parameters against the walk-forward validation metric (grey: stopped early)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def planted_by_trial(out: Path) -> dict[str, dict[str, float]]:
    """Each trial's planted-series scores (``planted_*`` of its last result with them) from
    ``out/metrics.jsonl``, the sweep's record of every trial result."""
    path = out / "metrics.jsonl"
    found: dict[str, dict[str, float]] = {}
    if not path.exists():
        return found
    for line in path.read_text().splitlines():
        row = json.loads(line)
        scores = {k: v for k, v in row.items() if k.startswith("planted_")}
        if scores:
            found[row["trial_id"]] = scores
    return found


def trained_env_steps(out: Path, rows: Sequence[Mapping[str, Any]]
                      ) -> tuple[int, int, dict[str, dict[str, float]]]:
    """The sweep's training env steps: on the folds (every trial row), in the trials' planted
    checks, and the planted scores by trial they were read from (:func:`planted_by_trial`)."""
    planted = planted_by_trial(out)
    folds = int(sum(r["env_steps"] or 0 for r in rows))
    return folds, int(sum(v.get("planted_env_steps", 0) for v in planted.values())), planted


def _ranking(rows: Sequence[Mapping[str, Any]], settings: Mapping[str, Any],
             searched: Sequence[str], planted: Mapping[str, Mapping[str, float]] | None = None
             ) -> str:
    sign = -1.0 if settings["mode"] == "max" else 1.0
    # trials that ran every fold first (a stopped trial's mean is over fewer folds)
    ranked = sorted(rows, key=lambda r: (r["metric_value"] is None, -r["folds_done"],
                                         sign * (r["metric_value"] or 0.0)))
    head = ["rank", "trial", "status", f"validation {settings['metric']}", "buy-and-hold",
            "percentile among random policies", "folds", "collapsed runs", "env steps",
            *(["planted: fraction of the oracle"] if planted is not None else []), *searched]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, r in enumerate(ranked, 1):
        bh = [f["runs"][0].get("buy_and_hold") for f in r["fold_metrics"] or []]
        bh_mean = float(np.mean(bh)) if bh and None not in bh else None
        runs = [run for f in r["fold_metrics"] or [] for run in f["runs"]]
        collapsed = sum(run.get("collapse") is not None for run in runs)
        pct = [run["random_percentile"] for run in runs
               if run.get("random_percentile") is not None]
        cells = [str(i), r["trial_id"], r["status"], _fmt(r["metric_value"]), _fmt(bh_mean),
                 f"{np.mean(pct):.0f}" if pct else "n/a", str(r["folds_done"]),
                 f"{collapsed}/{len(runs)}", f"{r['env_steps']:,}",
                 *([_planted_cell(planted.get(r["trial_id"]))] if planted is not None else []),
                 *(_fmt(r["params"].get(n)) for n in searched)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _planted_cell(scores: Mapping[str, float] | None) -> str:
    if not scores:
        return "n/a"
    cell = f"{scores['planted_fraction']:.0%}"
    if scores.get("planted_collapsed"):
        cell += f" ({scores['planted_collapsed']:.0f} collapsed)"
    return cell


def _test_section(out: Path, final: Mapping[str, Any]) -> list[str]:
    from rsc_policy.evaluation.benchmarks import COLUMNS, format_figure
    from rsc_policy.plots import plot_equity

    per_seed, verdict = final["per_seed"], final["verdict"]
    first = per_seed[0]
    rows = {f"agent (seed {r['seed']})": r["rows"]["agent"] for r in per_seed}
    rows.update({k: v for k, v in first["rows"].items() if k != "agent"})
    n = first["n_random"]
    for stat, label in (("mean", "mean"), ("p5", "5th pct"), ("p95", "95th pct")):
        rows[f"random ({n} seeds, {label})"] = first["random"][stat]
    lines = ["| policy | " + " | ".join(lbl for _, lbl, _ in COLUMNS) + " |",
             "|---|" + "---:|" * len(COLUMNS)]
    for name, fig in rows.items():
        lines.append(f"| {name} | " + " | ".join(format_figure(f, fig[k]) for k, _, f in COLUMNS)
                     + " |")
    curves = {f"agent seed {r['seed']}": r["agent_curve"] for r in per_seed}
    curves["buy and hold (whole balance)"] = first["buy_and_hold_curve"]
    plot_equity(out / "test_equity.png", curves,
                f"Best configuration on the test period {first['period'][0]} to "
                f"{first['period'][1]}")
    fee = verdict["fee_bp"]
    warn = [f"**Warning: the fee of {fee:g} bp per trade is below 1 bp**, far cheaper than "
            "most real trading."] if fee < 1 else []
    return ["## Test period (seen once, after the sweep)", "",
            f"Best trial `{verdict['best_trial_id']}` (validation {verdict['validation_metric']}"
            f" {verdict['validation_value']:.3f}), parameters: "
            + ", ".join(f"`{k}={_fmt(v)}`" for k, v in verdict["params"].items()), "",
            "\n".join(lines), "", *warn, "", verdict["text"], "",
            "![test-period equity](test_equity.png)", ""]


def _trial_span(rows: Sequence[Mapping[str, Any]]) -> float:
    """Seconds from the first trial's start to the last trial's end."""
    starts = [r["started_at"] for r in rows if r.get("started_at")]
    ends = [r["finished_at"] for r in rows if r.get("finished_at")]
    if not starts or not ends:
        return float("nan")
    return (max(ends) - min(starts)).total_seconds()


def write_report(out: Path, settings: Mapping[str, Any], ctx: Mapping[str, Any],
                 rows: Sequence[Mapping[str, Any]], final: Mapping[str, Any] | None, *,
                 wall_s: float, tuning_s: float) -> Path:
    """Write ``report.md`` (and its PNGs) into the sweep directory ``out``."""
    searched = [n for n, p in settings["space"]["params"].items() if p["kind"] != "fixed"]
    folds_steps, planted_steps, planted = trained_env_steps(out, rows)
    steps = folds_steps + planted_steps
    span = _trial_span(rows)
    folds = ", ".join(f"{f[2]}..{f[3]}" for f in ctx["folds"])
    lines = [f"# rsc-tune sweep `{settings['sweep_id']}`", "",
             f"Data `{settings['data']}`; {settings['samples']} samples, "
             f"{settings['scheduler']} scheduler, {settings['search']} search, "
             f"{settings['max_concurrent']} concurrent trials. Each trial: "
             f"{len(ctx['folds'])} walk-forward folds (train {settings['train_years']:g} y, "
             f"validate {settings['validation_years']:g} y, step {settings['step_years']:g} y;"
             f" validation windows {folds}) x {len(ctx['seeds'])} seeds x "
             f"{ctx['episodes']} episodes, the {len(ctx['folds']) * len(ctx['seeds'])} "
             "(fold, seed) trainings as one population of StrategyAgentAlgo; metric: mean "
             f"annualised validation {settings['metric']} over folds x seeds, after each "
             f"training episode (the trials' time axis). The test period "
             f"{ctx['test'][0]} to {ctx['test'][1]} is in no fold.", "",
             f"Wall time {wall_s:.0f} s (Ray Tune {tuning_s:.0f} s; first trial start to last "
             f"trial end {span:.0f} s); {steps:,} training env steps in trials"
             + (f" ({folds_steps:,} on the folds, {planted_steps:,} in planted checks)"
                if planted_steps else "") + ": "
             f"**{steps / max(tuning_s, 1e-9):,.0f} env steps/s** over the Tune run "
             f"(`summary.json`; {steps / max(span, 1e-9):,.0f} over the trials' span; "
             "training steps only, validation episodes not counted).", "",
             "## Ranking (walk-forward validation)", "",
             _ranking(rows, settings, searched, planted if settings.get("planted") else None),
             "",
             "Percentile among random policies: the runs' mean percentile of the metric among "
             "100 uniformly random policies on the same validation window with the trial's "
             "env settings (drawn once per sweep, or once per process for a trial that "
             "changes the sizing, stop-loss, fee or window; 50 is what a random policy "
             "gets).", "",
             *([f"Planted: each trial that ran all its episodes also trained its configuration "
                f"on the planted series {', '.join(settings['planted'])} (rsc-check "
                f"learnability, seed 0, {settings.get('planted_env_steps', 20_000):,} env "
                "steps); the mean fraction of the oracle's held-out Sharpe it reached on the "
                "series with an edge (n/a: stopped early). One seed per series: a screen "
                "for configurations that learn nothing, not a measure of how much they learn "
                "(one seed's fraction moves by tens of points; `rsc-check learnability "
                "--seeds 30` measures that).", ""]
               if settings.get("planted") else [])]
    if settings["scheduler"] == "pbt":
        lines += ["With PBT a trial that exploited another continues from the donor's folds: "
                  "its metric mixes the configurations it ran under; the parameters shown "
                  "are its last ones.", ""]
    if plot_params(out / "params.png", rows, settings["space"], settings["metric"]):
        lines += ["![parameters against the metric](params.png)", ""]
    if final is not None:
        lines += _test_section(out, final)
    else:
        lines += ["**Sweep not finished** (interrupted): no test-period score yet; continue "
                  f"with `rsc-tune --resume {out}`.", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
