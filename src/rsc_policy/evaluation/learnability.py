"""Known-answer learnability check: train on planted series, evaluate held out, judge.

Each planted series of :mod:`rsc_env.planted` is generated once per seed (seed ``s``: the
series drawn with ``s`` and the agent seeded with ``s``, so the interval over seeds covers
both the data and the agent). The agent trains on the first ``train_bars`` bars (after the
indicators' warm-up) and is evaluated greedily on the next ``val_bars``, beside the oracle run
through the same env (same sizing, fee and execution timing).

Verdicts per series:

* an edge series passes if the agent's mean held-out Sharpe is at least ``min_fraction`` of
  the oracle's mean and no seed collapsed;
* the null series (the random walk) passes if the agent's apparent edge is not significant:
  the lower bound of the 95 % t interval of its Sharpe over seeds is <= 0. Collapse is
  reported there but not failed (never trading is the right answer when there is no edge).

A seed *collapsed* if its greedy held-out policy never trades or takes one action throughout.
All training goes through :func:`train_members`: the jobs run as populations (one compiled
learning call for every member, each member exactly its sequential run).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rsc_policy.evaluation.benchmarks import run_policy
from rsc_policy.evaluation.metrics import episode_performance

DEFAULT_SERIES = ("sine", "regimes", "mean_reversion", "random_walk")
ACTION_OF_POSITION = {1: 1, -1: 2, 0: 0}
"""Env action (0 flat, 1 long, 2 short) that targets each oracle position."""


@dataclass(frozen=True)
class Job:
    """One member to train: ``env_config`` of its training period (``df`` = the prepared
    table), the agent's parameters and the training length."""

    series: str
    seed: int
    env_config: dict[str, Any]
    agent_params: dict[str, Any]
    env_steps: int | None = None
    episodes: int | None = None


@dataclass
class MemberResult:
    """A trained member: its job, its greedy policy (``act(obs) -> action``), its cost."""

    job: Job
    act: Callable[[np.ndarray], int]
    env_steps: int
    wall_s: float


def train_members(jobs: Sequence[Job], on_done: Callable[[MemberResult], None] | None = None,
                  *, threads: int | None = None) -> list[MemberResult]:
    """Train every job; results in the order of ``jobs`` (``on_done`` hears each one;
    ``threads``: threads of the compiled learning call, default every core).

    The jobs run as populations (:func:`rsc_policy.agent.population.train_population`: one
    compiled learning call for all members, each member bit-identical to its sequential run),
    one population per group of jobs that share the training length and observation size
    (:func:`~rsc_policy.agent.population.train_populations`).
    """
    from rsc_policy.agent.population import Member, train_populations

    results: dict[int, MemberResult] = {}
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault((job.env_steps, job.episodes), []).append(i)
    for (env_steps, episodes), idx in groups.items():
        t0 = time.perf_counter()
        members = [Member(agent=dict(jobs[i].agent_params), env=dict(jobs[i].env_config),
                          seed=jobs[i].seed) for i in idx]
        trained = train_populations(members, env_steps=env_steps, episodes=episodes,
                                    threads=threads)
        share = (time.perf_counter() - t0) / len(idx)  # the populations' wall, per member
        for i, res in zip(idx, trained, strict=True):
            results[i] = MemberResult(jobs[i], res.agent.greedy, res.env_steps, share)
            if on_done is not None:
                on_done(results[i])
    return [results[i] for i in range(len(jobs))]


# ------------------------------------------------------------------------------ verdicts
def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two-sided Student-t ``confidence`` interval of the mean (scipy); with one
    value the bounds are NaN, with identical values both bounds are the mean."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    mean = float(np.mean(v))
    if len(v) < 2:
        return mean, float("nan"), float("nan")
    sem = float(stats.sem(v))
    if sem == 0.0:
        return mean, mean, mean
    lo, hi = stats.t.interval(confidence, len(v) - 1, loc=mean, scale=sem)
    return mean, float(lo), float(hi)


def collapse(action_counts: Sequence[int], entries: int) -> str | None:
    """Why a greedy episode counts as collapsed, or None: ``"no trade"`` (no position was
    ever opened) or ``"constant <action>"`` (one action at every step)."""
    names = ("flat", "long", "short")
    if entries == 0:
        return "no trade"
    used = [i for i, n in enumerate(action_counts) if n > 0]
    if len(used) == 1:
        return f"constant {names[used[0]]}"
    return None


def episode_collapse(episode_log: Mapping[str, Any]) -> tuple[list[int], int, str | None]:
    """Action counts, position entries and :func:`collapse` of a TradingEnv ``episode_log``."""
    counts = np.bincount(np.asarray(episode_log["action"], dtype=np.int64), minlength=3)
    entries = sum(1 for op in episode_log.get("operations", [])
                  if str(op[1]).startswith("ENTRY"))
    return counts.tolist(), entries, collapse(counts.tolist(), entries)


@dataclass
class SeriesVerdict:
    """The judgement of one series over its seeds."""

    series: str
    null: bool
    seeds: list[int]
    agent_sharpe: list[float]
    oracle_sharpe: list[float]
    collapsed: dict[int, str] = field(default_factory=dict)
    trades: list[float] = field(default_factory=list)
    min_fraction: float = 0.5

    @property
    def interval(self) -> tuple[float, float, float]:
        """Mean agent Sharpe and its 95 % t interval over seeds."""
        return t_interval(self.agent_sharpe)

    @property
    def oracle_mean(self) -> float:
        return float(np.mean(self.oracle_sharpe))

    @property
    def fraction(self) -> float:
        """Mean agent Sharpe / mean oracle Sharpe (NaN for the null: its oracle is flat)."""
        o = self.oracle_mean
        return self.interval[0] / o if o > 0 else float("nan")

    @property
    def fraction_interval(self) -> tuple[float, float]:
        """The 95 % t interval of the mean agent Sharpe over the mean oracle Sharpe (the
        oracle's mean taken as known; NaN for the null and with one seed)."""
        o = self.oracle_mean
        if self.null or not o > 0:
            return float("nan"), float("nan")
        _, lo, hi = self.interval
        return lo / o, hi / o

    @property
    def firm(self) -> bool:
        """Whether the verdict holds across the interval: for an edge series, the fraction's
        interval lies wholly on one side of ``min_fraction`` (or a seed collapsed); for the
        null, the verdict already is a test. With 5 seeds the interval is typically +-15
        points of the oracle wide, so a mean near the bar is not a verdict."""
        if self.null or self.collapsed:
            return True
        lo, hi = self.fraction_interval
        return bool(np.isfinite(lo) and (lo >= self.min_fraction or hi < self.min_fraction))

    @property
    def significant_edge(self) -> bool:
        """The interval lies above 0: an edge at the 95 % level."""
        lo = self.interval[1]
        return bool(np.isfinite(lo) and lo > 0)

    @property
    def passed(self) -> bool:
        if self.null:
            return not self.significant_edge
        return not self.collapsed and self.interval[0] >= self.min_fraction * self.oracle_mean

    def to_dict(self) -> dict[str, Any]:
        mean, lo, hi = self.interval
        return {"series": self.series, "null": self.null, "seeds": self.seeds,
                "oracle_sharpe": self.oracle_sharpe, "oracle_sharpe_mean": self.oracle_mean,
                "agent_sharpe": self.agent_sharpe, "agent_sharpe_mean": mean,
                "agent_sharpe_ci95": [lo, hi], "fraction_of_oracle": self.fraction,
                "fraction_ci95": list(self.fraction_interval), "firm": self.firm,
                "collapsed": {str(k): v for k, v in self.collapsed.items()},
                "trades": self.trades, "significant_edge": self.significant_edge,
                "min_fraction": self.min_fraction, "passed": self.passed}


# ---------------------------------------------------------------------------- the check
@dataclass(frozen=True)
class CheckPlan:
    """What the check runs: series, seeds, period lengths, training length, parameters."""

    series: tuple[str, ...] = DEFAULT_SERIES
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    train_bars: int = 3000
    val_bars: int = 500
    env_steps: int | None = 20_000
    episodes: int | None = None
    env_params: Mapping[str, Any] = field(default_factory=dict)
    agent_params: Mapping[str, Any] = field(default_factory=dict)
    min_fraction: float = 0.5
    threads: int | None = None  # of the learning call (a Tune trial holds one CPU: 1)


def periods(series: str, seed: int, train_bars: int, val_bars: int
            ) -> tuple[Any, Any, Any]:
    """The planted series ``series`` drawn with ``seed`` and its prepared train / held-out
    tables (indicators on the whole history, then split)."""
    from rsc_env.features import WARMUP_ROWS, prepare_market_data
    from rsc_env.planted import planted

    data = planted(series, seed=seed, n=WARMUP_ROWS + train_bars + val_bars)
    table = prepare_market_data(data.ohlcv)
    return data, table.iloc[:train_bars], table.iloc[train_bars:train_bars + val_bars]


def held_out(act: Callable[[np.ndarray, int], int], env_config: dict[str, Any]
             ) -> dict[str, Any]:
    """Greedy episode of ``act(obs, step)`` on ``env_config``: the figures of
    :func:`rsc_policy.evaluation.metrics.episode_performance`, the action counts, the
    position entries and the collapse verdict."""
    from rsc_env import TradingEnv

    env = TradingEnv(env_config)
    info = run_policy(act, env)
    figures = episode_performance(info, env.unwrapped.market.dates[0])
    counts, entries, why = episode_collapse(info["episode_log"])
    return {**figures, "actions": counts, "entries": entries, "collapse": why}


def oracle_act(positions: np.ndarray) -> Callable[[np.ndarray, int], int]:
    """The oracle as an env policy: at step ``k`` (executed at bar ``k + 1``'s close, held
    over bar ``k + 1 -> k + 2``) it targets ``positions[k + 1]``."""
    actions = np.asarray([ACTION_OF_POSITION[int(p)] for p in positions], dtype=np.int64)
    return lambda _obs, k: int(actions[min(k + 1, len(actions) - 1)])


def run_check(plan: CheckPlan, *, progress: Callable[[str], None] | None = None
              ) -> dict[str, Any]:
    """Train every (series, seed) of ``plan`` through :func:`train_members`, evaluate, judge.

    Returns ``{"series": [SeriesVerdict.to_dict()...], "passed", "wall_s", "members"}``.
    """
    from rsc_env.planted import NULL_SERIES

    t0 = time.perf_counter()
    jobs, tails = [], []
    for name in plan.series:
        for seed in plan.seeds:
            data, train, val = periods(name, seed, plan.train_bars, plan.val_bars)
            jobs.append(Job(name, seed, {"df": train, **plan.env_params},
                            dict(plan.agent_params), plan.env_steps, plan.episodes))
            tails.append((val, data.oracle.reindex(val.index).to_numpy()))

    def trained(r: MemberResult) -> None:
        if progress is not None:
            progress(f"trained {r.job.series} seed {r.job.seed}: {r.env_steps:,} env steps in "
                     f"{r.wall_s:.0f} s")

    results = train_members(jobs, on_done=trained, threads=plan.threads)
    by_series: dict[str, SeriesVerdict] = {}
    members = []
    for res, (val, positions) in zip(results, tails, strict=True):
        cfg = {"df": val, **plan.env_params, "record_episode": True}  # the figures need the log
        agent = held_out(lambda obs, _k, a=res.act: a(obs), cfg)
        oracle = held_out(oracle_act(positions), cfg)
        name, seed = res.job.series, res.job.seed
        v = by_series.setdefault(name, SeriesVerdict(name, name == NULL_SERIES, [], [], [],
                                                     min_fraction=plan.min_fraction))
        v.seeds.append(seed)
        v.agent_sharpe.append(agent["sharpe"])
        v.oracle_sharpe.append(oracle["sharpe"])
        v.trades.append(agent["trades"])
        if agent["collapse"]:
            v.collapsed[seed] = agent["collapse"]
        members.append({"series": name, "seed": seed, "env_steps": res.env_steps,
                        "wall_s": res.wall_s, "agent_sharpe": agent["sharpe"],
                        "oracle_sharpe": oracle["sharpe"], "actions": agent["actions"],
                        "entries": agent["entries"], "collapse": agent["collapse"]})
        if progress is not None:
            note = f"  collapsed: {agent['collapse']}" if agent["collapse"] else ""
            progress(f"{name} seed {seed}: Sharpe {agent['sharpe']:+.2f} (oracle "
                     f"{oracle['sharpe']:.2f}){note}")
    verdicts = [by_series[n].to_dict() for n in plan.series]
    return {"series": verdicts, "passed": all(v["passed"] for v in verdicts),
            "members": members, "wall_s": time.perf_counter() - t0}


def table(result: Mapping[str, Any]) -> str:
    """The verdicts as a Markdown table."""
    lines = ["| series | oracle Sharpe | agent Sharpe (95 % CI over seeds) | of oracle (95 % CI) | "
             "collapsed seeds | verdict |", "|---|---:|---:|---:|---|---|"]
    for v in result["series"]:
        lo, hi = v["agent_sharpe_ci95"]
        frac = v["fraction_of_oracle"]
        coll = ", ".join(f"{s}: {why}" for s, why in v["collapsed"].items()) or "none"
        if v["null"]:
            verdict = ("FAIL: significant edge on the null" if v["significant_edge"]
                       else "pass: no significant edge")
        else:
            verdict = "pass" if v["passed"] else "FAIL"
            if not v["firm"]:
                verdict += f" (not firm: the interval spans {v['min_fraction']:.0%})"
        flo, fhi = v["fraction_ci95"]
        share = ("n/a" if not np.isfinite(frac) else f"{frac:.0%}" if not np.isfinite(flo)
                 else f"{frac:.0%} [{flo:.0%}, {fhi:.0%}]")
        lines.append(f"| {v['series']} | {v['oracle_sharpe_mean']:.2f} | "
                     f"{v['agent_sharpe_mean']:+.2f} [{lo:+.2f}, {hi:+.2f}] | "
                     f"{share} | {coll} | {verdict} |")
    loose = [v["series"] for v in result["series"] if not v["firm"]]
    if loose:
        lines.append("")
        lines.append(f"Not firm: {', '.join(loose)}: the 95 % interval of the fraction of the "
                     "oracle spans the bar, so these seeds cannot tell pass from fail; rerun "
                     "with more --seeds (30 seeds narrow it to about +-8 points).")
    return "\n".join(lines)
