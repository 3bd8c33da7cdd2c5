"""The Learner: Adam on the Q-net, the DQN loss, target copy every N learning steps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.learner import Learner
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.annotations import override
from ray.rllib.utils.typing import ModuleID, ParamDict, StateDict, TensorType

from rsc_policy.agent.update import DQNUpdate

if TYPE_CHECKING:
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

    from rsc_policy.agent.replay import ReplayMemory

NUM_LEARNING_STEPS = "num_learning_steps"


class StrategyLearner(TorchLearner):
    """``TorchLearner`` whose learning step is :class:`rsc_policy.agent.update.DQNUpdate`.

    Two entry points, same maths:

    * :meth:`learn_from_replay` -- the fast path the algorithm uses: ``n`` learning steps of
      ``batch_size`` sampled from the algorithm's replay memory, all inside this (local)
      learner, no per-call RLlib overhead. This is the path both trainers share.
    * RLlib's generic ``update(batch=...)`` with columns ``obs, new_obs, actions, rewards,
      terminateds`` goes through :meth:`compute_loss_for_module` (autograd) and
      :meth:`after_gradient_based_update` (step counter, target copy).

    The learning-step counter (target sync cadence) is part of the learner state.
    """

    dqn: DQNUpdate

    @override(TorchLearner)
    def build(self) -> None:
        torch.set_num_threads(1)
        super().build()

    @override(TorchLearner)
    def configure_optimizers_for_module(self, module_id: ModuleID,
                                        config: AlgorithmConfig = None) -> None:
        module = self.module[module_id]
        self.dqn = DQNUpdate(module.q, module.target, lr=config.learning_rate,
                             gamma=config.gamma, target_update_freq=config.target_update_freq)
        self.register_optimizer(module_id=module_id, optimizer=self.dqn.optimizer,
                                params=[self.dqn.params])

    def learn_from_replay(self, memory: ReplayMemory, num_steps: int, batch_size: int
                          ) -> list[float]:
        """``num_steps`` learning steps on batches sampled from ``memory``; the losses."""
        losses = []
        for _ in range(num_steps):
            batch = torch.from_numpy(memory.sample(batch_size))
            losses.append(self.dqn(batch))
        return [float(x) for x in losses]

    @override(TorchLearner)
    def compute_loss_for_module(self, *, module_id: ModuleID, config: AlgorithmConfig,
                                batch: dict[str, Any], fwd_out: dict[str, TensorType]
                                ) -> TensorType:
        module = self.module[module_id]
        done = batch[Columns.TERMINATEDS].float()
        if Columns.TRUNCATEDS in batch:
            done = torch.maximum(done, batch[Columns.TRUNCATEDS].float())
        with torch.no_grad():
            q_next = module.target(batch[Columns.NEXT_OBS]).amax(dim=1)
            y = batch[Columns.REWARDS].float() + config.gamma * q_next * (1.0 - done)
        q_sa = fwd_out["qf_preds"].gather(1, batch[Columns.ACTIONS].long().unsqueeze(1))
        return torch.nn.functional.mse_loss(q_sa.squeeze(1), y)

    @override(TorchLearner)
    def compute_gradients(self, loss_per_module: dict[ModuleID, TensorType], **kwargs: Any
                          ) -> ParamDict:
        # The layer gradients are views of the flat gradient: zero it in place.
        self.dqn.params.grad.zero_()
        sum(loss_per_module.values()).backward()
        return {self.dqn.params: self.dqn.params.grad}

    @override(Learner)
    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().after_gradient_based_update(timesteps=timesteps)
        self.dqn.after_step()

    @override(TorchLearner)
    def get_state(self, components: Any = None, *, not_components: Any = None,
                  **kwargs: Any) -> StateDict:
        state = super().get_state(components, not_components=not_components, **kwargs)
        state[NUM_LEARNING_STEPS] = self.dqn.num_updates
        return state

    @override(TorchLearner)
    def set_state(self, state: StateDict) -> None:
        super().set_state(state)
        if NUM_LEARNING_STEPS in state:
            self.dqn.num_updates = int(state[NUM_LEARNING_STEPS])
