"""Synthetic terminal infos with exactly the shape rsc_env.TradingEnv reports.

Loaded by path (``load_synthetic``) from conftest, child processes and bench/bench_db.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

_ENTRY = {1: "ENTRY_LONG", -1: "ENTRY_SHORT"}
_EXIT = {1: "EXIT_LONG", -1: "EXIT_SHORT"}
_TARGET = np.array([0, 1, -1], dtype=np.int8)  # action -> position


def synthetic_info(
    n_steps: int = 60, seed: int = 0, start: str = "2015-01-02", quantity: int = 10
) -> dict[str, Any]:
    """A terminal info of ``n_steps`` random-action steps; reversals give exit+entry."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=n_steps).values
    price = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n_steps)))
    action = rng.integers(0, 3, n_steps).astype(np.int8)
    position = _TARGET[action].copy()
    reward = rng.normal(0, 0.01, n_steps)
    pv = 10_000 * np.exp(np.cumsum(reward))
    ops: list[tuple[int, str, float, float]] = []
    trades: list[dict[str, Any]] = []
    pos, entry = 0, 0
    for i in range(n_steps):
        target = int(position[i])
        if target == pos:
            continue
        if pos != 0:
            ops.append((i, _EXIT[pos], float(-pos * quantity), float(price[i])))
            trades.append(
                {
                    "entry_step": entry,
                    "exit_step": i,
                    "entry_time": pd.Timestamp(dates[entry]),
                    "exit_time": pd.Timestamp(dates[i]),
                    "entry_price": float(price[entry]),
                    "exit_price": float(price[i]),
                    "quantity": quantity,
                    "direction": "long" if pos == 1 else "short",
                    "pnl": float(pos * (price[i] - price[entry]) * quantity - 0.1),
                    "costs": 0.1,
                }
            )
        if target != 0:
            ops.append((i, _ENTRY[target], float(target * quantity), float(price[i])))
            entry = i
        pos = target
    wins = [t["pnl"] > 0 for t in trades]
    return {
        "balance": 1.0,
        "shares_held": 0,
        "initial_portfolio_value": 10_000.0,
        "final_portfolio_value": float(pv[-1]),
        "pnl": float(pv[-1] - 10_000.0),
        "completed_trades": trades,
        "win_rate": float(np.mean(wins)) if wins else 0.0,
        "max_drawdown": float(np.max(1 - pv / np.maximum.accumulate(pv))),
        "sharpe_ratio": float(reward.mean() / reward.std()) if reward.std() > 0 else 0.0,
        "total_reward": float(reward.sum()),
        "total_steps": n_steps,
        "episode_log": {
            "date": dates,
            "action": action,
            "position": position,
            "reward": reward,
            "portfolio_value": pv,
            "price": price,
            "operations": ops,
        },
    }
