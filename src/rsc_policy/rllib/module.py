"""The RLModule: Q-network + target network, epsilon-greedy keyed on the global step ``t``."""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.annotations import override

from rsc_policy.agent.exploration import epsilon_greedy
from rsc_policy.agent.network import build_qnet
from rsc_policy.agent.schedule import EpsilonSchedule

QF_PREDS = "qf_preds"


class StrategyQModule(TorchRLModule, InferenceOnlyAPI):
    """``q`` (the Q-net of :func:`rsc_policy.agent.network.build_qnet`) and ``target``
    (learner only).

    ``model_config`` keys: ``seed`` (weight init and exploration key), ``epsilon``,
    ``epsilon_decay``, ``epsilon_min``. ``runner_index`` is set by the algorithm on every
    env runner so that parallel runners draw different random numbers.
    """

    @override(TorchRLModule)
    def setup(self) -> None:
        cfg: dict[str, Any] = self.model_config or {}
        obs_dim = int(self.observation_space.shape[0])
        n_actions = int(self.action_space.n)
        self.seed = int(cfg.get("seed", 0))
        self.runner_index = 0
        self.q = build_qnet(obs_dim, n_actions, self.seed)
        # Exact copy at init (same seeded draw); dropped on inference-only (runner) copies.
        self.target = build_qnet(obs_dim, n_actions, self.seed)
        self.schedule = EpsilonSchedule(cfg.get("epsilon", 1.0), cfg.get("epsilon_decay", 0.995),
                                        cfg.get("epsilon_min", 0.01))

    @override(InferenceOnlyAPI)
    def get_non_inference_attributes(self) -> list[str]:
        return ["target"]

    @override(TorchRLModule)
    def _forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        with torch.no_grad():
            return {Columns.ACTIONS: self.q(batch[Columns.OBS]).argmax(dim=1)}

    @override(TorchRLModule)
    def _forward_exploration(self, batch: dict[str, Any], t: int = 0, **kwargs: Any
                             ) -> dict[str, Any]:
        """Epsilon-greedy with ``epsilon(t)``; row ``j``'s draw is keyed on
        ``(seed, runner_index, t, j)`` (see :mod:`rsc_policy.agent.exploration`)."""
        with torch.no_grad():
            greedy = self.q(batch[Columns.OBS]).argmax(dim=1).tolist()
        actions = epsilon_greedy(greedy, self.schedule(int(t)), self.seed, self.runner_index,
                                 int(t), int(self.action_space.n))
        return {Columns.ACTIONS: torch.tensor(actions, dtype=torch.int64)}

    @override(TorchRLModule)
    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {QF_PREDS: self.q(batch[Columns.OBS])}

    def set_runner_index(self, index: int) -> None:
        self.runner_index = int(index)
