"""What one Tune trial runs: one configuration over every walk-forward fold and seed.

Per fold (in order) and seed: train a fresh agent with the sequential trainer on the fold's
training window, score it greedily on the validation window. After each fold the trial
reports the mean of the sweep metric over the folds x seeds done so far (so ASHA can stop it
early) with a small checkpoint (folds done and their figures), from which a resumed or
PBT-exploited trial continues with the next fold. The test period is not in any fold.
"""

from __future__ import annotations

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


def score_window(act: Any, env_config: Mapping[str, Any]) -> tuple[dict[str, float],
                                                                   dict[str, float]]:
    """Figures of the greedy ``act(obs)`` and of buy-and-hold on the period of ``env_config``
    (the same figures as :func:`rsc_policy.evaluation.benchmarks.compare`, no random draws);
    the agent's also hold ``collapse``: None, ``"no trade"`` or ``"constant <action>"``."""
    import pandas as pd

    from rsc_env import TradingEnv
    from rsc_policy.evaluation.benchmarks import buy_and_hold, run_policy
    from rsc_policy.evaluation.metrics import episode_performance

    env = TradingEnv(dict(env_config))
    market, params = env.unwrapped.market, env.unwrapped.params
    dates = pd.DatetimeIndex(market.dates)
    info = run_policy(lambda obs, _t: act(obs), env)
    agent: dict[str, Any] = dict(episode_performance(info, dates[0]))
    from rsc_policy.evaluation.learnability import episode_collapse

    agent["collapse"] = episode_collapse(info["episode_log"])[2]
    bh = buy_and_hold(np.asarray(market.close), dates, float(params.initial_balance),
                      float(params.transaction_fee_percent))
    return agent, bh


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def run_trial(config: dict[str, Any], ctx: Mapping[str, Any]) -> None:
    """The Tune function trainable (``tune.with_parameters(run_trial, ctx=...)``)."""
    from ray import tune

    from rsc_policy.agent.sequential import train_sequential

    env, agent = split_config(config, ctx)
    metric = ctx["metric"]
    state: dict[str, Any] = {"folds": [], "env_steps": 0, "train_s": 0.0, "wall_s": 0.0}
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            state = json.loads((Path(d) / STATE_FILE).read_text())
    for k in range(len(state["folds"]), len(ctx["folds"])):
        t0 = time.perf_counter()
        train_start, train_end, val_start, val_end = ctx["folds"][k]
        train_cfg = {**env, "start": train_start, "end": train_end}
        val_cfg = {**env, "start": val_start, "end": val_end}
        runs = []
        for seed in ctx["seeds"]:
            res = train_sequential(train_cfg, episodes=ctx["episodes"], seed=seed, **agent)
            fig, bh = score_window(res.agent.greedy, val_cfg)
            state["env_steps"] += res.env_steps
            state["train_s"] += res.wall_time_s
            runs.append({"seed": seed, metric: _finite(fig[metric]),
                         "total_return": fig["total_return"], "env_steps": res.env_steps,
                         "buy_and_hold": _finite(bh[metric]), "collapse": fig["collapse"]})
        state["wall_s"] += time.perf_counter() - t0
        state["folds"].append({"fold": k, "val_start": val_start, "val_end": val_end,
                               "runs": runs})
        values = [r[metric] for f in state["folds"] for r in f["runs"]]
        bh_values = [f["runs"][0]["buy_and_hold"] for f in state["folds"]]
        score = float(np.nanmean([np.nan if v is None else v for v in values]))
        result = {
            "score": score if math.isfinite(score) else (-1e9 if ctx["mode"] == "max"
                                                         else 1e9),
            "buy_and_hold_score": float(np.nanmean([np.nan if v is None else v
                                                    for v in bh_values])),
            "folds_done": len(state["folds"]), "env_steps": state["env_steps"],
            "collapsed_runs": sum(r.get("collapse") is not None for f in state["folds"]
                                  for r in f["runs"]),
            "train_time_s": state["train_s"], "trial_time_s": state["wall_s"],
            "env_steps_per_s": state["env_steps"] / max(state["train_s"], 1e-9),
            "fold_metrics": json.dumps(state["folds"]),
        }
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / STATE_FILE).write_text(json.dumps(state))
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(d))
