"""``rsc-bench seq-vs-par``: timed comparison of the sequential trainer and the RLlib algorithm.

``rsc-bench seq-vs-par`` trains the sequential loop and ``StrategyAgentAlgo`` in throughput
mode with 1, 2, ... env runners on the same data, settings and env-step budget, evaluates
each trained policy greedily on a held-out period, and writes ``seq_vs_par.json``,
``seq_vs_par.md`` and ``seq_vs_par.png``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from rich.console import Console

from rsc_cli.errors import UserError
from rsc_env import ReferenceTradingEnv, TradingEnv
from rsc_policy.common import start_ray, stop_ray
from rsc_policy.plots import markdown_table, plot_bars
from rsc_policy.settings import AGENT_DEFAULTS, ENV_DEFAULTS

console = Console()

ENV_CLASSES: dict[str, type[gym.Env]] = {"fast": TradingEnv, "reference": ReferenceTradingEnv}
FULL = {"env_steps": 20_000, "runners": "1,2", "start": "2010-01-01", "end": "2014-12-31",
        "val_start": "2015-01-01", "val_end": "2015-12-31"}
QUICK = {"env_steps": 2_000, "runners": "1,2", "start": "2015-01-01", "end": "2015-12-31",
         "val_start": "2016-01-01", "val_end": "2016-12-31"}
STEPS_NOTE = ("env_steps: the target rounded up to whole runner requests (envs_per_runner x "
              "fragment); the sequential run takes exactly that many steps, each RLlib run "
              "stops at the first whole request at or past it (rates use each run's own count)")
WHICH_VIEW = ("Which view to read: this one (`seq-vs-par`) is the speed of ONE agent, whose "
              "serial learner bounds it, so read it to see whether parallel sampling pays for "
              "a single expensive env; `rsc-bench sweep` is the job users run (many agents "
              "for tuning, as one population) and the view where parallelism pays.")
SEQ_SPLIT_NOTE = ("sequential: sample_s = env reset/step time; learn_step_s = the rest of the "
                  "loop (action selection, replay, learning steps); no weight sync")
PAR_SPLIT_NOTE = ("RLlib throughput mode, driver view: sample_s = waiting for runner samples, "
                  "learn_step_s = learning steps, sync_s = sending weights + sample requests, "
                  "other_s = the rest of the wall time (iteration bookkeeping, the learning "
                  "steps owed after the last fragment)")


@dataclass
class BenchSettings:
    """Everything one ``seq-vs-par`` invocation runs with (recorded in the JSON)."""

    env: str
    data: str
    start: str
    end: str
    val_start: str
    val_end: str
    target_env_steps: int
    runners: list[int]
    envs_per_runner: int
    fragment: int
    updates_per_step: float
    seed: int
    quick: bool
    env_params: dict[str, Any] = field(default_factory=lambda: dict(ENV_DEFAULTS))
    agent_params: dict[str, Any] = field(default_factory=lambda: dict(AGENT_DEFAULTS))

    def __post_init__(self) -> None:
        self.agent_params["updates_per_step"] = self.updates_per_step


@dataclass
class BenchRun:
    """One configuration's measurements and held-out evaluation."""

    label: str
    mode: str
    num_env_runners: int
    envs_per_runner: int
    env_steps: int
    learning_steps: int
    wall_time_s: float
    build_time_s: float
    env_steps_per_s: float
    updates_per_s: float
    time_split_s: dict[str, float]
    evaluation: dict[str, Any]
    speedup: float = 1.0


# --------------------------------------------------------------------------- input
def parse_runners(text: str) -> list[int]:
    """``"1,2,4"`` -> ``[1, 2, 4]``; every count must be an integer >= 1."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--runners {text!r}: give comma-separated integers, e.g. 1,2,4") from None
    if not counts:
        raise UserError("--runners: give at least one runner count")
    bad = [n for n in counts if n < 1]
    if bad:
        raise UserError(f"--runners {text!r}: runner counts must be >= 1, got {bad}")
    return list(dict.fromkeys(counts))


def check_settings(s: BenchSettings) -> None:
    """Raise :class:`UserError` for the first invalid setting."""
    if s.env not in ENV_CLASSES:
        raise UserError(f"--env {s.env!r}: choose one of {sorted(ENV_CLASSES)}")
    for name in ("target_env_steps", "envs_per_runner", "fragment"):
        if getattr(s, name) < 1:
            flag = "--" + name.replace("target_", "").replace("_", "-")
            raise UserError(f"{flag}={getattr(s, name)}: must be >= 1")
    if s.updates_per_step < 0:
        raise UserError(f"--updates-per-step={s.updates_per_step}: must be >= 0")


# ------------------------------------------------------------------------- training
class TimedEnv(gym.Wrapper):
    """Accumulates the time spent in ``reset`` and ``step`` of the wrapped env."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.elapsed = 0.0

    def reset(self, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = self.env.reset(**kwargs)
        self.elapsed += time.perf_counter() - t0
        return out

    def step(self, action: Any) -> Any:
        t0 = time.perf_counter()
        out = self.env.step(action)
        self.elapsed += time.perf_counter() - t0
        return out


def run_seq(s: BenchSettings, train_cfg: dict[str, Any], steps: int) -> tuple[dict, Any]:
    """Train the sequential agent for ``steps`` env steps; its measurements and the agent."""
    from rsc_policy.agent.sequential import train_sequential

    t0 = time.perf_counter()
    env = TimedEnv(ENV_CLASSES[s.env](dict(train_cfg)))
    build = time.perf_counter() - t0
    agent_params = {k: v for k, v in s.agent_params.items() if k != "updates_per_step"}
    res = train_sequential(env, env_steps=steps, seed=s.seed, **agent_params)
    wall = res.wall_time_s
    split = {"sample_s": env.elapsed, "learn_step_s": max(0.0, wall - env.elapsed),
             "sync_s": 0.0, "log_s": 0.0, "other_s": 0.0}
    return _measured("sequential", 0, 1, res.env_steps, res.num_updates, wall, build,
                     split), res.agent


def par_config(s: BenchSettings, train_cfg: dict[str, Any], runners: int, steps: int) -> Any:
    """The throughput-mode config of one parallel run (one training iteration of ``steps``)."""
    from rsc_policy.rllib.config import StrategyAgentConfig

    return (
        StrategyAgentConfig()
        .environment(env=ENV_CLASSES[s.env], env_config=dict(train_cfg))
        .env_runners(num_env_runners=runners, num_envs_per_env_runner=s.envs_per_runner,
                     rollout_fragment_length=s.fragment)
        .training(exact=False, **s.agent_params)
        .reporting(min_sample_timesteps_per_iteration=steps)
        .debugging(seed=s.seed)
    )


def run_par(s: BenchSettings, train_cfg: dict[str, Any], runners: int, steps: int
            ) -> tuple[dict, Any]:
    """Train ``StrategyAgentAlgo`` with ``runners`` remote runners; measurements and algo."""
    from rsc_policy.cli.timing import run_parallel

    res = run_parallel(par_config(s, train_cfg, runners, steps), steps, keep_algo=True)
    split = {k: float(res.time_split_s.get(k, 0.0))
             for k in ("sample_s", "learn_step_s", "sync_s", "log_s")}
    split["other_s"] = max(0.0, res.wall_time_s - sum(split.values()))
    label = f"{runners} runner{'s' if runners > 1 else ''} x {s.envs_per_runner} envs"
    return _measured(label, runners, s.envs_per_runner, res.env_steps, res.learning_steps,
                     res.wall_time_s, res.build_time_s, split), res.algo


def _measured(label: str, runners: int, envs: int, steps: int, updates: int, wall: float,
              build: float, split: dict[str, float]) -> dict[str, Any]:
    mode = "sequential" if runners == 0 else "throughput"
    return {"label": label, "mode": mode, "num_env_runners": runners, "envs_per_runner": envs,
            "env_steps": int(steps), "learning_steps": int(updates), "wall_time_s": wall,
            "build_time_s": build, "env_steps_per_s": steps / wall,
            "updates_per_s": updates / wall, "time_split_s": split}


def evaluate_trained(source: Any, s: BenchSettings, val_cfg: dict[str, Any], out: Path,
                     name: str) -> dict[str, Any]:
    """Export ``source`` (agent or algo) to ``out/policies/name``, reload it, evaluate greedily."""
    from rsc_policy.agent.export import export_policy, load_policy
    from rsc_policy.evaluation.episode import evaluate

    directory = export_policy(source, out / "policies" / name,
                              env_config=val_cfg)
    # Held-out figures come from the fast env whatever env the timing ran (they are tested
    # equal); 100 random policies give the random benchmark's distribution.
    result = evaluate(load_policy(directory), val_cfg, n_random=100)
    return {k: v for k, v in result.items() if k not in ("agent_info", "buy_and_hold_curve")}


def run_all(s: BenchSettings, train_cfg: dict[str, Any], val_cfg: dict[str, Any], out: Path,
            steps: int) -> list[BenchRun]:
    """The sequential run, then one throughput run per runner count."""
    runs: list[BenchRun] = []
    console.print(f"sequential: {steps:,} env steps ...")
    run_seq(s, train_cfg, 64)  # its kernels loaded (or compiled) before the clock starts
    measured, agent = run_seq(s, train_cfg, steps)
    runs.append(BenchRun(**measured, evaluation=evaluate_trained(agent, s, val_cfg, out,
                                                                  "sequential")))
    _announce(runs[-1])
    for n in s.runners:
        console.print(f"throughput, {n} runner(s) x {s.envs_per_runner} envs: {steps:,} "
                      "env steps ...")
        measured, algo = run_par(s, train_cfg, n, steps)
        try:
            ev = evaluate_trained(algo, s, val_cfg, out, f"runners_{n}")
        finally:
            algo.stop()
        runs.append(BenchRun(**measured, evaluation=ev))
        _announce(runs[-1])
    base = runs[0].env_steps_per_s
    for run in runs:
        run.speedup = run.env_steps_per_s / base
    return runs


def _announce(run: BenchRun) -> None:
    console.print(f"  {run.label}: {run.env_steps:,} steps in {run.wall_time_s:.1f} s = "
                  f"{run.env_steps_per_s:,.0f} env steps/s")


def align_steps(target: int, s: BenchSettings) -> int:
    """``target`` rounded up to whole runner requests (``envs_per_runner * fragment``)."""
    chunk = s.envs_per_runner * s.fragment
    return -(-target // chunk) * chunk


# -------------------------------------------------------------------------- output
THROUGHPUT_COLUMNS = (
    ("env_steps", "env steps", "{:,d}"),
    ("wall_time_s", "wall s", "{:.1f}"),
    ("build_time_s", "build s", "{:.1f}"),
    ("env_steps_per_s", "env steps/s", "{:,.0f}"),
    ("updates_per_s", "updates/s", "{:,.0f}"),
    ("speedup", "speed-up", "{:.2f}x"),
    ("sample_s", "sample s", "{:.1f}"),
    ("learn_step_s", "learn s", "{:.1f}"),
    ("sync_s", "sync s", "{:.1f}"),
    ("log_s", "log s", "{:.1f}"),
    ("other_s", "other s", "{:.1f}"),
)


def machine_info() -> dict[str, Any]:
    """CPU count and library versions of this machine."""
    import ray
    import torch

    return {"cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "ray": ray.__version__,
            "numpy": np.__version__,
            "ray_cpus": ray.cluster_resources().get("CPU") if ray.is_initialized() else None}


def tables(runs: list[BenchRun]) -> tuple[str, str]:
    """The throughput table and the held-out evaluation table (Markdown)."""
    speed = {r.label: {**asdict(r), **r.time_split_s} for r in runs}
    from rsc_policy.evaluation.benchmarks import COLUMNS

    evals = {f"agent: {r.label}": r.evaluation["rows"]["agent"] for r in runs}
    first = runs[0].evaluation
    evals.update({name: row for name, row in first["rows"].items() if name != "agent"})
    for stat in ("mean", "p5", "p95"):
        evals[f"random ({first['n_random']} seeds, {stat})"] = first["random"][stat]
    speed_table = markdown_table(speed, THROUGHPUT_COLUMNS).replace(
        "| policy |", "| configuration |", 1)
    fee = f"\n\nFee {first['fee_bp']:g} bp per trade; figures annualised from the bar frequency."
    return speed_table, markdown_table(evals, COLUMNS) + fee


def write_outputs(out: Path, s: BenchSettings, steps: int, runs: list[BenchRun],
                  limits: dict[str, float] | None = None) -> str:
    """Write JSON, Markdown and PNG into ``out``; return the Markdown report."""
    from rsc_policy.cli.limits import limits_text

    speed, evals = tables(runs)
    doc = {"benchmark": "seq-vs-par", "machine": machine_info(), "settings": asdict(s),
           "target_env_steps": s.target_env_steps, "env_steps": steps,
           "env_steps_note": STEPS_NOTE,
           "time_split_notes": {"sequential": SEQ_SPLIT_NOTE, "throughput": PAR_SPLIT_NOTE},
           "limits": limits, "runs": [asdict(r) for r in runs]}
    (out / "seq_vs_par.json").write_text(json.dumps(doc, indent=2, default=str))
    report = "\n".join([
        f"# seq-vs-par: {s.env} env, {steps:,} env steps, data `{s.data}` "
        f"{s.start}..{s.end}", "",
        f"{os.cpu_count()} CPUs; speed-up = env steps/s relative to the sequential run; "
        f"runner configurations: {s.envs_per_runner} envs x fragment {s.fragment}, "
        f"{s.updates_per_step} learning steps per env step; DB logging off (log s = 0).", "",
        WHICH_VIEW, "",
        speed, "", *([limits_text(limits), ""] if limits else []),
        f"## Held-out evaluation (greedy, {s.val_start}..{s.val_end})", "", evals,
        "", "![env steps/s](seq_vs_par.png)", ""])
    (out / "seq_vs_par.md").write_text(report)
    plot_bars(out / "seq_vs_par.png", [r.label for r in runs],
              [r.env_steps_per_s for r in runs], "env steps / s",
              f"Training throughput, {s.env} env, {steps:,} env steps ({os.cpu_count()} CPUs)")
    return report


def settings_from_cli(pick: dict[str, Any], **fixed: Any) -> BenchSettings:
    """The settings of one invocation: the quick or full base, then the given options."""
    base = QUICK if fixed["quick"] else FULL
    v = {k: base[k] if value is None else value for k, value in pick.items()}
    s = BenchSettings(start=v["start"], end=v["end"], val_start=v["val_start"],
                      val_end=v["val_end"], target_env_steps=int(v["env_steps"]),
                      runners=parse_runners(str(v["runners"])), **fixed)
    check_settings(s)
    return s


def benchmark(s: BenchSettings, train_cfg: dict[str, Any], val_cfg: dict[str, Any], out: Path,
              address: str | None) -> list[BenchRun]:
    """Run every configuration, write the outputs, print the table."""
    import ray
    import torch

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    steps = align_steps(s.target_env_steps, s)
    from rsc_policy.cli.limits import measure_limits, with_ceilings

    console.print("measuring the limits (env step, act, learning step, GEMM floor) ...")
    limits = measure_limits(ENV_CLASSES[s.env](dict(train_cfg)), os.cpu_count() or 1)
    started = start_ray(address)
    try:
        if address is not None:
            limits = with_ceilings(limits, float(ray.cluster_resources().get(
                "CPU", limits["cores"])))  # the cluster's cores, not this machine's
        runs = run_all(s, train_cfg, val_cfg, out, steps)
        report = write_outputs(out, s, steps, runs, limits)
    finally:
        if started:
            stop_ray()
    console.print(report.split("\n![")[0], markup=False, highlight=False, soft_wrap=True)
    console.print(f"written: {out / 'seq_vs_par.json'}, {out / 'seq_vs_par.md'}, "
                  f"{out / 'seq_vs_par.png'}")
    return runs
