"""``PopulationLearner``: every member's replay, Adam state and learning steps, one call.

The algorithm calls ``learner_group.update(batch=new transitions (with a ``member`` column),
timesteps={LEARNING_STEPS_OWED: [steps owed per member], ...})`` once per round, exactly as
for one agent. The learner stores each member's transitions in its own ring and runs all owed
steps of all members in one compiled call (:meth:`rsc_policy.agent.population.Population.learn`:
``numba.prange`` over members on CPU). On a GPU learner (``num_gpus_per_learner=1``) or with
``fused_learning_step=False`` the same batches go through the batched autograd step of
:func:`rsc_policy.agent.loss.population_td_step` instead (tested equal on CPU).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.learner.learner import Learner
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.annotations import override
from ray.rllib.utils.typing import ModuleID, StateDict

from rsc_policy.agent import kernels
from rsc_policy.agent.population import Population
from rsc_policy.rllib.learner import (
    LEARNING_STEPS_OWED,
    TRANSITION_COLUMNS,
    log_round,
    round_columns,
)

MEMBER_COLUMN = "member"
POPULATION_STATE = "population"
ROLLOUT_STATE = "rollout"
#: ``timesteps`` key of ``learner_group.update``: env steps each member's env takes in the
#: learner (``population(rollout="learner")``), one learning step each.
ROLLOUT_STEPS = "rsc_rollout_steps"
#: ``timesteps`` key: whole episodes each member's env walks in the learner (each member to
#: the end of that many of its own episodes; ``population(episodes_per_iteration=N)``).
ROLLOUT_EPISODES = "rsc_rollout_episodes"


class PopulationLearner(TorchLearner):
    """``TorchLearner`` that owns a :class:`~rsc_policy.agent.population.Population`."""

    @override(TorchLearner)
    def build(self) -> None:
        torch.set_num_threads(1)
        super().build()
        module = self.module[DEFAULT_MODULE_ID]
        members = self.config.members()
        on_cpu = self.device.type == "cpu"
        self.population = Population(
            module.dims[0], [m.params() for m in members], [m.seed for m in members],
            module.n_actions,
            weights=module.params.data.numpy() if on_cpu else None,
            target=module.target.data.numpy() if on_cpu else None)
        if self.config.grad_clip is not None:
            kind = (kernels.CLIP_VALUE if self.config.grad_clip_by == "value"
                    else kernels.CLIP_NORM)
            self.population.clip_kind[:] = kind
            self.population.clip[:] = float(self.config.grad_clip)
        self.population.threads = self.config.learner_threads
        self.fused = on_cpu and self.config.fused_learning_step
        self.num_learning_steps = 0
        self.rollout = (self._build_rollout() if self.config.population_rollout == "learner"
                        else None)
        self._finished: list[tuple[int, float, float]] = []  # (member, return, final value)
        self._round_steps = np.zeros(self.population.k, dtype=np.int64)  # env steps since

    def _build_rollout(self) -> Any:
        """Every member's :class:`rsc_env.TradingEnv`, built as the env runner builds them
        (:class:`~rsc_policy.rllib.population_env.PopulationEnv`: an env that cannot be
        built names its member), in a
        :class:`~rsc_policy.agent.compiled_loop.CompiledRollout`."""
        from rsc_policy.agent.compiled_loop import CompiledRollout
        from rsc_policy.rllib.population_env import PopulationEnv

        return CompiledRollout(self.population, PopulationEnv(self.config.env_config).envs)

    @override(TorchLearner)
    def configure_optimizers_for_module(self, module_id: ModuleID,
                                        config: Any = None) -> None:
        """No torch optimizer: each member's Adam state lives in the population's arrays (and
        in this learner's checkpointed state)."""

    @override(TorchLearner)
    def compute_loss_for_module(self, *, module_id: ModuleID, config: Any, batch: Any,
                                fwd_out: Any) -> Any:
        raise NotImplementedError("PopulationLearner.learn runs the members' steps itself")

    # ------------------------------------------------------------------ one round
    @override(Learner)
    def update(self, batch: Any = None, *, training_data: Any = None,
               timesteps: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Store the round's transitions per member, then run the owed learning steps (with
        ``population(rollout="learner")``: step every member's env ``ROLLOUT_STEPS`` times
        here, one learning step each)."""
        if ROLLOUT_EPISODES in (timesteps or {}) or ROLLOUT_STEPS in (timesteps or {}):
            return self._rollout_round(timesteps)
        columns = round_columns(batch, training_data)
        if columns is not None:
            self.add_transitions(columns)
        owed = (timesteps or {}).get(LEARNING_STEPS_OWED, 0)
        steps = np.broadcast_to(np.asarray(owed, dtype=np.int64), (self.population.k,))
        losses = self.learn(steps)
        done = int(steps.sum())
        return log_round(self.metrics, loss=float(np.nanmean(losses)) if done else None,
                         learning_steps=done,
                         env_steps_trained=int((steps * self.population.batch_size).sum()),
                         replay_size=float(self.population.mem_size.mean()))

    def _rollout_round(self, timesteps: dict[str, Any]) -> dict[str, Any]:
        """``ROLLOUT_STEPS`` env steps of every member in the compiled rollout, or each
        member to the end of its ``ROLLOUT_EPISODES``-th next episode; the finished episodes
        and the steps taken wait for :meth:`pop_finished_episodes`."""
        if self.rollout is None:
            raise RuntimeError("a rollout round needs population(rollout='learner')")
        if ROLLOUT_EPISODES in timesteps:
            steps = self.rollout.steps_to_episode_end(int(timesteps[ROLLOUT_EPISODES]))
        else:
            steps = np.full(self.population.k, int(timesteps[ROLLOUT_STEPS]), dtype=np.int64)
        out = self.rollout.advance(steps, threads=self.population.threads)
        self._round_steps = self._round_steps + steps
        rewards, values = out["episode_reward"], out["episode_value"]
        for k, e in zip(*np.nonzero(~np.isnan(rewards)), strict=True):
            self._finished.append((int(k), float(rewards[k, e]), float(values[k, e])))
        learned = ~np.isnan(out["losses"])
        done = int(learned.sum())
        self.num_learning_steps += done
        return log_round(self.metrics, loss=float(np.mean(out["losses"][learned])) if done
                         else None, learning_steps=done,
                         env_steps_trained=int((learned.sum(axis=1)
                                                * self.population.batch_size).sum()),
                         replay_size=float(self.population.mem_size.mean()))

    def pop_finished_episodes(self) -> tuple[list[tuple[int, float, float]], np.ndarray]:
        """The rollout's episodes finished since the last call, ``(member, total reward,
        final portfolio value)`` in member order, and each member's env steps since then."""
        out, self._finished = self._finished, []
        steps, self._round_steps = self._round_steps, np.zeros(self.population.k, np.int64)
        return out, steps

    def add_transitions(self, columns: dict[str, Any]) -> None:
        """Append transitions (``obs, actions, rewards, new_obs, terminateds, member``)."""
        obs, actions, rewards, next_obs, dones = (np.asarray(columns[c])
                                                  for c in TRANSITION_COLUMNS)
        self.population.remember(np.asarray(columns[MEMBER_COLUMN]), obs, actions, rewards,
                                 next_obs, dones)

    def learn(self, steps: np.ndarray) -> np.ndarray:
        """``steps[k]`` learning steps of each member; the losses ``[K, max(steps)]``."""
        if self.fused:
            losses = self.population.learn(steps)
        else:
            from rsc_policy.agent.loss import population_learn_torch

            losses = population_learn_torch(self.population, steps, self.device)
            module = self.module[DEFAULT_MODULE_ID]
            if module.params.device.type != "cpu":  # on CPU the arrays alias the module
                with torch.no_grad():
                    module.params.copy_(torch.from_numpy(self.population.params))
                    module.target.copy_(torch.from_numpy(self.population.target))
        self.num_learning_steps += int(np.asarray(steps).sum())
        return losses

    # ---------------------------------------------------------------- state
    @override(TorchLearner)
    def get_state(self, components: Any = None, *, not_components: Any = None,
                  **kwargs: Any) -> StateDict:
        state = super().get_state(components, not_components=not_components, **kwargs)
        if self._check_component(POPULATION_STATE, components, not_components):
            pop = self.population.get_state()
            for name in ("params", "target"):  # the RLModule holds them
                pop.pop(name)
            if not self.config.store_buffer_in_checkpoints:
                pop.pop("memory")
                pop["mem_size"] = np.zeros_like(pop["mem_size"])
                pop["mem_next"] = np.zeros_like(pop["mem_next"])
            state[POPULATION_STATE] = pop
            state["num_learning_steps"] = self.num_learning_steps
            if self.rollout is not None:  # where each member's env stands
                state[ROLLOUT_STATE] = self.rollout.get_state()
        return state

    @override(TorchLearner)
    def set_state(self, state: StateDict) -> None:
        super().set_state(state)
        if POPULATION_STATE in state:
            self.population.set_state(state[POPULATION_STATE])
            self.num_learning_steps = int(state.get("num_learning_steps", 0))
        if ROLLOUT_STATE in state and self.rollout is not None:
            self.rollout.set_state(state[ROLLOUT_STATE])

    @property
    def memory_sizes(self) -> np.ndarray:
        return self.population.mem_size.copy()

    def current_lr(self) -> float:
        """The members' mean learning rate (each member has its own: ``population.lr``)."""
        return float(self.population.lr.mean())
