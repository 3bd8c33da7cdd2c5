"""Stable-Baselines3 DQN as a peer of rsc's sequential trainer at the same replay ratio.

Run: ``python bench/sb3_dqn_peer.py [env_steps]``. Both train one agent in one process on the
same env (the team's settings on 2010-2014 S&P 500 bars, ``step_info`` off), with one learning
step of batch 32 per env step (SB3: ``train_freq=1, gradient_steps=1``), a 64-64 ReLU
Q-network, Adam at lr 1e-3, gamma 0.9, a hard target copy every 50 learning steps, replay
capacity 2,000, learning from the 32nd step, ``torch.set_num_threads(1)``. Prints env steps/s
of each and the ratio (issue 11's target: rsc >= 10x SB3).
"""

from __future__ import annotations

import sys
import time

import torch

from rsc_env import TEAM_TRAINING_PARAMS, TradingEnv, prepare_market_data
from rsc_policy import train_sequential


def env_config() -> dict:
    df = prepare_market_data("sp500", start="2010-01-01", end="2014-12-31")
    return {"df": df, **TEAM_TRAINING_PARAMS, "initial_balance": 100_000.0, "step_info": False}


def rsc_rate(cfg: dict, steps: int) -> float:
    train_sequential(cfg, env_steps=500, seed=0, gamma=0.9, target_update_freq=50)  # warm-up
    t0 = time.perf_counter()
    train_sequential(cfg, env_steps=steps, seed=0, gamma=0.9, target_update_freq=50,
                     memory_size=2000, batch_size=32)
    return steps / (time.perf_counter() - t0)


def sb3_rate(cfg: dict, steps: int) -> float:
    from stable_baselines3 import DQN

    model = DQN("MlpPolicy", TradingEnv(cfg), learning_rate=1e-3, buffer_size=2000,
                learning_starts=32, batch_size=32, gamma=0.9, train_freq=1, gradient_steps=1,
                target_update_interval=50, exploration_fraction=0.5,
                policy_kwargs={"net_arch": [64, 64]}, seed=0, device="cpu", verbose=0)
    model.learn(500)  # warm-up
    t0 = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - t0)


def main(steps: int = 5000) -> None:
    torch.set_num_threads(1)
    cfg = env_config()
    ours, theirs = rsc_rate(cfg, steps), sb3_rate(cfg, steps)
    print(f"rsc sequential trainer: {ours:,.0f} env steps/s")
    print(f"Stable-Baselines3 DQN:  {theirs:,.0f} env steps/s")
    print(f"ratio:                  {ours / theirs:.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
