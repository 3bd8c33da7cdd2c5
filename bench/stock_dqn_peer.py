"""Stock RLlib DQN as a peer of StrategyAgentAlgo at the same replay ratio, in one run.

Run: ``python bench/stock_dqn_peer.py [env_steps] [envs_per_runner]``. Both use 2 remote
runners x ``envs_per_runner`` envs (default 4),
fragments of 64, the team's env settings, batch 32 and one learning step per env step
(stock DQN: ``training_intensity`` = batch 32 x 1 update per sampled step; on the new stack
its local runner does not sample when remote runners exist, so no correction is needed for
it; its target sync counts env steps, set to the agent's 50 learning steps = 50 env steps).
Prints env steps/s of each and the ratio.
"""

from __future__ import annotations

import sys
import time

import ray
import torch
from ray.rllib.algorithms.dqn import DQNConfig

from rsc_env import TEAM_TRAINING_PARAMS, TradingEnv, prepare_market_data
from rsc_policy import StrategyAgentConfig


def _rate(algo, steps: int, counter) -> float:
    algo.train()  # warm-up iteration (replay fill, first sync)
    start_steps, t0 = counter(algo), time.perf_counter()
    while counter(algo) - start_steps < steps:
        algo.train()
    rate = (counter(algo) - start_steps) / (time.perf_counter() - t0)
    algo.stop()
    return rate


def main(steps: int = 3000, envs: int = 4) -> None:
    torch.set_num_threads(1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    df = prepare_market_data("sp500", start="2010-01-01", end="2014-12-31")
    env_config = {"df": df, **TEAM_TRAINING_PARAMS, "initial_balance": 100_000.0,
                  "step_info": False}
    runners = {"num_env_runners": 2, "num_envs_per_env_runner": envs,
               "rollout_fragment_length": 64}
    ours = (StrategyAgentConfig().environment(TradingEnv, env_config=env_config)
            .env_runners(**runners).training(exact=False, gamma=0.9, target_update_freq=50)
            .reporting(min_sample_timesteps_per_iteration=512).debugging(seed=0))
    stock = (DQNConfig().environment(TradingEnv, env_config=env_config).env_runners(**runners)
             .training(gamma=0.9, lr=1e-3, train_batch_size=32, training_intensity=32.0,
                       target_network_update_freq=50, num_steps_sampled_before_learning_starts=32,
                       double_q=False, dueling=False, n_step=1,
                       replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": 2000})
             .rl_module(model_config={"fcnet_hiddens": [64, 64], "fcnet_activation": "relu"})
             .reporting(min_sample_timesteps_per_iteration=512).debugging(seed=0))
    ours_rate = _rate(ours.build_algo(), steps, lambda a: a.global_env_steps)

    def stock_steps(algo) -> int:
        return int(algo.metrics.peek(("env_runners", "num_env_steps_sampled_lifetime"),
                                     default=0))

    stock_rate = _rate(stock.build_algo(), steps, stock_steps)
    print(f"StrategyAgentAlgo: {ours_rate:,.0f} env steps/s")
    print(f"stock RLlib DQN:   {stock_rate:,.0f} env steps/s")
    print(f"ratio:             {ours_rate / stock_rate:.1f}x")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
