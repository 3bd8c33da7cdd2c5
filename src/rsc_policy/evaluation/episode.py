"""Greedy evaluation of a policy on a held-out period, beside true benchmarks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np

LONG = 1


def greedy_act(policy: Any) -> Callable[[np.ndarray], int]:
    """The greedy action function of a policy, a ``StrategyAgent`` or a callable."""
    if hasattr(policy, "act") and not hasattr(policy, "memory"):
        return policy.act
    if hasattr(policy, "greedy"):  # StrategyAgent: greedy, no epsilon
        return policy.greedy
    if callable(policy):
        return policy
    raise TypeError(f"cannot act with {type(policy).__name__}")


def run_episode(act: Callable[[np.ndarray], int], env: gym.Env, *, keep_log: bool = False
                ) -> dict[str, Any]:
    """One full episode with ``act``; the summary metrics of its terminal step (and, with
    ``keep_log``, the env's per-step ``episode_log`` for plotting)."""
    obs, _ = env.reset()
    actions = []
    while True:
        a = int(act(obs))
        actions.append(a)
        obs, _, terminated, truncated, info = env.step(a)
        if terminated or truncated:
            break
    initial = float(info["initial_portfolio_value"])
    pnl = float(info["pnl"])
    out = {
        "pnl": pnl,
        "return": pnl / initial if initial else float("nan"),
        "final_portfolio_value": float(info["final_portfolio_value"]),
        "sharpe": float(info["sharpe_ratio"]),
        "max_drawdown": float(info["max_drawdown"]),
        "win_rate": float(info["win_rate"]),
        "trades": len(info.get("completed_trades", [])),
        "total_reward": float(info["total_reward"]),
        "steps": int(info["total_steps"]),
        "actions": np.bincount(actions, minlength=3).tolist(),
    }
    if keep_log:
        out["episode_log"] = info["episode_log"]
    return out


def evaluate(policy: Any, env_config: Mapping[str, Any], *, n_random: int = 100
             ) -> dict[str, Any]:
    """Greedy ``policy`` (a ``StrategyAgent``, ``GreedyPolicy`` or callable) over the period of
    ``env_config``, beside the true benchmarks: buy-and-hold of the whole balance, the env's
    always-long, SMA 50/200 crossover and ``n_random`` random policies
    (:func:`rsc_policy.evaluation.benchmarks.compare`; render with ``benchmarks.markdown``)."""
    from rsc_policy.evaluation.benchmarks import compare

    return compare(greedy_act(policy), env_config, n_random=n_random)
