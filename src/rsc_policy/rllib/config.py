"""``StrategyAgentConfig``: the agent's parameters plus how to run it (exact or throughput)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.annotations import override

if TYPE_CHECKING:
    from ray.rllib.core.learner import Learner

ENV_NAME = "rsc-trading"
#: Throughput mode's fragment per env when ``rollout_fragment_length`` is left at ``"auto"``:
#: long enough that a runner round trip (~2 ms) is small against the sampling it carries.
AUTO_FRAGMENT = 64


class StrategyAgentConfig(AlgorithmConfig):
    """Config of :class:`rsc_policy.rllib.algorithm.StrategyAgentAlgo`.

    Agent parameters (spec defaults) are set with :meth:`training`: ``learning_rate``,
    ``gamma``, ``epsilon``, ``epsilon_decay``, ``epsilon_min``, ``memory_size``,
    ``batch_size``, ``target_update_freq``; and how to run:

    * ``exact=True`` (default): the sequential rule through RLlib's classes -- one local env
      runner with one env, one env step then (if the memory holds more than ``batch_size``)
      one learning step, so the next action uses the updated weights. Requires
      ``num_env_runners=0``, ``num_envs_per_env_runner=1`` and ``rollout_fragment_length``
      1 (its default, ``"auto"``, means 1 here).
    * ``exact=False``: throughput mode -- remote runners (``num_env_runners`` x
      ``num_envs_per_env_runner``) sample fragments of ``rollout_fragment_length`` steps
      (``"auto"``: ``AUTO_FRAGMENT`` = 64) with the current weights while the learner trains,
      ``updates_per_step`` learning steps of ``batch_size`` per env step collected.

    One training iteration collects ``min_sample_timesteps_per_iteration`` env steps
    (``.reporting(...)``, default 256). Seed with ``.debugging(seed=...)``; an unseeded
    config behaves as seed 0.
    """

    def __init__(self, algo_class: type | None = None) -> None:
        from rsc_policy.rllib.algorithm import StrategyAgentAlgo

        super().__init__(algo_class=algo_class or StrategyAgentAlgo)
        self.learning_rate = 1e-3  # the learner reads this; RLlib's own `lr` is not used
        self.gamma = 0.95
        self.epsilon = 1.0
        self.epsilon_decay = 0.995
        self.epsilon_min = 0.01
        self.memory_size = 2000
        self.batch_size = 32
        self.target_update_freq = 100
        self.updates_per_step = 1.0
        self.exact = True
        # Database logging (rsc_db): off unless .database(url=...) is called.
        self.db_url: str | None = None
        self.db_run_id: str | None = None
        self.db_log_steps = True
        self.db_step_log_every = 1
        # RLlib settings this algorithm needs by default.
        self.num_env_runners = 0
        self.rollout_fragment_length = "auto"
        self.min_sample_timesteps_per_iteration = 256
        self.batch_mode = "truncate_episodes"
        self.num_learners = 0

    @override(AlgorithmConfig)
    def training(
        self,
        *,
        learning_rate: float = NotProvided,
        epsilon: float = NotProvided,
        epsilon_decay: float = NotProvided,
        epsilon_min: float = NotProvided,
        memory_size: int = NotProvided,
        batch_size: int = NotProvided,
        target_update_freq: int = NotProvided,
        updates_per_step: float = NotProvided,
        exact: bool = NotProvided,
        **kwargs: Any,
    ) -> StrategyAgentConfig:
        """Set agent / run parameters (``gamma`` and RLlib's own settings pass through)."""
        super().training(**kwargs)
        if learning_rate is not NotProvided:
            self.learning_rate = learning_rate
        for name, value in (
            ("epsilon", epsilon), ("epsilon_decay", epsilon_decay),
            ("epsilon_min", epsilon_min), ("memory_size", memory_size),
            ("batch_size", batch_size), ("target_update_freq", target_update_freq),
            ("updates_per_step", updates_per_step), ("exact", exact),
        ):
            if value is not NotProvided:
                setattr(self, name, value)
        return self

    def database(
        self,
        url: str | None = NotProvided,
        *,
        run_id: str | None = NotProvided,
        log_steps: bool = NotProvided,
        step_log_every: int = NotProvided,
    ) -> StrategyAgentConfig:
        """Log every finished episode (summary, steps, trades, operations) to a database.

        Episodes finish inside the env runners; each runner returns its finished episodes'
        terminal infos (which carry the whole episode's step log) with its samples, and the
        algorithm writes them from the driver, one transaction per episode, keyed by the
        runner's episode id (a replayed write cannot duplicate an episode). With ``run_id`` of
        an existing run the algorithm joins that run (the caller owns its status); otherwise
        it opens a run of its own and closes it in ``stop()``.
        """
        for name, value in (("db_url", url), ("db_run_id", run_id),
                            ("db_log_steps", log_steps), ("db_step_log_every", step_log_every)):
            if value is not NotProvided:
                setattr(self, name, value)
        return self

    @property
    def seed_or_zero(self) -> int:
        return 0 if self.seed is None else int(self.seed)

    @property
    @override(AlgorithmConfig)
    def _model_config_auto_includes(self) -> dict[str, Any]:
        return {
            "seed": self.seed_or_zero,
            "epsilon": self.epsilon,
            "epsilon_decay": self.epsilon_decay,
            "epsilon_min": self.epsilon_min,
        }

    @override(AlgorithmConfig)
    def get_rollout_fragment_length(self, worker_index: int = 0) -> int:
        """Steps per env per sample request: the set value, or for ``"auto"`` 1 in exact mode
        and ``AUTO_FRAGMENT`` in throughput mode."""
        if self.rollout_fragment_length == "auto":
            return 1 if self.exact else AUTO_FRAGMENT
        return int(self.rollout_fragment_length)

    @override(AlgorithmConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from rsc_policy.rllib.module import StrategyQModule

        return RLModuleSpec(module_class=StrategyQModule)

    @override(AlgorithmConfig)
    def get_default_learner_class(self) -> type[Learner]:
        from rsc_policy.rllib.learner import StrategyLearner

        return StrategyLearner

    @override(AlgorithmConfig)
    def validate(self) -> None:
        """RLlib's checks, then the agent's: each error names the offending parameter."""
        super().validate()
        if self.framework_str != "torch":
            self._value_error(f"framework must be 'torch', got {self.framework_str!r}")
        checks = [
            ("learning_rate", self.learning_rate, lambda v: v > 0, "> 0"),
            ("gamma", self.gamma, lambda v: 0 <= v <= 1, "in [0, 1]"),
            ("epsilon", self.epsilon, lambda v: 0 <= v <= 1, "in [0, 1]"),
            ("epsilon_decay", self.epsilon_decay, lambda v: 0 < v <= 1, "in (0, 1]"),
            ("epsilon_min", self.epsilon_min, lambda v: 0 <= v <= 1, "in [0, 1]"),
            ("memory_size", self.memory_size, lambda v: v >= 1, ">= 1"),
            ("batch_size", self.batch_size, lambda v: v >= 1, ">= 1"),
            ("target_update_freq", self.target_update_freq, lambda v: v >= 1, ">= 1"),
            ("updates_per_step", self.updates_per_step, lambda v: v >= 0, ">= 0"),
        ]
        for name, value, ok, rule in checks:
            integral = name in ("memory_size", "batch_size", "target_update_freq")
            if isinstance(value, bool) or not isinstance(value, int | float) or (
                integral and not isinstance(value, int)
            ):
                self._value_error(f"{name} must be {'an int' if integral else 'a number'} "
                                  f"{rule}, got {value!r}")
            if not ok(value):
                self._value_error(f"{name} must be {rule}, got {value!r}")
        if self.batch_size > self.memory_size:
            self._value_error(f"batch_size ({self.batch_size}) must be <= memory_size "
                              f"({self.memory_size})")
        if not isinstance(self.exact, bool):
            self._value_error(f"exact must be a bool, got {self.exact!r}")
        if self.exact:
            for name, value, want in (
                ("num_env_runners", self.num_env_runners, 0),
                ("num_envs_per_env_runner", self.num_envs_per_env_runner, 1),
                ("rollout_fragment_length", self.get_rollout_fragment_length(), 1),
            ):
                if value != want:
                    self._value_error(
                        f"exact=True runs the sequential rule and needs {name}={want}, got "
                        f"{value!r}; use .training(exact=False) for throughput mode")
        if not isinstance(self.db_step_log_every, int) or self.db_step_log_every < 1:
            self._value_error(f"step_log_every must be an int >= 1, got {self.db_step_log_every!r}")
        if self.num_learners != 0:
            self._value_error(f"num_learners must be 0 (the learner trains in the driver next "
                              f"to the replay memory), got {self.num_learners}")

    def agent_params(self) -> dict[str, Any]:
        """The agent's parameters as keyword arguments of the sequential agent."""
        return {k: getattr(self, k) for k in (
            "learning_rate", "gamma", "epsilon", "epsilon_decay", "epsilon_min",
            "memory_size", "batch_size", "target_update_freq")}
