"""Exact parity: StrategyAgentAlgo (exact mode, RLlib env runner + learner + replay) and the
plain sequential loop take the same actions, get the same rewards and losses, and end with the
same weights, over several episodes of real data."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rsc_policy import StrategyAgentConfig, train_sequential
from rsc_policy.rllib.learner import StrategyLearner
from rsc_policy.rllib.module import StrategyQModule

SEED = 21


class RecordingLearner(StrategyLearner):
    """Keeps every loss the fast learning path returns."""

    def learn(self, num_steps):
        losses = super().learn(num_steps)
        self.__dict__.setdefault("loss_log", []).extend(losses)
        return losses


class RecordingModule(StrategyQModule):
    """Keeps the ``t`` and the exploration key of every exploration forward pass."""

    def _forward_exploration(self, batch: dict[str, Any], t: int = 0, **kwargs: Any):
        self.__dict__.setdefault("t_log", []).append(int(t))
        self.__dict__.setdefault("key_log", []).append(self.exploration_key)
        return super()._forward_exploration(batch, t=t, **kwargs)


def test_parity_exact_mode_equals_sequential(rsc_env_name, train_env_config, learner_of):
    episode_len = 251  # 2015 slice
    iterations, per_iter = 4, 130  # 520 steps: two full episodes and part of a third
    config = (StrategyAgentConfig()
              .environment(rsc_env_name, env_config=train_env_config)
              .training(gamma=0.9, target_update_freq=50)
              .rl_module(rl_module_spec=RLModuleSpec(module_class=RecordingModule))
              .learners(learner_class=RecordingLearner)
              .reporting(min_sample_timesteps_per_iteration=per_iter)
              .debugging(seed=SEED))
    algo = config.build_algo()
    try:
        for _ in range(iterations):
            result = algo.train()
        n = iterations * per_iter
        assert algo.global_env_steps == n
        seq = train_sequential(train_env_config, env_steps=n, seed=SEED, gamma=0.9,
                               target_update_freq=50)
        assert len(seq.episodes) == 2 and n > 2 * episode_len

        learner = learner_of(algo)
        mem = learner.memory.transitions()  # memory_size 2000 > n: every transition, in order
        assert np.array_equal(mem["actions"], seq.actions)
        assert np.array_equal(mem["rewards"], seq.rewards.astype(np.float32))
        assert mem["dones"].sum() == 2
        seq_losses = [x for x in seq.losses if x is not None]
        assert learner.loss_log == seq_losses and len(seq_losses) == n - 32
        q = learner.module[DEFAULT_MODULE_ID]
        for name, value in q.q.state_dict().items():
            torch.testing.assert_close(value, seq.state_dict[name], rtol=0, atol=1e-6)
            assert torch.equal(value, seq.state_dict[name])  # in fact bit-identical
        for name, value in q.target.state_dict().items():
            assert torch.equal(value, seq.target_state_dict[name])
        assert learner.dqn.num_updates == seq.num_updates == algo.num_learning_steps

        # `t` and the exploration key seen by the module are the sequential selection index.
        # At each episode end RLlib makes one extra pass on the terminal obs with the next
        # step's `t` and key (its draw is discarded).
        module = algo.env_runner_group.local_env_runner.module
        ends = [episode_len, 2 * episode_len]
        expected = sorted(list(range(n)) + ends)
        assert module.t_log == expected
        assert module.key_log == expected
        assert result["rsc"]["epsilon"] == seq.agent.epsilon
        returns = algo.pop_episode_returns()
        assert returns == [e["total_reward"] for e in seq.episodes] and len(returns) == 2
        assert algo.pop_episode_returns() == []
        assert result["env_runners"]["num_episodes_lifetime"] == 2
    finally:
        algo.stop()
