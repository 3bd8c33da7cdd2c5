"""Greedy evaluation on a held-out period, side by side with buy-and-hold."""

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


def evaluate(policy: Any, env_config: Mapping[str, Any] | gym.Env) -> dict[str, Any]:
    """Greedy ``policy`` over the period of ``env_config`` (a TradingEnv config or env).

    Returns ``{"policy": metrics, "buy_and_hold": metrics}`` with ``pnl, return, sharpe,
    max_drawdown, win_rate, trades`` (plus ``final_portfolio_value, total_reward, steps`` and
    action counts); buy-and-hold always chooses "long".
    """
    if isinstance(env_config, gym.Env):
        env = env_config
    else:
        from rsc_env import TradingEnv

        env = TradingEnv(dict(env_config))
    return {"policy": run_episode(greedy_act(policy), env),
            "buy_and_hold": run_episode(lambda _obs: LONG, env)}
