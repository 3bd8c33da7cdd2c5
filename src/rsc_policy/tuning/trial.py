"""What one Tune trial runs: one configuration over every walk-forward fold and seed.

The trial's (fold, seed) trainings are the members of one population of
:class:`~rsc_policy.rllib.algorithm.StrategyAgentAlgo` (each member: the team's rule on its
fold's training window, its own seed, network, Adam state and replay; all members' learning
steps in one compiled call). The trial's time axis (what ASHA and PBT see as
``training_iteration``) is the training episode: after each member has trained one more
whole episode of its own fold (the folds differ in length; each member is exactly
``train_sequential`` with that many episodes) every member is scored greedily on its fold's
validation window and the trial reports the mean metric over folds x seeds, with a
checkpoint (the algorithm without its replay, and the figures; the last round's: the figures
only) from which a resumed or PBT-exploited trial continues; a FIFO sweep's trial reports
once, at the end. The test period is not in any fold.
"""

from __future__ import annotations

import functools
import json
import math
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

STATE_FILE = "trial_state.json"


def split_config(config: Mapping[str, Any], ctx: Mapping[str, Any]
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The trial's env parameters (over the base env config) and agent parameters."""
    env = dict(ctx["base_env"])
    agent = dict(ctx["agent_defaults"])
    for name, value in config.items():
        if name in ctx["groups"]:
            (agent if ctx["groups"][name] == "agent" else env)[name] = _plain(value)
    return env, agent


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def score_window(act: Any, env_config: Mapping[str, Any],
                 buy_and_hold_figures: Mapping[str, float] | None = None
                 ) -> tuple[dict[str, float], dict[str, float]]:
    """Figures of the greedy ``act(obs)`` and of buy-and-hold on the period of ``env_config``
    (the same figures as :func:`rsc_policy.evaluation.benchmarks.compare`, no random draws;
    ``buy_and_hold_figures`` when the sweep computed them once already); the agent's also
    hold ``collapse``: None, ``"no trade"`` or ``"constant <action>"``."""
    from rsc_env import TradingEnv
    from rsc_policy.evaluation.benchmarks import run_policy
    from rsc_policy.evaluation.metrics import episode_performance

    env = TradingEnv(dict(env_config))
    info = run_policy(lambda obs, _t: act(obs), env)
    agent: dict[str, Any] = dict(episode_performance(info, env.unwrapped.market.dates[0]))
    from rsc_policy.evaluation.learnability import episode_collapse

    agent["collapse"] = episode_collapse(info["episode_log"])[2]
    bh = (dict(buy_and_hold_figures) if buy_and_hold_figures is not None
          else window_buy_and_hold(env_config))
    return agent, bh


def window_buy_and_hold(env_config: Mapping[str, Any]) -> dict[str, float]:
    """Buy-and-hold of the whole balance over the period of ``env_config`` (same fee)."""
    import pandas as pd

    from rsc_env import TradingEnv
    from rsc_policy.evaluation.benchmarks import buy_and_hold

    env = TradingEnv(dict(env_config))
    market, params = env.unwrapped.market, env.unwrapped.params
    return buy_and_hold(np.asarray(market.close), pd.DatetimeIndex(market.dates),
                        float(params.initial_balance), float(params.transaction_fee_percent))


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def trial_members(ctx: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The population of one trial: one member per (fold, seed), training on its fold."""
    return [{"env": {"start": f[0], "end": f[1]}, "seed": seed, "name": f"fold{k}-seed{seed}"}
            for k, f in enumerate(ctx["folds"]) for seed in ctx["seeds"]]


def build_population(env: Mapping[str, Any], agent: Mapping[str, Any],
                     ctx: Mapping[str, Any]) -> Any:
    """The trial's :class:`StrategyAgentAlgo`: every (fold, seed) a member; a trial is one
    process (Tune places trials on cores and nodes). With one env per member
    (``ctx["env_copies"]`` 1, the default) the learner steps the members' envs itself
    (``population(rollout="learner")``: compiled, each member the sequential rule exactly);
    with more, the driver's own env runner samples ``env_copies`` copies per member
    (throughput mode)."""
    from rsc_env import TradingEnv
    from rsc_policy.agent.sequential import run_total
    from rsc_policy.rllib.config import StrategyAgentConfig

    own = dict(agent)
    if "learning_rate" in own:
        own["lr"] = own.pop("learning_rate")
    members = trial_members(ctx)
    exact = ctx["env_copies"] == 1
    if own.get("epsilon_schedule") == "linear" and own.get("epsilon_total_steps") is None:
        own["epsilon_total_steps"] = ctx["episodes"] * ctx["round_steps"]  # the trial's run
        if exact:  # each member's own run, set by train_sequential's own rule
            members = [{**m, "agent": {"epsilon_total_steps": run_total(
                TradingEnv({**env, **m["env"]}), ctx["episodes"], None)}} for m in members]
    config = (StrategyAgentConfig()
              .environment(TradingEnv, env_config=dict(env))
              .training(**own, store_buffer_in_checkpoints=False, learner_threads=1)
              .env_runners(num_env_runners=0, num_envs_per_env_runner=ctx["env_copies"],
                           rollout_fragment_length=ctx["fragment"]))
    # no .debugging(seed=...): every member is seeded by its own seed, and RLlib's global
    # seeding would import torch's compiler stack into the trial (~2 s per process); no
    # system-usage monitor: the trial reports its own figures, and algo.stop() joins the
    # monitor's thread (it polls every 0.7 s: 0.2-0.6 s per trial measured)
    config = config.debugging(log_sys_usage=False)
    if exact:  # a round: one whole episode of every member, one RLlib iteration
        config = (config.population(members, rollout="learner", episodes_per_iteration=1)
                  .reporting(min_sample_timesteps_per_iteration=0))
    else:  # one RLlib iteration per round (an iteration costs ~30 ms of RLlib bookkeeping)
        config = (config.population(members, rollout="env_runners")
                  .reporting(min_sample_timesteps_per_iteration=max(
                      ctx["round_steps"], ctx["env_copies"] * ctx["fragment"])))
    return config.build_algo()


def run_trial(config: dict[str, Any], ctx: Mapping[str, Any]) -> None:
    """The Tune function trainable (``tune.with_parameters(run_trial, ctx=...)``).

    All (fold, seed) trainings of the trial run as one population. Engine ``"rllib"``
    (ASHA, PBT): :class:`StrategyAgentAlgo` in population mode; its time axis is the training
    episode: after each round (every member has taken one more episode's worth of env steps
    on its fold, ``ctx["round_steps"]``) every member is scored greedily on its fold's
    validation window and the trial reports the mean metric over folds x seeds, with a
    checkpoint (the algorithm without its replay, and the figures; the last round's: the
    figures only) from which a resumed or PBT-exploited trial continues. Engine ``"loop"``
    (FIFO, where no scheduler needs the rounds): the same population through
    :func:`~rsc_policy.agent.population.train_population` (no env runner: each member's
    whole training compiled, env rules included; RLlib's ~2 ms per vector step would be most
    of the cost), every member ``episodes`` whole episodes exactly as alone, one report at
    the end.
    """
    from ray import tune

    from rsc_policy.tuning.sweep import trial_configs

    if ctx["engine"] == "loop":
        return _loop_trial(trial_configs(config, ctx), ctx)
    env, agent = split_config(config, ctx)
    state: dict[str, Any] = {"rounds": 0, "folds": [], "env_steps": 0, "train_s": 0.0,
                             "wall_s": 0.0}
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            state = json.loads((Path(d) / STATE_FILE).read_text())
            if state["rounds"] < ctx["episodes"]:
                return _rllib_rounds(env, agent, ctx, state, Path(d) / "algo")
    if state["rounds"] >= ctx["episodes"]:
        return None
    return _rllib_rounds(env, agent, ctx, state, None)


def _loop_trial(configs: list[dict[str, Any]], ctx: Mapping[str, Any]) -> None:
    """Engine ``"loop"``: the trial's configurations (one, or ``configs_per_trial``) over
    every fold and seed; every (configuration, fold, seed) is a member, and members whose
    observations have one size train as one population. One report at the end: a single
    configuration's figures, or for several the best one's with each configuration's under
    ``configs`` (the sweep records one row per configuration). A trial with a checkpoint has
    reported, so it has finished; one that had not reported trains again from the start."""
    from ray import tune

    from rsc_policy.agent.population import Member, train_populations

    if tune.get_checkpoint() is not None:
        return None
    t0 = time.perf_counter()
    splits = [split_config(c, ctx) for c in configs]
    members = [Member(agent=agent, env={**env, **m["env"]}, seed=m["seed"],
                      name=m["name"] if len(splits) == 1 else f"c{j}-{m['name']}")
               for j, (env, agent) in enumerate(splits) for m in ctx["members"]]
    trained = train_populations(members, episodes=ctx["episodes"], threads=1)  # 1 CPU
    train_s = time.perf_counter() - t0
    n = len(ctx["members"])
    results = []
    for j, (env, agent) in enumerate(splits):
        mine = trained[j * n:(j + 1) * n]
        state = {"rounds": ctx["episodes"], "env_steps": sum(r.env_steps for r in mine),
                 "train_s": train_s / len(splits),
                 "folds": _score(env, ctx, [r.agent.greedy for r in mine]),
                 "planted": planted_score(env, agent, ctx)}
        state["wall_s"] = time.perf_counter() - t0
        results.append(_result(state, ctx))
    if len(results) == 1:
        report = results[0]
    else:
        sign = 1.0 if ctx["mode"] == "max" else -1.0
        best = max(results, key=lambda r: sign * r["score"])
        report = {**best, "configs": json.dumps(results),
                  "env_steps": sum(r["env_steps"] for r in results), "train_time_s": train_s,
                  "trial_time_s": time.perf_counter() - t0,
                  "env_steps_per_s": sum(r["env_steps"] for r in results) / max(train_s, 1e-9)}
        if any("planted_env_steps" in r for r in results):  # every configuration's checks
            report["planted_env_steps"] = sum(r.get("planted_env_steps", 0.0) for r in results)
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / STATE_FILE).write_text(json.dumps({"rounds": ctx["episodes"]}))
        tune.report(report, checkpoint=tune.Checkpoint.from_directory(d))


def _rllib_rounds(env: dict[str, Any], agent: dict[str, Any], ctx: Mapping[str, Any],
                  state: dict[str, Any], restore: Path | None) -> None:
    from ray import tune

    from rsc_policy.agent.population import FlatGreedy
    from rsc_policy.rllib.algorithm import RSC_RESULTS

    t_build = time.perf_counter()
    algo = build_population(env, agent, ctx)
    try:
        if restore is not None:
            algo.restore_from_path(str(restore))
        state["wall_s"] += time.perf_counter() - t_build
        for r in range(state["rounds"], ctx["episodes"]):
            t0 = time.perf_counter()
            trained = 0
            while True:  # one iteration: one episode of every member (see build_population)
                trained += int(algo.train()[RSC_RESULTS]["population_env_steps"])
                if ctx["env_copies"] == 1 or algo.global_env_steps >= (r + 1) * ctx[
                        "round_steps"]:
                    break
            state["env_steps"] += trained
            state["train_s"] += time.perf_counter() - t0
            state["rounds"] = r + 1
            if state["rounds"] < ctx["episodes"] and not ctx.get("report_rounds", True):
                state["wall_s"] += time.perf_counter() - t0
                continue  # FIFO: nothing reads a round's figures; the trial reports once
            params = algo.member_weights()  # acting as the members act (compiled forward)
            state["folds"] = _score(env, ctx, [FlatGreedy(params, k)
                                               for k in range(len(params))])
            if state["rounds"] == ctx["episodes"]:  # a trial that ran all its episodes
                state["planted"] = planted_score(env, agent, ctx)
            state["wall_s"] += time.perf_counter() - t0
            with tempfile.TemporaryDirectory() as d:
                (Path(d) / STATE_FILE).write_text(json.dumps(state))
                if state["rounds"] < ctx["episodes"]:  # a finished trial is never resumed
                    algo.save_to_path(str(Path(d) / "algo"))  # (~0.3 s, 5 MB for 18 members)
                tune.report(_result(state, ctx), checkpoint=tune.Checkpoint.from_directory(d))
    finally:
        algo.stop()


def _score(env: Mapping[str, Any], ctx: Mapping[str, Any], acts: list[Any]
           ) -> list[dict[str, Any]]:
    """Each member's greedy figures on its fold's validation window (member order: fold-major,
    then seed), grouped by fold."""
    from rsc_policy.evaluation.benchmarks import percentile_among

    metric, n_seeds = ctx["metric"], len(ctx["seeds"])
    folds = []
    for k, (_, _, val_start, val_end) in enumerate(ctx["folds"]):
        val_cfg = {**env, "start": val_start, "end": val_end}
        bh = ctx["fold_buy_and_hold"][k] if env_shared(env, ctx) else None
        # The sweep's random policies of this window when they are the trial's too; a trial
        # that changes the sizing, stop-loss, fee or window has its own, drawn once per
        # process and settings (~70 ms per window, the first time).
        draws = (ctx["fold_random"][k] if random_shared(env, ctx)
                 else window_random(tuple(sorted((key, v) for key, v in val_cfg.items()
                                                 if key in RANDOM_KEYS)), metric))
        runs = []
        for j, seed in enumerate(ctx["seeds"]):
            fig, bh = score_window(acts[k * n_seeds + j], val_cfg, bh)
            runs.append({"seed": seed, metric: _finite(fig[metric]),
                         "total_return": fig["total_return"], "trades": fig.get("trades"),
                         "buy_and_hold": _finite(bh[metric]), "collapse": fig["collapse"],
                         "random_percentile": None if draws is None else
                         _finite(percentile_among(fig[metric], draws))})
        folds.append({"fold": k, "val_start": val_start, "val_end": val_end, "runs": runs})
    return folds


def planted_score(env: Mapping[str, Any], agent: Mapping[str, Any],
                  ctx: Mapping[str, Any]) -> dict[str, float]:
    """The trial's configuration on the planted series of ``ctx["planted"]``
    (:func:`rsc_policy.evaluation.learnability.run_check`, seed 0, ``planted_env_steps``):
    ``planted_fraction`` (mean fraction of the oracle's held-out Sharpe over the series with
    an edge), ``planted_<series>`` (that fraction; the null's: the agent's Sharpe),
    ``planted_collapsed`` (collapsed runs), ``planted_passed`` (1.0 if the check passed) and
    ``planted_env_steps`` (the env steps it trained).
    Empty when the sweep asks for none."""
    if not ctx.get("planted"):
        return {}
    from rsc_policy.evaluation.learnability import CheckPlan, run_check

    plan = CheckPlan(series=tuple(ctx["planted"]), seeds=(0,),
                     env_steps=int(ctx["planted_env_steps"]),
                     env_params={k: v for k, v in env.items()
                                 if k not in ("data", "date_format", "start", "end")},
                     agent_params=dict(agent), threads=1)  # the trial's one CPU
    res = run_check(plan)
    out = {f"planted_{v['series']}": float(v["agent_sharpe_mean"] if v["null"]
                                           else v["fraction_of_oracle"])
           for v in res["series"]}
    out["planted_fraction"] = _mean_or_nan([v["fraction_of_oracle"] for v in res["series"]
                                            if not v["null"]])
    out["planted_collapsed"] = float(sum(len(v["collapsed"]) for v in res["series"]))
    out["planted_env_steps"] = float(len(plan.series) * len(plan.seeds) * plan.env_steps)
    out["planted_passed"] = float(res["passed"])
    return out


def _mean_or_nan(values: list[float | None]) -> float:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else math.nan


def _result(state: Mapping[str, Any], ctx: Mapping[str, Any]) -> dict[str, Any]:
    """What the trial reports to Tune after a round."""
    metric, folds = ctx["metric"], state["folds"]
    values = [x[metric] for f in folds for x in f["runs"]]
    score = float(np.nanmean([np.nan if v is None else v for v in values]))
    return {
        "score": score if math.isfinite(score) else (-1e9 if ctx["mode"] == "max" else 1e9),
        "buy_and_hold_score": float(np.nanmean([
            np.nan if f["runs"][0]["buy_and_hold"] is None else f["runs"][0]["buy_and_hold"]
            for f in folds])),
        "folds_done": len(folds), "episodes_done": state["rounds"],
        "collapsed_runs": sum(r.get("collapse") is not None for f in folds for r in f["runs"]),
        # the mean percentile of the runs among their window's random policies (50: random)
        "random_percentile": _mean_or_nan([r.get("random_percentile") for f in folds
                                           for r in f["runs"]]),
        "env_steps": state["env_steps"], "train_time_s": state["train_s"],
        "trial_time_s": state["wall_s"],
        "env_steps_per_s": state["env_steps"] / max(state["train_s"], 1e-9),
        "fold_metrics": json.dumps(folds),
        **state.get("planted", {}),
    }


def env_shared(env: Mapping[str, Any], ctx: Mapping[str, Any]) -> bool:
    """Whether the trial's env settings are the sweep's base ones that the sweep's
    buy-and-hold figures were computed with (a searched env parameter such as the fee or
    the balance changes buy-and-hold; the window size does not)."""
    base = ctx["base_env"]
    return all(env.get(k) == base.get(k) for k in SHARED_KEYS)


#: The env settings the sweep's buy-and-hold figures of each window depend on.
SHARED_KEYS = ("transaction_fee_percent", "window_size", "initial_balance", "data",
               "date_format")


@functools.lru_cache(maxsize=256)
def window_random(env_items: tuple[tuple[str, Any], ...], metric: str) -> list[float]:
    """``metric`` of the 100 random policies of the window and env settings ``env_items``
    (sorted items of the env config), once per process: a trial's rounds, and trials that
    share those settings, reuse them."""
    from rsc_policy.evaluation.benchmarks import random_draws

    return random_draws(dict(env_items))[metric].tolist()


#: Env settings besides those of :func:`env_shared` that change what a random policy's
#: portfolio does (the reward's penalties and the observation do not).
TRADING_KEYS = ("position_sizing_method", "risk_fraction", "stop_loss_pct", "take_profit_pct")
#: Everything a random policy's figures on a window depend on (the key of its draws).
RANDOM_KEYS = (*SHARED_KEYS, *TRADING_KEYS, "start", "end")


def random_shared(env: Mapping[str, Any], ctx: Mapping[str, Any]) -> bool:
    """Whether the sweep's random policies of each window (``ctx["fold_random"]``) are the
    trial's too: its trading settings are the sweep's base ones."""
    base = ctx["base_env"]
    return env_shared(env, ctx) and all(env.get(k) == base.get(k) for k in TRADING_KEYS)
