"""The RLModule: Q-network + target network, epsilon-greedy with keys that never repeat."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.annotations import override

from rsc_policy.agent.exploration import epsilon_greedy
from rsc_policy.agent.kernels import greedy_actions
from rsc_policy.agent.network import build_qnet, is_default_shape
from rsc_policy.agent.params import DEFAULTS
from rsc_policy.agent.schedule import EpisodeSchedule, build_schedule
from rsc_policy.rllib.sampling import ACTING

QF_PREDS = "qf_preds"
#: The team's network: RLlib's ``fcnet_hiddens`` / ``fcnet_activation`` default here to these.
DEFAULT_HIDDENS = (64, 64)
DEFAULT_ACTIVATION = "relu"


class StrategyQModule(TorchRLModule, InferenceOnlyAPI):
    """``q`` (an MLP from :func:`rsc_policy.agent.network.build_qnet`) and ``target``
    (learner only).

    ``model_config`` keys: ``fcnet_hiddens`` (default ``[64, 64]``), ``fcnet_activation``
    (default ``"relu"``), ``seed`` (weight init and exploration key), ``epsilon``,
    ``epsilon_decay``, ``epsilon_min``, ``epsilon_schedule``, ``epsilon_fraction``,
    ``epsilon_total_steps`` (see :func:`rsc_policy.agent.schedule.build_schedule`).

    Exploration keys: the draw for env ``j`` of a vector step is keyed on
    ``(seed, runner_index, k, j)`` where ``k`` is the runner's own count of env steps taken
    (:meth:`begin_sample` hands in the algorithm's per-runner counter with each request, kept
    in its checkpointed state; the module then advances it by the envs that act in each
    vector step, :class:`~rsc_policy.rllib.sampling.ActingEnvs`), so no key repeats across
    requests, runners or restarts, and RLlib's discarded action at an episode end uses no key.
    Epsilon is ``epsilon(t)`` of the global step estimate ``t`` RLlib passes; the
    ``per_episode`` schedule counts ``t // episode_length`` episodes (the runner hands the
    env's fixed episode length in with :meth:`set_episode_length`).
    """

    @override(TorchRLModule)
    def setup(self) -> None:
        cfg: dict[str, Any] = dict(self.model_config or {})
        obs_dim = int(self.observation_space.shape[0])
        n_actions = int(self.action_space.n)
        self.seed = int(cfg.get("seed", 0))
        hiddens = list(cfg.get("fcnet_hiddens") or DEFAULT_HIDDENS)
        activation = cfg.get("fcnet_activation") or DEFAULT_ACTIVATION
        self.q = build_qnet(obs_dim, n_actions, self.seed, hiddens=hiddens,
                            activation=activation)
        # Exact copy at init (same seeded draw); dropped on inference-only (runner) copies.
        self.target = build_qnet(obs_dim, n_actions, self.seed, hiddens=hiddens,
                                 activation=activation)
        d = DEFAULTS
        self.schedule = build_schedule(
            cfg.get("epsilon_schedule", d.epsilon_schedule), cfg.get("epsilon", d.epsilon),
            cfg.get("epsilon_decay", d.epsilon_decay), cfg.get("epsilon_min", d.epsilon_min),
            fraction=cfg.get("epsilon_fraction", d.epsilon_fraction),
            total_steps=cfg.get("epsilon_total_steps", d.epsilon_total_steps))
        self._fused = is_default_shape(self.q)  # acting through the fused forward
        self.runner_index = 0
        self._key = 0  # this runner's env steps so far: the next vector step's key

    @override(InferenceOnlyAPI)
    def get_non_inference_attributes(self) -> list[str]:
        return ["target"]

    def begin_sample(self, runner_index: int, key_base: int) -> None:
        """Set the exploration key context of the next ``EnvRunner.sample`` call: the
        runner's index and its env steps so far (the algorithm's per-runner counter)."""
        self.runner_index, self._key = int(runner_index), int(key_base)

    @property
    def needs_episode_length(self) -> bool:
        """Whether the ``per_episode`` schedule still waits for the env's episode length."""
        return isinstance(self.schedule, EpisodeSchedule) and self.schedule.episode_length is None

    def set_episode_length(self, length: int) -> None:
        """Give the ``per_episode`` schedule the env's fixed episode length (in steps)."""
        if isinstance(self.schedule, EpisodeSchedule):
            if int(length) < 1:
                raise ValueError(f"episode_length must be >= 1, got {length!r}")
            self.schedule.episode_length = int(length)

    def greedy(self, obs: Any) -> np.ndarray:
        """``argmax_a Q(obs, a)`` per row: one fused call for the default shape, else torch."""
        if self._fused:
            x = np.ascontiguousarray(obs.numpy() if isinstance(obs, torch.Tensor) else obs,
                                     dtype=np.float32)
            return greedy_actions(x, *(w.detach().numpy() for w in self.q.parameters()))
        with torch.no_grad():
            return self.q(torch.as_tensor(obs)).argmax(dim=1).numpy()

    @override(TorchRLModule)
    def _forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {Columns.ACTIONS: torch.from_numpy(self.greedy(batch[Columns.OBS]))}

    @override(TorchRLModule)
    def _forward_exploration(self, batch: dict[str, Any], t: int = 0, **kwargs: Any
                             ) -> dict[str, Any]:
        """Epsilon-greedy with ``epsilon(t)``; row ``j`` is keyed on
        ``(seed, runner_index, k, j)`` with ``k`` this runner's env steps so far, then ``k``
        advances by the rows whose env acts (see the class docstring)."""
        actions = epsilon_greedy(self.greedy(batch[Columns.OBS]), self.schedule(int(t)),
                                 self.seed, self.runner_index, self._key,
                                 int(self.action_space.n))
        acting = batch.get(ACTING)
        self._key += len(actions) if acting is None else int(np.asarray(acting).sum())
        return {Columns.ACTIONS: torch.from_numpy(np.ascontiguousarray(actions))}

    @property
    def exploration_key(self) -> int:
        """The key ``k`` of the next exploration forward pass."""
        return self._key

    @override(TorchRLModule)
    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {QF_PREDS: self.q(batch[Columns.OBS])}
