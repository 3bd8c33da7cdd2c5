"""``PopulationQModule``: the Q-networks of all population members as one ``[K, P]`` tensor.

Acting for a vector step is two compiled calls whatever K is: one greedy forward of every
(env, member) row through its member's network
(:func:`~rsc_policy.agent.kernels.population_greedy`) and one keyed epsilon-greedy draw per
row (:func:`~rsc_policy.agent.exploration.keyed_epsilon_greedy`). Row ``(j, k)`` (env ``j``
of the runner, member ``k``) is keyed on ``(seed_k, runner_index, key, j)``, where ``key`` is
the runner's own count of vector steps, handed in by the algorithm with each request
(:meth:`begin_sample`) and advanced once per exploration forward -- in exact mode that is the
member's selection count, the key ``train_sequential`` uses. Epsilon of member ``k`` is its
own schedule at RLlib's global step ``t`` (every population env step is one action of every
member).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.annotations import override

from rsc_policy.agent.exploration import keyed_epsilon_greedy, seed_keys
from rsc_policy.agent.kernels import population_greedy
from rsc_policy.agent.population import Member, initial_weights
from rsc_policy.agent.schedule import build_schedule

#: ``model_config`` key with the members (list of :class:`Member` dicts).
MEMBERS = "population_members"


class PopulationQModule(TorchRLModule, InferenceOnlyAPI):
    """``params`` (``[K, P]``, the members' flat Q-networks) and ``target`` (learner only)."""

    @override(TorchRLModule)
    def setup(self) -> None:
        cfg: dict[str, Any] = dict(self.model_config or {})
        members = [Member.coerce(m) for m in cfg[MEMBERS]]
        self.k = len(members)
        obs_dim = int(self.observation_space.shape[-1])
        self.n_actions = int(self.action_space.nvec[0])
        self.dims = (obs_dim, 64, 64, self.n_actions)
        self.seeds = seed_keys([m.seed for m in members])
        init = torch.from_numpy(initial_weights(obs_dim, self.n_actions,
                                                [m.seed for m in members]))
        self.params = torch.nn.Parameter(init, requires_grad=False)
        self.target = torch.nn.Parameter(init.clone(), requires_grad=False)
        self.schedules = [build_schedule(p.epsilon_schedule, p.epsilon, p.epsilon_decay,
                                         p.epsilon_min, fraction=p.epsilon_fraction,
                                         total_steps=p.epsilon_total_steps)
                          for p in (m.params() for m in members)]
        self.runner_index = 0
        self._key = 0

    @override(InferenceOnlyAPI)
    def get_non_inference_attributes(self) -> list[str]:
        return ["target"]

    def begin_sample(self, runner_index: int, key_base: int) -> None:
        """The key context of the next ``EnvRunner.sample`` call: this runner's index and its
        vector steps so far (the algorithm's per-runner counter)."""
        self.runner_index, self._key = int(runner_index), int(key_base)

    def greedy(self, obs: Any) -> np.ndarray:
        """``[B, K]`` greedy actions for ``[B, K, obs_dim]`` observations."""
        x = np.asarray(obs.numpy() if isinstance(obs, torch.Tensor) else obs, np.float32)
        b = x.shape[0]
        rows = np.ascontiguousarray(x.reshape(b * self.k, -1))
        members = np.tile(np.arange(self.k, dtype=np.int64), b)
        return population_greedy(rows, members, self.params.detach().numpy(),
                                 *self.dims).reshape(b, self.k)

    @override(TorchRLModule)
    def _forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {Columns.ACTIONS: torch.from_numpy(self.greedy(batch[Columns.OBS]))}

    @override(TorchRLModule)
    def _forward_exploration(self, batch: dict[str, Any], t: int = 0, **kwargs: Any
                             ) -> dict[str, Any]:
        greedy = self.greedy(batch[Columns.OBS])
        b, k = greedy.shape
        eps = np.array([s(int(t)) for s in self.schedules])
        n = b * k
        out = keyed_epsilon_greedy(
            greedy.reshape(n), np.tile(eps, b), np.tile(self.seeds, b),
            np.full(n, self.runner_index, np.int64), np.full(n, self._key, np.int64),
            np.repeat(np.arange(b, dtype=np.int64), k), self.n_actions)
        self._key += 1
        return {Columns.ACTIONS: torch.from_numpy(out.reshape(b, k))}

    @override(TorchRLModule)
    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        raise NotImplementedError("PopulationLearner trains without forward_train")
