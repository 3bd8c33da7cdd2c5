"""A short demo episode on the bundled S&P 500 data: ``python -m rsc_env.demo``."""

from __future__ import annotations

import numpy as np

from rsc_env import TEAM_TRAINING_PARAMS, TradingEnv


def main() -> None:
    """Run one sticky-random episode over 2017 and print its summary."""
    env = TradingEnv(
        {"data": "sp500", "start": "2017-01-01", "end": "2017-12-31", **TEAM_TRAINING_PARAMS},
        initial_balance=100_000.0,
    )
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    action, done = 0, False
    while not done:
        if rng.random() < 0.1:
            action = int(rng.integers(3))
        _, _, done, _, info = env.step(action)
    for key in ("total_steps", "pnl", "sharpe_ratio", "max_drawdown", "win_rate", "total_reward"):
        print(f"{key:>14}: {info[key]:.4f}")
    print(f"{'trades':>14}: {len(info['completed_trades'])}")


if __name__ == "__main__":
    main()
