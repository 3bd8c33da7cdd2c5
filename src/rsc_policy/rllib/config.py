"""``StrategyAgentConfig``: the agent's parameters (RLlib's names) plus how to run it."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.annotations import override

if TYPE_CHECKING:
    from ray.rllib.core.learner import Learner

ENV_NAME = "rsc-trading"
#: Throughput mode's fragment per env when ``rollout_fragment_length`` is left at ``"auto"``:
#: long enough that a runner round trip (~2 ms) is small against the sampling it carries.
AUTO_FRAGMENT = 64
#: ``model_config`` keys the Q-network honours; every other key must be left at RLlib's default.
MODEL_KEYS = ("fcnet_hiddens", "fcnet_activation")
#: RLlib settings this algorithm does not use: refused by ``validate()`` unless at the default.
UNUSED_SETTINGS = {
    "train_batch_size_per_learner": "use batch_size (the replay batch of one learning step)",
    "num_epochs": "each learning step uses one replay batch once",
    "minibatch_size": "each learning step uses one replay batch once",
    "num_aggregator_actors_per_learner": "transitions go straight to the learner",
    "gamma_schedule": "gamma is a constant",
}




class StrategyAgentConfig(AlgorithmConfig):
    """Config of :class:`rsc_policy.rllib.algorithm.StrategyAgentAlgo`.

    Agent parameters (spec defaults) are set with :meth:`training`, under RLlib's names where
    RLlib has one: ``lr`` (``learning_rate`` is an alias of the same value), ``gamma``,
    ``grad_clip``/``grad_clip_by`` (off by default: the spec has no clipping), ``double_q``,
    ``td_error_loss_fn`` (``"mse"``, the spec, or ``"huber"``), plus ``epsilon``,
    ``epsilon_decay``, ``epsilon_min``, ``epsilon_schedule`` (``"multiplicative"``, the spec;
    ``"linear"``: to ``epsilon_min`` over ``epsilon_fraction`` of ``epsilon_total_steps``
    global env steps, then constant; ``"per_episode"``: one decay per finished episode,
    counted as global env steps // the env's ``episode_length``), ``epsilon_fraction``
    (default 0.1), ``epsilon_total_steps`` (the run's total env steps; needed by
    ``"linear"``), ``memory_size``, ``batch_size``,
    ``target_update_freq`` (learning steps), ``updates_per_step``,
    ``store_buffer_in_checkpoints``, ``fused_learning_step`` (``False``: RLlib's generic
    autograd path even where the fused step applies), ``learner_threads`` (threads of a
    population's compiled learning call; default: every core of the learner's process). The
    network comes from ``.rl_module(model_config=...)``: ``fcnet_hiddens`` (default
    ``[64, 64]``) and ``fcnet_activation`` (default ``"relu"``).

    How to run, ``exact``:

    * ``"auto"`` (default): exact in the parity configuration (``num_env_runners=0``, one
      env, fragment 1 or ``"auto"``), throughput mode otherwise.
    * ``True``: the sequential rule through RLlib's classes -- one env step, then (memory >
      batch_size) one learning step, so the next action uses the updated weights. Any other
      runner configuration is an error.
    * ``False``: throughput mode -- runners (``num_env_runners`` x ``num_envs_per_env_runner``)
      sample fragments of ``rollout_fragment_length`` steps (``"auto"``: 64) with the current
      weights while the learner trains, ``updates_per_step`` learning steps of ``batch_size``
      per env step collected.

    One training iteration collects ``min_sample_timesteps_per_iteration`` env steps
    (``.reporting(...)``, default 256). Seed with ``.debugging(seed=...)``; an unseeded
    config behaves as seed 0. RLlib settings the algorithm does not honour are refused by
    :meth:`validate`, never silently ignored.
    """

    def __init__(self, algo_class: type | None = None) -> None:
        from rsc_policy.rllib.algorithm import StrategyAgentAlgo

        super().__init__(algo_class=algo_class or StrategyAgentAlgo)
        from rsc_policy.agent.params import DEFAULTS

        self.lr = DEFAULTS.learning_rate
        self.grad_clip = None
        for name in ("gamma", "double_q", "td_error_loss_fn", "epsilon", "epsilon_decay",
                     "epsilon_min", "epsilon_schedule", "epsilon_fraction",
                     "epsilon_total_steps", "memory_size", "batch_size",
                     "target_update_freq"):
            setattr(self, name, getattr(DEFAULTS, name))  # the spec's, from one place
        self.updates_per_step = 1.0
        self.store_buffer_in_checkpoints = True
        self.fused_learning_step = True
        self.learner_threads: int | None = None  # a population's compiled step: all cores
        self.exact: bool | str = "auto"
        # Population mode (``.population(members=[...])``): None = one agent.
        self.population_members: list[dict[str, Any]] | None = None
        # Who steps a population's envs: RLlib's EnvRunner group, or the learner itself.
        self.population_rollout = "env_runners"
        self.population_episodes_per_iteration: int | None = None
        # Database logging (rsc_db): off unless .database(url=...) is called.
        self.db_url: str | None = None
        self.db_run_id: str | None = None
        self.db_log_steps = True
        self.db_step_log_every = 1
        # RLlib settings with this algorithm's defaults.
        self.num_env_runners = 0
        self.rollout_fragment_length = "auto"
        self.min_sample_timesteps_per_iteration = 256
        self.batch_mode = "truncate_episodes"
        self.num_learners = 0
        self.max_num_env_runner_restarts = 3
        self.evaluation_duration = 1
        self.evaluation_duration_unit = "episodes"
        from rsc_policy.rllib.evaluation import evaluate_held_out

        self.custom_evaluation_function = evaluate_held_out

    @property
    def learning_rate(self) -> float:
        """Alias of RLlib's ``lr``."""
        return self.lr

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self.lr = value

    def population(self, members: Any = NotProvided, *, rollout: str = NotProvided,
                   episodes_per_iteration: int | None = NotProvided) -> StrategyAgentConfig:
        """Train a population: one member per entry of ``members``, each a
        :class:`rsc_policy.agent.population.Member` or a dict ``{"agent": {...}, "env":
        {...}, "seed": int, "name": str}``.

        Every member keeps the team's rule with its own settings: ``agent`` overrides the
        agent parameters of :meth:`training` (``lr``, ``gamma``, ``target_update_freq``,
        ``epsilon...``, ``memory_size``, ``batch_size``, ``double_q``, ``td_error_loss_fn``),
        ``env`` overrides keys of the ``env_config`` (e.g. another period or penalty), and
        ``seed`` seeds its weights, replay sampling and exploration. The runners step one env
        copy per member; the RLModule acts for all members in one batched call; the learner
        runs all members' learning steps in one compiled call. ``members=None`` (the
        default) trains one agent. In exact mode member ``k`` is bit-identical to
        ``train_sequential`` with its settings and seed.

        ``rollout``: ``"env_runners"`` (default) samples on RLlib's EnvRunner group as
        described; ``"learner"`` has the learner step every member's :class:`rsc_env.
        TradingEnv` itself, in compiled code (each member's env rules, acting, replay and
        learning in one numba loop, one member per thread at a time: Podracer's Anakin), so
        no env runner samples and RLlib's per-step costs vanish. Each member is then the
        sequential rule exactly (``train_sequential``, bit for bit) in any number of
        iterations of ``min_sample_timesteps_per_iteration`` steps each. It needs
        ``num_env_runners=0``, a CPU learner with the fused step, ``updates_per_step=1``,
        no ``.database()`` (the compiled env keeps no step or trade logs) and
        :class:`rsc_env.TradingEnv`.

        ``episodes_per_iteration=N`` (with ``rollout="learner"``): a training step takes every
        member to the end of its N-th next episode instead of a fixed step count, so members
        whose periods differ in length each train whole episodes of their own (RLlib still
        repeats training steps until ``min_sample_timesteps_per_iteration``, counted in the
        longest member's steps, is reached; set it to 0 for one step per iteration).
        ``result["rsc"]["population_env_steps"]`` counts every member's env steps.
        """
        if rollout is not NotProvided:
            self.population_rollout = rollout
        if episodes_per_iteration is not NotProvided:
            self.population_episodes_per_iteration = episodes_per_iteration
        if members is not NotProvided:
            if members is None:
                self.population_members = None
            else:
                from rsc_policy.agent.population import Member

                self.population_members = [dataclasses.asdict(Member.coerce(m))
                                           for m in members]
        return self

    @property
    def is_population(self) -> bool:
        """Whether this config trains a population (``.population(members=[...])``)."""
        return bool(self.population_members)

    def members(self) -> list[Any]:
        """The population's members with the config's agent parameters under each member's
        own (a single agent: one member)."""
        from rsc_policy.agent.population import Member

        base = self.agent_params()
        if not self.is_population:
            return [Member(agent=base, seed=self.seed_or_zero)]
        out = []
        for m in self.population_members:
            member = Member.coerce(m)
            own = dict(member.agent)
            if "lr" in own:
                own["learning_rate"] = own.pop("lr")
            out.append(dataclasses.replace(member, agent={**base, **own}))
        return out

    def member_values(self, name: str) -> list[Any]:
        """One agent parameter (an ``AgentParams`` field) of every member."""
        return [getattr(m.params(), name) for m in self.members()]

    def member_schedules(self) -> list[Any]:
        """Every member's epsilon schedule."""
        from rsc_policy.agent.schedule import build_schedule

        return [build_schedule(p.epsilon_schedule, p.epsilon, p.epsilon_decay, p.epsilon_min,
                               fraction=p.epsilon_fraction, total_steps=p.epsilon_total_steps)
                for p in (m.params() for m in self.members())]

    @property
    def is_exact(self) -> bool:
        """Whether this config runs the sequential rule exactly (see ``exact``)."""
        if self.exact != "auto":
            return bool(self.exact)
        return (self.num_env_runners == 0 and self.num_envs_per_env_runner == 1
                and self.rollout_fragment_length in ("auto", 1))

    @override(AlgorithmConfig)
    def training(
        self,
        *,
        learning_rate: float = NotProvided,
        double_q: bool = NotProvided,
        td_error_loss_fn: str = NotProvided,
        epsilon: float = NotProvided,
        epsilon_decay: float = NotProvided,
        epsilon_min: float = NotProvided,
        epsilon_schedule: str = NotProvided,
        epsilon_fraction: float = NotProvided,
        epsilon_total_steps: int | None = NotProvided,
        memory_size: int = NotProvided,
        batch_size: int = NotProvided,
        target_update_freq: int = NotProvided,
        updates_per_step: float = NotProvided,
        store_buffer_in_checkpoints: bool = NotProvided,
        fused_learning_step: bool = NotProvided,
        learner_threads: int | None = NotProvided,
        exact: bool | str = NotProvided,
        **kwargs: Any,
    ) -> StrategyAgentConfig:
        """Set agent / run parameters; RLlib's own (``lr``, ``gamma``, ``grad_clip``, ...)
        pass through. ``learning_rate`` sets ``lr``."""
        if learning_rate is not NotProvided:
            if kwargs.get("lr", NotProvided) not in (NotProvided, learning_rate):
                raise ValueError(f"lr={kwargs['lr']!r} and learning_rate={learning_rate!r} "
                                 "disagree: they name the same setting, give one")
            kwargs["lr"] = learning_rate
        super().training(**kwargs)
        for name, value in (
            ("double_q", double_q), ("td_error_loss_fn", td_error_loss_fn),
            ("epsilon", epsilon), ("epsilon_decay", epsilon_decay),
            ("epsilon_min", epsilon_min), ("epsilon_schedule", epsilon_schedule),
            ("epsilon_fraction", epsilon_fraction),
            ("epsilon_total_steps", epsilon_total_steps), ("memory_size", memory_size),
            ("batch_size", batch_size), ("target_update_freq", target_update_freq),
            ("updates_per_step", updates_per_step),
            ("store_buffer_in_checkpoints", store_buffer_in_checkpoints),
            ("fused_learning_step", fused_learning_step), ("exact", exact),
            ("learner_threads", learner_threads),
        ):
            if value is not NotProvided:
                setattr(self, name, value)
        return self

    def preset(self, name: str) -> StrategyAgentConfig:
        """Apply a preset of :mod:`rsc_policy.presets` (``"team"``: no change): its agent
        settings through :meth:`training`, its env settings into ``env_config`` where the
        env_config does not set them already (call after :meth:`environment`)."""
        from rsc_policy.presets import preset_params

        agent, env = preset_params(name)
        self.training(**agent)
        if env:
            self.env_config = {**env, **dict(self.env_config or {})}
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
        if self.is_population:
            from rsc_policy.rllib.population_module import MEMBERS

            return {MEMBERS: [dataclasses.asdict(m) for m in self.members()]}
        return {
            "seed": self.seed_or_zero,
            "epsilon": self.epsilon,
            "epsilon_decay": self.epsilon_decay,
            "epsilon_min": self.epsilon_min,
            "epsilon_schedule": self.epsilon_schedule,
            "epsilon_fraction": self.epsilon_fraction,
            "epsilon_total_steps": self.epsilon_total_steps,
        }

    @override(AlgorithmConfig)
    def get_rollout_fragment_length(self, worker_index: int = 0) -> int:
        """Steps per env per sample request: the set value, or for ``"auto"`` 1 in exact mode
        and ``AUTO_FRAGMENT`` in throughput mode."""
        if self.rollout_fragment_length == "auto":
            return 1 if self.is_exact else AUTO_FRAGMENT
        return int(self.rollout_fragment_length)

    @override(AlgorithmConfig)
    @override(AlgorithmConfig)
    def build_env_to_module_connector(self, env: Any = None, spaces: Any = None,
                                      device: Any = None) -> Any:
        """RLlib's pipeline (with the user's pieces) plus
        :class:`~rsc_policy.rllib.sampling.ActingEnvs` first: the module's exploration keys
        count the envs that act."""
        from rsc_policy.rllib.sampling import ActingEnvs

        pipeline = super().build_env_to_module_connector(env, spaces, device)
        pipeline.prepend(ActingEnvs())
        return pipeline

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        if self.is_population:
            from rsc_policy.rllib.population_module import PopulationQModule

            return RLModuleSpec(module_class=PopulationQModule)
        from rsc_policy.rllib.module import StrategyQModule

        return RLModuleSpec(module_class=StrategyQModule)

    @override(AlgorithmConfig)
    def get_default_learner_class(self) -> type[Learner]:
        if self.is_population:
            from rsc_policy.rllib.population_learner import PopulationLearner

            return PopulationLearner
        from rsc_policy.rllib.learner import StrategyLearner

        return StrategyLearner

    @override(AlgorithmConfig)
    def get_evaluation_config_object(self) -> AlgorithmConfig | None:
        """RLlib's evaluation config; one env per evaluation runner unless set (the greedy
        policy on a deterministic env gives the same episode in every copy)."""
        cfg = super().get_evaluation_config_object()
        if cfg is not None and "num_envs_per_env_runner" not in (self.evaluation_config or {}):
            cfg.num_envs_per_env_runner = 1
        return cfg

    @override(AlgorithmConfig)
    def validate(self) -> None:
        """RLlib's checks, then the agent's: each error names the offending setting."""
        super().validate()
        if self.framework_str != "torch":
            self._value_error(f"framework must be 'torch', got {self.framework_str!r}")
        if not isinstance(self.lr, int | float) or isinstance(self.lr, bool):
            self._value_error(f"lr must be a number > 0 (learning-rate schedules are not "
                              f"supported), got {self.lr!r}")
        checks = [
            ("lr", self.lr, lambda v: v > 0, "> 0"),
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
        if self.grad_clip is not None and not (isinstance(self.grad_clip, int | float)
                                               and self.grad_clip > 0):
            self._value_error(f"grad_clip must be None or a number > 0, got {self.grad_clip!r}")
        from rsc_policy.agent.params import check_loss_options
        from rsc_policy.agent.schedule import check_schedule

        try:  # the sequential agent's own checks: one rule for both trainers
            check_schedule(self.epsilon_schedule, self.epsilon_fraction,
                           self.epsilon_total_steps)
            check_loss_options(self.double_q, self.td_error_loss_fn)
        except ValueError as exc:
            self._value_error(str(exc))
        if self.exact not in (True, False, "auto"):
            self._value_error(f"exact must be True, False or 'auto', got {self.exact!r}")
        if self.exact is True:
            for name, value, want in (
                ("num_env_runners", self.num_env_runners, 0),
                ("num_envs_per_env_runner", self.num_envs_per_env_runner, 1),
                ("rollout_fragment_length", self.get_rollout_fragment_length(), 1),
            ):
                if value != want:
                    self._value_error(
                        f"exact=True runs the sequential rule and needs {name}={want}, got "
                        f"{value!r}; leave exact at 'auto' or use exact=False for "
                        "throughput mode")
        if not isinstance(self.db_step_log_every, int) or self.db_step_log_every < 1:
            self._value_error(f"step_log_every must be an int >= 1, got {self.db_step_log_every!r}")
        if self.num_learners not in (0, 1):
            self._value_error(f"num_learners must be 0 (learner in the driver) or 1 (one "
                              f"remote learner actor), got {self.num_learners}: the replay "
                              "memory lives in the one learner")
        if self.num_gpus_per_learner:
            import torch

            if not torch.cuda.is_available():
                self._value_error(f"num_gpus_per_learner={self.num_gpus_per_learner} but torch "
                                  "sees no CUDA device on this machine")
            if self.num_learners == 0:
                self._value_error("num_gpus_per_learner > 0 needs num_learners=1 (a learner "
                                  "actor placed on the GPU)")
        self._validate_model_config()
        self._validate_unused()
        if self.learner_threads is not None and not (
                isinstance(self.learner_threads, int) and self.learner_threads >= 1):
            self._value_error(f"learner_threads must be None or an int >= 1, got "
                              f"{self.learner_threads!r}")
        from rsc_policy.rllib.validation import config_problems

        for problem in config_problems(self):  # env_config on the driver; resources vs cluster
            self._value_error(problem)
        if self.is_population:
            self._validate_population()

    def _validate_population(self) -> None:
        """Check every member; make the env a :class:`PopulationEnv` of the members' envs."""
        from rsc_policy.rllib.population_env import (
            ENV_CLASS,
            MEMBER_ENVS,
            MEMBER_NAMES,
            MEMBER_SEEDS,
            PopulationEnv,
        )

        try:
            members = self.members()
            params = [m.params() for m in members]
        except (ValueError, TypeError) as exc:
            self._value_error(f"population: {exc}")
        for k, p in enumerate(params):
            if p.epsilon_schedule == "per_episode":
                self._value_error(f"population member {k}: epsilon_schedule='per_episode' is "
                                  "not supported in a population; use 'multiplicative' or "
                                  "'linear'")
        hiddens = self.model_config.get("fcnet_hiddens", [64, 64])
        act = self.model_config.get("fcnet_activation", "relu")
        if list(hiddens) != [64, 64] or act != "relu":
            self._value_error(f"a population trains the team's 64-64 ReLU network; got "
                              f"fcnet_hiddens={hiddens!r}, fcnet_activation={act!r}")
        if self.evaluation_interval:
            self._value_error("evaluation_interval with a population: evaluate the members "
                              "with algo.member_policies() and rsc_policy.evaluate instead")
        self._validate_rollout()
        if self.env is PopulationEnv:
            return
        if self.env is not None and not isinstance(self.env, type):
            self._value_error(f"a population needs the env as a class (e.g. rsc_env."
                              f"TradingEnv), got {self.env!r}")
        base = dict(self.env_config or {})
        from rsc_policy.rllib.validation import member_env_problem

        for k, m in enumerate(members):
            problem = member_env_problem(self.env, {**base, **dict(m.env)})
            if problem:
                self._value_error(f"population member {k} ({m.name or f'member-{k}'}): "
                                  f"{problem}")
        self.env_config = {
            ENV_CLASS: self.env, MEMBER_SEEDS: [m.seed for m in members],
            MEMBER_NAMES: [m.name or f"member-{k}" for k, m in enumerate(members)],
            MEMBER_ENVS: [{**base, **dict(m.env)} for m in members],
        }
        self.env = PopulationEnv

    def _validate_rollout(self) -> None:
        """``rollout="learner"``: refuse what the learner's compiled rollout cannot honour."""
        if self.population_rollout not in ("env_runners", "learner"):
            self._value_error(f"population rollout must be 'env_runners' or 'learner', got "
                              f"{self.population_rollout!r}")
        n = self.population_episodes_per_iteration
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            self._value_error(f"population(episodes_per_iteration=...) must be None or an int "
                              f">= 1, got {n!r}")
        if n is not None and self.population_rollout != "learner":
            self._value_error("population(episodes_per_iteration=...) needs rollout='learner' "
                              "(RLlib's env runners sample fixed fragments, not episodes)")
        if self.population_rollout != "learner":
            return
        from rsc_env import TradingEnv
        from rsc_policy.rllib.population_env import ENV_CLASS, PopulationEnv

        env = self.env_config.get(ENV_CLASS) if self.env is PopulationEnv else self.env
        for problem, bad in (
            ("num_env_runners=0 (the learner steps the envs; no runner samples)",
             self.num_env_runners != 0),
            ("updates_per_step=1 (one learning step per env step, the sequential rule)",
             self.updates_per_step != 1),
            ("a CPU learner (num_gpus_per_learner=0): the rollout is compiled CPU code",
             bool(self.num_gpus_per_learner)),
            ("fused_learning_step=True (the compiled learning step)",
             not self.fused_learning_step),
            ("no .database(): the compiled env keeps no step or trade logs; use "
             "rollout='env_runners' to log episodes", self.db_url is not None),
            (f"the env rsc_env.TradingEnv, got {env!r}",
             not (isinstance(env, type) and issubclass(env, TradingEnv))),
        ):
            if bad:
                self._value_error(f"population(rollout='learner') needs {problem}")

    def _validate_model_config(self) -> None:
        base = dataclasses.asdict(DefaultModelConfig())
        ours = set(MODEL_KEYS) | set(self._model_config_auto_includes)
        given = self.model_config
        unknown = sorted(k for k, v in given.items()
                         if k not in ours and (k not in base or v != base[k]))
        if unknown:
            self._value_error(f"model_config key(s) {unknown} are not used by the Q-network; "
                              f"it honours {list(MODEL_KEYS)}")
        hiddens = given.get("fcnet_hiddens", [64, 64])
        if not (isinstance(hiddens, list | tuple) and all(
                isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hiddens)):
            self._value_error(f"fcnet_hiddens must be a list of ints >= 1, got {hiddens!r}")
        from rsc_policy.agent.network import ACTIVATIONS

        act = given.get("fcnet_activation", "relu")
        if act not in ACTIVATIONS:
            self._value_error(f"fcnet_activation {act!r}: choose one of {sorted(ACTIVATIONS)}")

    def _validate_unused(self) -> None:
        default = AlgorithmConfig()
        for name, why in UNUSED_SETTINGS.items():
            if getattr(self, name, None) != getattr(default, name, None):
                self._value_error(f"{name}={getattr(self, name)!r} is not used by "
                                  f"StrategyAgentAlgo ({why}); leave it at its default")
        if self.batch_mode != "truncate_episodes" and not self.in_evaluation:
            self._value_error(f"batch_mode={self.batch_mode!r}: StrategyAgentAlgo samples "
                              "fragments ('truncate_episodes')")

    def build_epsilon_schedule(self, episode_length: int | None = None) -> Any:
        """The configured epsilon schedule (a callable of the global step count); the
        ``per_episode`` schedule needs the env's fixed ``episode_length``."""
        from rsc_policy.agent.schedule import build_schedule

        return build_schedule(self.epsilon_schedule, self.epsilon, self.epsilon_decay,
                              self.epsilon_min, fraction=self.epsilon_fraction,
                              total_steps=self.epsilon_total_steps,
                              episode_length=episode_length)

    def agent_params(self) -> dict[str, Any]:
        """The agent's parameters as keyword arguments of the sequential agent: the spec's
        eight, plus each learning option (``epsilon_schedule``, ``epsilon_fraction``,
        ``epsilon_total_steps``, ``double_q``, ``td_error_loss_fn``) set away from its
        default."""
        out = {"learning_rate": self.lr, **{k: getattr(self, k) for k in (
            "gamma", "epsilon", "epsilon_decay", "epsilon_min",
            "memory_size", "batch_size", "target_update_freq")}}
        from rsc_policy.agent.params import DEFAULTS, LEARNING_OPTIONS

        for key in LEARNING_OPTIONS:
            if getattr(self, key) != getattr(DEFAULTS, key):
                out[key] = getattr(self, key)
        return out
