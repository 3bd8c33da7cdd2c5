"""Exploration draws: the vectorised draw equals the scalar one bit for bit, and with several
runners no exploration key is ever used twice."""

from __future__ import annotations

from typing import Any

import pytest
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rsc_policy import StrategyAgentConfig
from rsc_policy.agent.exploration import exploration_draw, exploration_draws
from rsc_policy.rllib.module import StrategyQModule


@pytest.mark.parametrize("seed", [0, 7, 2**63 + 5])
@pytest.mark.parametrize("runner", [0, 1, 5])
@pytest.mark.parametrize("t", [0, 1, 12_345, 2**40 + 3])
def test_vectorised_draws_are_bit_identical_to_the_scalar_function(seed, runner, t):
    u, a = exploration_draws(seed, runner, t, 16)
    for j in range(16):
        assert (u[j], a[j]) == exploration_draw(seed, runner, t, j)


class KeyRecordingModule(StrategyQModule):
    """Records ``(runner, key, env index)`` of every draw whose action reaches the env."""

    def _forward_exploration(self, batch: dict[str, Any], t: int = 0, **kwargs: Any):
        key = self.exploration_key
        self.__dict__.setdefault("draws", []).append((self.runner_index, key, len(batch["obs"])))
        return super()._forward_exploration(batch, t=t, **kwargs)


def test_two_runners_never_repeat_an_exploration_key(rsc_env_name, train_env_config):
    # rsc-train's shape in small: each runner re-requested after only its own fragment was
    # ingested, many times; keys (runner, k, env) must all be distinct.
    config = (StrategyAgentConfig()
              .environment(rsc_env_name, env_config=train_env_config)
              .env_runners(num_env_runners=2, num_envs_per_env_runner=4,
                           rollout_fragment_length=8)
              .rl_module(rl_module_spec=RLModuleSpec(module_class=KeyRecordingModule))
              .reporting(min_sample_timesteps_per_iteration=32)
              .debugging(seed=4))
    algo = config.build_algo()
    try:
        for _ in range(12):  # >= 10 requests per runner
            algo.train()
        logs = algo.env_runner_group.foreach_env_runner(
            lambda r: r.module.__dict__.get("draws", []), local_env_runner=False)
        keys = [(runner, k, j) for log in logs for runner, k, n in log for j in range(n)]
        requests = [len(log) for log in logs]
        assert all(r >= 10 for r in requests), requests
        # A vector step right after all envs ended draws the same key as the next one (RLlib
        # discards those actions); every other key is unique.
        distinct = {(runner, k) for log in logs for runner, k, _ in log}
        repeats = sum(len(log) for log in logs) - len(distinct)
        episode_ends = algo.global_env_steps // 251 + 2
        assert repeats <= episode_ends
        assert len({(r, j) for r, _, j in keys}) == 2 * 4
        assert {r for r, _, _ in keys} == {1, 2}
    finally:
        algo.stop()
