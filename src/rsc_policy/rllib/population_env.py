"""``PopulationEnv``: one env copy per population member, stepped together (no Ray import).

An EnvRunner of a population runs this env: its observation is the ``[K, obs_dim]`` stack of
the members' observations, its action one discrete action per member. A member whose
episode ends is reset at once (as ``train_sequential`` resets its env); its reward, done
flag, terminal observation and terminal info come back in ``info``, so the algorithm can
rebuild each member's own transitions and log each member's episodes. The env itself never
ends (members end episodes at different bars), so RLlib never runs an extra forward pass on
a terminal observation here. The scalar reward RLlib sees is the members' sum (for RLlib's
own episode-return metric only; learning uses ``info["rewards"]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

#: ``env_config`` keys of a :class:`PopulationEnv`.
MEMBER_ENVS, MEMBER_SEEDS, MEMBER_NAMES, ENV_CLASS = (
    "member_envs", "member_seeds", "member_names", "env_class")


class MemberEnvError(RuntimeError):
    """An error raised by one member's env, naming the member."""


def make_member_env(env_class: Any, config: Mapping[str, Any]) -> gym.Env:
    """One member's env: ``env_class(config)`` (default :class:`rsc_env.TradingEnv`)."""
    if env_class is None:
        from rsc_env import TradingEnv

        env_class = TradingEnv
    return env_class(dict(config))


class PopulationEnv(gym.Env):
    """K member envs in lock-step. ``env_config``: ``member_envs`` (each member's env config),
    ``member_seeds`` (the seed of each member's first reset), ``member_names`` (for errors),
    ``env_class`` (default
    :class:`rsc_env.TradingEnv`)."""

    def __init__(self, env_config: Mapping[str, Any]) -> None:
        configs: Sequence[Mapping[str, Any]] = env_config[MEMBER_ENVS]
        self.seeds = [int(s) for s in env_config[MEMBER_SEEDS]]
        self.names = list(env_config.get(MEMBER_NAMES) or
                          [f"member-{k}" for k in range(len(configs))])
        self.envs = [self._member(k, make_member_env, env_config.get(ENV_CLASS), cfg)
                     for k, cfg in enumerate(configs)]
        shapes = {e.observation_space.shape for e in self.envs}
        if len(shapes) != 1:
            raise ValueError(f"population members must share one observation shape, got "
                             f"{sorted(shapes)} (window_size and observe_position decide it)")
        self.k = len(self.envs)
        n = int(self.envs[0].action_space.n)
        dim = int(np.prod(shapes.pop()))
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.k, dim), np.float32)
        self.action_space = gym.spaces.MultiDiscrete([n] * self.k)
        self._reset_once = False
        self._obs = np.zeros((self.k, dim), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every member; the first reset of member ``k`` is seeded with its own seed
        (``train_sequential``'s first reset), later ones are not."""
        for k, env in enumerate(self.envs):
            self._obs[k] = self._member(k, env.reset,
                                        seed=None if self._reset_once else self.seeds[k])[0]
        self._reset_once = True
        return self._obs.copy(), {}

    def _member(self, k: int, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise MemberEnvError(f"population member {k} ({self.names[k]}): "
                                 f"{type(exc).__name__}: {exc}") from exc

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        actions = np.asarray(action, dtype=np.int64).reshape(self.k)
        rewards = np.empty(self.k)
        dones = np.zeros(self.k, dtype=bool)
        final = np.zeros_like(self._obs)  # terminal observations (rows of done members)
        finished: list[tuple[int, dict[str, Any]]] = []
        for k, env in enumerate(self.envs):
            obs, r, term, trunc, info = self._member(k, env.step, int(actions[k]))
            rewards[k] = r
            if term or trunc:
                dones[k] = True
                final[k] = obs
                finished.append((k, info))
                obs = self._member(k, env.reset)[0]
            self._obs[k] = obs
        return self._obs.copy(), float(rewards.sum()), False, False, {
            "rewards": rewards, "dones": dones, "final_obs": final, "finished": finished}
