"""The replay memory as an RLlib ``Checkpointable`` component of the learner."""

from __future__ import annotations

from typing import Any

from ray.rllib.utils.annotations import override
from ray.rllib.utils.checkpoints import Checkpointable
from ray.rllib.utils.typing import StateDict

from rsc_policy.agent.replay import ReplayMemory

COMPONENT_REPLAY = "replay"


class ReplayComponent(Checkpointable):
    """Wraps :class:`rsc_policy.agent.replay.ReplayMemory` (which has no Ray import) so that
    ``Learner.save_to_path`` writes it into its own ``replay/`` subdirectory."""

    def __init__(self, capacity: int, obs_dim: int, seed: int = 0) -> None:
        self.memory = ReplayMemory(capacity, obs_dim, seed=seed)

    @override(Checkpointable)
    def get_state(self, components: Any = None, *, not_components: Any = None,
                  **kwargs: Any) -> StateDict:
        return self.memory.get_state()

    @override(Checkpointable)
    def set_state(self, state: StateDict) -> None:
        self.memory.set_state(state)

    @override(Checkpointable)
    def get_ctor_args_and_kwargs(self) -> tuple[tuple, dict[str, Any]]:
        return (self.memory.capacity, self.memory.obs_dim), {}
