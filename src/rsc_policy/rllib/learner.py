"""The Learner: replay memory, the DQN learning step, target copy every N learning steps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.learner import Learner
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import ALL_MODULES, NUM_ENV_STEPS_TRAINED_LIFETIME
from ray.rllib.utils.typing import ModuleID, StateDict, TensorType

from rsc_policy.agent.loss import dqn_loss
from rsc_policy.agent.network import is_default_shape
from rsc_policy.agent.update import DQNUpdate
from rsc_policy.rllib.replay_component import COMPONENT_REPLAY, ReplayComponent

if TYPE_CHECKING:
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

    from rsc_policy.agent.replay import ReplayMemory

NUM_LEARNING_STEPS = "num_learning_steps"
NUM_LEARNING_STEPS_LIFETIME = "num_learning_steps_lifetime"
#: ``timesteps`` key of ``learner_group.update``: learning steps owed for this round.
LEARNING_STEPS_OWED = "rsc_learning_steps_owed"
TRANSITION_COLUMNS = (Columns.OBS, Columns.ACTIONS, Columns.REWARDS, Columns.NEXT_OBS,
                      Columns.TERMINATEDS)


def round_columns(batch: Any, training_data: Any) -> dict[str, Any] | None:
    """The transition columns a ``Learner.update`` call brings (from ``batch`` or RLlib's
    ``training_data``), or ``None`` when the round brings none."""
    if training_data is not None:
        training_data.solve_refs()
        batch = training_data.batch
    return None if batch is None else dict(batch.policy_batches[DEFAULT_MODULE_ID])


def log_round(metrics: Any, *, loss: float | None, learning_steps: int,
              env_steps_trained: int, replay_size: float) -> dict[str, Any]:
    """Log one round's learner metrics (the same keys for one agent and a population) and
    return RLlib's reduced results; ``loss`` ``None``: no learning step this round."""
    if loss is not None:
        metrics.log_value((DEFAULT_MODULE_ID, "loss"), loss, window=1)
    metrics.log_value((ALL_MODULES, NUM_LEARNING_STEPS_LIFETIME), learning_steps,
                      reduce="lifetime_sum")
    metrics.log_value((ALL_MODULES, NUM_ENV_STEPS_TRAINED_LIFETIME), env_steps_trained,
                      reduce="lifetime_sum")
    metrics.log_value((ALL_MODULES, "replay_size"), replay_size, window=1)
    return metrics.reduce()


class StrategyLearner(TorchLearner):
    """``TorchLearner`` that owns the replay memory and runs the DQN learning step.

    The algorithm calls ``learner_group.update(batch=new transitions,
    timesteps={LEARNING_STEPS_OWED: n, ...})`` once per round: :meth:`update` stores the
    transitions (columns ``obs, actions, rewards, new_obs, terminateds``) and runs ``n``
    learning steps on batches sampled from the memory, with no per-step RLlib overhead. This
    works for a local learner (``num_learners=0``) and a remote one (``num_learners=1``).

    The step is :class:`rsc_policy.agent.update.DQNUpdate` (one fused compiled call, with
    ``grad_clip``, ``double_q`` and Huber) for two-hidden-layer ReLU networks on CPU; any other
    ``fcnet_hiddens``/``fcnet_activation``, a GPU learner, or ``fused_learning_step=False``
    trains through RLlib's generic autograd path (:meth:`compute_loss_for_module`,
    ``torch.optim.Adam``, RLlib's gradient clipping) -- the same loss, tested equal.
    """

    dqn: DQNUpdate | None = None

    @override(TorchLearner)
    def build(self) -> None:
        torch.set_num_threads(1)
        super().build()
        q = self.module[DEFAULT_MODULE_ID].q
        self.replay = ReplayComponent(self.config.memory_size, q[0].in_features,
                                      seed=self.config.seed_or_zero)
        self.num_learning_steps = 0
        self._generic_steps = 0  # target-sync counter of the autograd path

    @property
    def memory(self) -> ReplayMemory:
        return self.replay.memory

    @property
    def memory_sizes(self) -> np.ndarray:
        """Transitions held (one entry: a single agent; see ``PopulationLearner``)."""
        return np.array([len(self.memory)])

    @property
    def uses_fast_step(self) -> bool:
        return self.dqn is not None

    @override(TorchLearner)
    def configure_optimizers_for_module(self, module_id: ModuleID,
                                        config: AlgorithmConfig = None) -> None:
        module = self.module[module_id]
        cfg = config or self.config
        if cfg.fused_learning_step and is_default_shape(module.q) and self.device.type == "cpu":
            self.dqn = DQNUpdate(module.q, module.target, lr=cfg.lr, gamma=cfg.gamma,
                                 target_update_freq=cfg.target_update_freq,
                                 grad_clip=cfg.grad_clip, grad_clip_by=cfg.grad_clip_by,
                                 double_q=cfg.double_q, huber=cfg.td_error_loss_fn == "huber")
            optimizer, params = self.dqn.optimizer, [self.dqn.params]
        else:
            self.dqn = None
            params = list(module.q.parameters())
            optimizer = torch.optim.Adam(params, lr=cfg.lr)
        self.register_optimizer(module_id=module_id, optimizer=optimizer, params=params)

    # ------------------------------------------------------------------ one round
    @override(Learner)
    def update(self, batch: Any = None, *, training_data: Any = None,
               timesteps: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Store the round's new transitions, then run the learning steps owed."""
        columns = round_columns(batch, training_data)
        if columns is not None:
            self.add_transitions(columns)
        losses = self.learn(int((timesteps or {}).get(LEARNING_STEPS_OWED, 0)))
        return log_round(self.metrics, loss=float(np.mean(losses)) if losses else None,
                         learning_steps=len(losses),
                         env_steps_trained=len(losses) * self.config.batch_size,
                         replay_size=len(self.memory))

    def add_transitions(self, columns: dict[str, Any]) -> None:
        """Append transitions (``obs, actions, rewards, new_obs, terminateds``) in order."""
        obs, actions, rewards, next_obs, dones = (np.asarray(columns[c])
                                                  for c in TRANSITION_COLUMNS)
        self.memory.add_batch(obs, actions, rewards, next_obs, dones)

    def learn(self, num_steps: int) -> list[float]:
        """``num_steps`` learning steps on batches of ``batch_size`` sampled from the memory."""
        losses: list[Any] = []
        b = self.config.batch_size
        torch.set_flush_denormal(True)  # denormals slow the step ~2.5x (DQNUpdate's docstring)
        for _ in range(num_steps):
            rows = torch.from_numpy(self.memory.sample(b))
            if self.dqn is not None:
                losses.append(self.dqn(rows))
            else:
                losses.append(self._autograd_step(rows.to(self.device)))
        self.num_learning_steps += num_steps
        return [float(x) for x in losses]

    def _autograd_step(self, rows: torch.Tensor) -> torch.Tensor:
        """RLlib's generic path on one replay batch: loss, gradients, clipping, Adam."""
        d = self.module[DEFAULT_MODULE_ID].q[0].in_features
        batch = {DEFAULT_MODULE_ID: {
            Columns.OBS: rows[:, :d], Columns.NEXT_OBS: rows[:, d : 2 * d],
            Columns.ACTIONS: rows[:, 2 * d].long(), Columns.REWARDS: rows[:, 2 * d + 1],
            Columns.TERMINATEDS: rows[:, 2 * d + 2]}}
        fwd_out, loss_per_module = self._autograd_update(batch)
        self.after_gradient_based_update(timesteps={})
        return loss_per_module[DEFAULT_MODULE_ID].detach()

    def _autograd_update(self, batch: dict[str, Any]) -> tuple[Any, Any]:
        """Forward, loss, gradients, RLlib's postprocessing (clipping), optimizer step."""
        fwd_out = {mid: self.module[mid].forward_train(b) for mid, b in batch.items()}
        loss_per_module = {
            mid: self.compute_loss_for_module(module_id=mid, config=self.config,
                                              batch=batch[mid], fwd_out=fwd_out[mid])
            for mid in batch}
        gradients = self.compute_gradients(loss_per_module)
        postprocessed = self.postprocess_gradients(gradients)
        self.apply_gradients(postprocessed)
        return fwd_out, loss_per_module

    # ------------------------------------------------------------ generic path
    @override(TorchLearner)
    def compute_loss_for_module(self, *, module_id: ModuleID, config: AlgorithmConfig,
                                batch: dict[str, Any], fwd_out: dict[str, TensorType]
                                ) -> TensorType:
        """:func:`rsc_policy.agent.loss.dqn_loss` (the one written rule) on RLlib's batch."""
        module = self.module[module_id]
        done = batch[Columns.TERMINATEDS].float()
        if Columns.TRUNCATEDS in batch:
            done = torch.maximum(done, batch[Columns.TRUNCATEDS].float())
        return dqn_loss(module.q, module.target, fwd_out["qf_preds"], batch[Columns.ACTIONS],
                        batch[Columns.REWARDS], batch[Columns.NEXT_OBS], done, config.gamma,
                        double_q=config.double_q, huber=config.td_error_loss_fn == "huber")

    @override(Learner)
    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        """The generic path's hard target copy every ``target_update_freq`` learning steps
        (the fused step copies inside :class:`DQNUpdate`)."""
        super().after_gradient_based_update(timesteps=timesteps)
        self._generic_steps += 1
        if self._generic_steps % self.config.target_update_freq == 0:
            module = self.module[DEFAULT_MODULE_ID]
            module.target.load_state_dict(module.q.state_dict())

    # ---------------------------------------------------------------- state
    @property
    def target_sync_counter(self) -> int:
        return self.dqn.num_updates if self.dqn is not None else self._generic_steps

    @override(TorchLearner)
    def get_checkpointable_components(self) -> list[tuple[str, Any]]:
        comps = super().get_checkpointable_components()
        if self.config.store_buffer_in_checkpoints:
            comps.append((COMPONENT_REPLAY, self.replay))
        return comps

    @override(TorchLearner)
    def get_state(self, components: Any = None, *, not_components: Any = None,
                  **kwargs: Any) -> StateDict:
        state = super().get_state(components, not_components=not_components, **kwargs)
        state[NUM_LEARNING_STEPS] = self.num_learning_steps
        state["target_sync_counter"] = self.target_sync_counter
        if self.config.store_buffer_in_checkpoints and self._check_component(
                COMPONENT_REPLAY, components, not_components):
            state[COMPONENT_REPLAY] = self.replay.get_state()
        return state

    @override(TorchLearner)
    def set_state(self, state: StateDict) -> None:
        """Restore; then apply *this* config's ``lr`` (a restored Adam state carries the old
        one: PBT's exploit and ``--resume`` with a new ``lr`` must train with the new value)."""
        super().set_state(state)
        if COMPONENT_REPLAY in state:
            self.replay.set_state(state[COMPONENT_REPLAY])
        if NUM_LEARNING_STEPS in state:
            self.num_learning_steps = int(state[NUM_LEARNING_STEPS])
        if "target_sync_counter" in state:
            if self.dqn is not None:
                self.dqn.num_updates = int(state["target_sync_counter"])
            else:
                self._generic_steps = int(state["target_sync_counter"])
        for _, optimizer in self.get_optimizers_for_module(DEFAULT_MODULE_ID):
            for group in optimizer.param_groups:
                group["lr"] = self.config.lr

    def current_lr(self) -> float:
        """The learning rate the optimizer will use for the next step."""
        _, optimizer = self.get_optimizers_for_module(DEFAULT_MODULE_ID)[0]
        return float(optimizer.param_groups[0]["lr"])
