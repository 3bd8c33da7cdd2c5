"""``StrategyAgentAlgo``: sampling, learning through the LearnerGroup, weight sync, logging.

Two ways to run one algorithm (see :class:`rsc_policy.rllib.config.StrategyAgentConfig`):

* **exact** -- the local env runner steps its one env once, the transition goes into the
  learner's replay memory, then (memory > batch_size) one learning step runs, and the runner
  gets the new weights before the next action. Bit-identical to ``train_sequential``.
* **throughput** -- every remote runner always has one sample request in flight; each request
  carries the latest weights (with RLlib's weights sequence number) and the global step count.
  While the runners sample, the driver hands the new transitions and the learning steps they
  make due to ``learner_group.update`` -- one call per round, many steps per call, on a local
  learner (``num_learners=0``) or a remote learner actor (``num_learners=1``).

A population with ``rollout="learner"`` runs neither: each iteration is one
``learner_group.update`` in which the learner steps every member's env itself, compiled
(:class:`~rsc_policy.agent.compiled_loop.CompiledRollout`), each member the sequential rule.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

import numpy as np
import ray
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_RL_MODULE, DEFAULT_MODULE_ID
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    EPISODE_RETURN_MEAN,
    EVALUATION_RESULTS,
    LEARNER_RESULTS,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
)
from ray.rllib.utils.typing import ResultDict, StateDict

from rsc_policy.rllib.config import StrategyAgentConfig
from rsc_policy.rllib.learner import LEARNING_STEPS_OWED
from rsc_policy.rllib.population_learner import ROLLOUT_EPISODES, ROLLOUT_STEPS
from rsc_policy.rllib.sampling import group_episode_length, sample_on_runner, weights_state

ALGO_STATE = "rsc_strategy_agent"
#: The batch of a rollout round: one placeholder row (the learner steps the envs itself; an
#: empty batch cannot be sharded to a remote learner, ``num_learners=1``).
_ROLLOUT_BATCH = MultiAgentBatch(
    {DEFAULT_MODULE_ID: SampleBatch({"rsc_rollout": np.zeros(1, dtype=np.float32)})},
    env_steps=1)
SAMPLE_TAG = "rsc_sample"
#: Finished episodes held in memory while the database is unreachable (then training stops).
_MAX_BUFFERED_EPISODES = 2000
#: How long a database outage is waited out (episodes buffered) before training stops.
_MAX_OUTAGE_S = 120.0
#: Metrics under ``results["rsc"]``, present from the first iteration (NaN until defined).
RSC_RESULTS = "rsc"
DOCUMENTED_METRICS = (
    "episode_return_mean", "episodes_total", "epsilon", "global_env_steps",
    "num_learning_steps_lifetime", "loss", "replay_size", "policy_lag", "env_steps_per_s", "lr",
    "population_env_steps",
)


def describe_env_config(env_config: dict[str, Any]) -> dict[str, Any]:
    """``env_config`` for run metadata: a ``df`` is described by its size and dates."""
    out = {k: v for k, v in dict(env_config).items() if k != "df"}
    df = env_config.get("df")
    if df is not None:
        out["df"] = {"rows": len(df), "first": str(df.index[0]), "last": str(df.index[-1]),
                     "columns": len(df.columns)}
    return out


class _MemberLoggers:
    """A population's loggers behind one ``log_episode``: each episode goes to the run of
    the member its terminal info names (``info["member"]``)."""

    def __init__(self, loggers: list[Any]) -> None:
        self.loggers, self.url = loggers, loggers[0].url

    def log_episode(self, rid: str, info: dict[str, Any]) -> bool:
        return self.loggers[int(info["member"])].log_episode(rid, info)


class StrategyAgentAlgo(Algorithm):
    """The StrategyAgent (DQN of the spec) on RLlib's new API stack."""

    config: StrategyAgentConfig

    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> StrategyAgentConfig:
        return StrategyAgentConfig()

    @override(Algorithm)
    def setup(self, config: StrategyAgentConfig) -> None:
        import torch

        torch.set_num_threads(1)
        super().setup(config)
        cfg = self.config
        if cfg.is_population:
            self.schedules = cfg.member_schedules()
        else:
            length = (group_episode_length(self.env_runner_group)
                      if cfg.epsilon_schedule == "per_episode" else None)
            self.schedules = [cfg.build_epsilon_schedule(length)]  # what the runners act with
        self.schedule = self.schedules[0]
        # Per member (one for a single agent): its memory size and batch size, the
        # transitions handed to the learner (the "memory > batch" rule), steps owed.
        self._memory_size = np.array(cfg.member_values("memory_size"), dtype=np.int64)
        self._batch_size = np.array(cfg.member_values("batch_size"), dtype=np.int64)
        self.global_env_steps = 0  # env steps of all runners (each: one action per member)
        self._stored = np.zeros(len(self._memory_size), dtype=np.int64)
        self._owed = np.zeros(len(self._memory_size))
        self._runner_steps: dict[int, int] = {}  # per-runner exploration key counters
        self._in_flight: dict[int, tuple[int, int]] = {}  # runner -> (seq no, learn steps)
        self._needs_reset: set[int] = set()
        self._failures: list[str] = []
        self._seq_no = 1
        self._weights: tuple[int, Any] | None = None  # (seq no, object ref)
        self._learn_steps = 0
        self._pending: list[dict[str, np.ndarray]] = []  # transitions not yet sent to learner
        self._episode_returns: list[float] = []
        self._recent_returns: deque[float] = deque(maxlen=100)
        self._episodes_total = 0
        self._last_eval: dict[str, Any] | None = None
        self._outcome = "completed"
        self._db, self._db_owned = self._open_database()
        self._db_writer = self._open_writer()
        self._finished: list[tuple[str, dict[str, Any]]] = []  # episodes waiting for the DB
        self._push_weights_to_local_runner()

    # ------------------------------------------------------------------ training
    @override(Algorithm)
    def training_step(self) -> None:
        t0 = time.perf_counter()
        steps_before = self.global_env_steps
        if self.config.is_population and self.config.population_rollout == "learner":
            members = self._training_step_on_learner()  # members may take unequal steps
        else:
            if self.config.is_exact:
                self._training_step_exact()
            elif self.env_runner_group.num_remote_env_runners() == 0:
                self._training_step_local()
            else:
                self._training_step_async()
            members = (self.global_env_steps - steps_before) * len(self._stored)
        self._write_finished()
        self.metrics.log_value((RSC_RESULTS, "population_env_steps"), members, reduce="sum")
        rate = (self.global_env_steps - steps_before) / max(time.perf_counter() - t0, 1e-9)
        self._log_rsc("env_steps_per_s", rate)
        self._log_rsc("epsilon", float(np.mean([s(self.global_env_steps)
                                                for s in self.schedules])))
        self._log_rsc("global_env_steps", self.global_env_steps)
        self._log_rsc("episodes_total", self._episodes_total)
        self._log_rsc("episode_return_mean", float(np.mean(self._recent_returns))
                      if self._recent_returns else math.nan)

    def _log_rsc(self, key: str, value: float) -> None:
        self.metrics.log_value((RSC_RESULTS, key), value, window=1)

    def _owed_steps(self, n: int) -> np.ndarray:
        """Learning steps (per member) made due by storing ``n`` more transitions of each
        member: one per transition that leaves its memory holding more than its
        ``batch_size`` (the sequential rule), times ``updates_per_step``."""
        before = np.minimum(self._stored, self._memory_size)
        self._stored += n
        b = self._batch_size
        eligible = np.where(self._memory_size > b,
                            np.maximum(0, n - np.maximum(0, b - before)), 0)
        self._owed += eligible * self.config.updates_per_step
        due = self._owed.astype(np.int64)
        self._owed -= due
        return due

    def _ingest(self, result: dict[str, Any]) -> np.ndarray:
        """Take one sample result: queue its transitions, note finished episodes; return the
        learning steps (per member) it makes due."""
        tr = result["transitions"]
        n = len(tr["actions"]) // len(self._stored)  # env steps: one transition per member
        self.global_env_steps += n
        returns = [r for r in result["returns"] if not math.isnan(r)]
        self._episode_returns += returns
        self._recent_returns.extend(returns)
        self._episodes_total += len(result["returns"])
        if self._db is not None:
            self._finished += result["finished"]
        if n == 0:
            return np.zeros(len(self._stored), dtype=np.int64)
        self._pending.append(tr)
        return self._owed_steps(n)

    def _learn(self, num_steps: np.ndarray | int) -> None:
        """Send the pending transitions and the owed learning steps (per member) to the
        learner: one ``learner_group.update`` call (a local learner or a learner actor)."""
        steps = np.broadcast_to(np.asarray(num_steps, dtype=np.int64), self._stored.shape)
        total = int(steps.sum())
        if not self._pending and total <= 0:
            return
        t0 = time.perf_counter()
        cols = {k: np.concatenate([p[k] for p in self._pending]) for k in self._pending[0]} \
            if self._pending else None
        self._pending = []
        batch = None if cols is None else MultiAgentBatch(
            {DEFAULT_MODULE_ID: SampleBatch(cols)}, env_steps=len(cols["actions"]))
        owed = steps.tolist() if self.config.is_population else int(steps[0])
        results = self.learner_group.update(
            batch=batch, timesteps={LEARNING_STEPS_OWED: owed,
                                    NUM_ENV_STEPS_SAMPLED_LIFETIME: self.global_env_steps})
        self.metrics.aggregate(results, key=LEARNER_RESULTS)
        self._learn_steps += total
        if total:
            self._seq_no += 1  # the weights changed
        self.metrics.log_value(("timers", "learn_step_s"), time.perf_counter() - t0,
                               reduce="sum")

    def _weights_ref(self) -> Any:
        """The learner's current inference weights in the object store (one put per version)."""
        if self._weights is None or self._weights[0] != self._seq_no:
            state = self.learner_group.get_state(
                components=f"{COMPONENT_LEARNER}/{COMPONENT_RL_MODULE}", inference_only=True
            )[COMPONENT_LEARNER][COMPONENT_RL_MODULE]
            self._weights = (self._seq_no, ray.put(weights_state(state, self._seq_no)))
        return self._weights[1]

    def _push_weights_to_local_runner(self) -> None:
        """RLlib's weight sync from the learner group to the local runner (when it samples)."""
        runner = self.env_runner_group.local_env_runner
        if runner is None or runner.module is None:
            return
        self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group,
                                           inference_only=True, to_worker_indices=[])

    def _sample_local(self, num_timesteps: int, with_metrics: bool = True) -> dict[str, Any]:
        runner = self.env_runner_group.local_env_runner
        result = sample_on_runner(runner, global_steps=self.global_env_steps,
                                  key_base=self._runner_steps.get(0, 0),
                                  num_timesteps=num_timesteps, with_infos=self._db is not None,
                                  with_metrics=with_metrics)
        if "error" in result:
            raise RuntimeError(f"the env raised in the local env runner: {result['error']}")
        self._runner_steps[0] = self._runner_steps.get(0, 0) + len(
            result["transitions"]["actions"]) // len(self._stored)
        return result

    def _training_step_exact(self) -> None:
        """The sequential rule: one env step, one learning step, weights to the runner."""
        budget = max(1, self.config.min_sample_timesteps_per_iteration)
        t_sample = 0.0
        for _ in range(budget):
            t0 = time.perf_counter()
            result = self._sample_local(1, with_metrics=False)
            t_sample += time.perf_counter() - t0
            due = self._ingest(result)
            self._learn(due)
            if due.any():
                self._push_weights_to_local_runner()
        runner = self.env_runner_group.local_env_runner
        self.metrics.aggregate([runner.get_metrics()], key=ENV_RUNNER_RESULTS)
        self.metrics.log_value(("timers", "sample_s"), t_sample, reduce="sum")

    def _training_step_on_learner(self) -> int:
        """``population(rollout="learner")``: the learner steps every member's env
        ``min_sample_timesteps_per_iteration`` times (with ``episodes_per_iteration=N``: to
        the end of its N-th next episode) in compiled code, one learning step per env step
        (one ``learner_group.update``); the finished episodes and the steps each member took
        come back with the learner's ``pop_finished_episodes``. Returns the env steps all
        members took."""
        episodes = self.config.population_episodes_per_iteration
        n = max(1, self.config.min_sample_timesteps_per_iteration)
        t0 = time.perf_counter()
        results = self.learner_group.update(
            batch=_ROLLOUT_BATCH,  # no transitions: the learner makes them
            timesteps={**({ROLLOUT_EPISODES: episodes} if episodes else {ROLLOUT_STEPS: n}),
                       NUM_ENV_STEPS_SAMPLED_LIFETIME: self.global_env_steps})
        self.metrics.aggregate(results, key=LEARNER_RESULTS)
        asked = self.learner_group.foreach_learner(  # one round trip for all
            lambda learner: (learner.pop_finished_episodes(), learner.num_learning_steps))
        (finished, steps), learned = next(iter(asked)).get()
        n = int(steps.max())  # the members' env steps: all n, or each to its episode's end
        self.global_env_steps += n
        self._stored += steps
        # what RLlib's iteration loop counts against min_sample_timesteps_per_iteration
        self.metrics.log_value((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), n,
                               reduce="lifetime_sum")
        returns = [r for _, r, _ in finished]
        self._episode_returns += returns
        self._recent_returns.extend(returns)
        self._episodes_total += len(returns)
        if learned != self._learn_steps:
            self._learn_steps = int(learned)
            self._seq_no += 1  # the weights changed
            self._push_weights_to_local_runner()
        self.metrics.log_value(("timers", "learn_step_s"), time.perf_counter() - t0,
                               reduce="sum")
        return int(steps.sum())

    def _training_step_local(self) -> None:
        """Throughput rules without remote runners: sample a fragment, then train."""
        runner = self.env_runner_group.local_env_runner
        frag = self.config.get_rollout_fragment_length(0) * runner.num_envs
        steps, metrics, t_sample = 0, [], 0.0
        while steps < max(1, self.config.min_sample_timesteps_per_iteration):
            t0 = time.perf_counter()
            result = self._sample_local(frag)
            t_sample += time.perf_counter() - t0
            steps += len(result["transitions"]["actions"]) // len(self._stored)
            self._learn(self._ingest(result))
            self._push_weights_to_local_runner()
            metrics.append(result["metrics"])
        self.metrics.aggregate(metrics, key=ENV_RUNNER_RESULTS)
        self.metrics.log_value(("timers", "sample_s"), t_sample, reduce="sum")

    def _request(self, runner_ids: list[int]) -> None:
        """Send each idle runner a sample request with the current weights and ``t``."""
        frag = self.config.get_rollout_fragment_length(1) * self.config.num_envs_per_env_runner
        weights = self._weights_ref() if runner_ids else None
        for i in runner_ids:
            self.env_runner_group.foreach_env_runner_async(
                sample_on_runner, tag=SAMPLE_TAG, remote_worker_ids=[i],
                kwargs={"weights": weights, "global_steps": self.global_env_steps,
                        "key_base": self._runner_steps.get(i, 0), "num_timesteps": frag,
                        "with_infos": self._db is not None,
                        "force_reset": i in self._needs_reset},
            )
            self._needs_reset.discard(i)
            self._in_flight[i] = (self._seq_no, self._learn_steps)

    def _failed(self, runner: int, error: str) -> None:
        """Count a failed sample request; raise once more than the configured number failed."""
        self._failures.append(f"env runner {runner}: {error}")
        limit = self.config.max_num_env_runner_restarts
        if len(self._failures) > limit:
            raise RuntimeError(
                f"sampling failed {len(self._failures)} times, more than "
                f"max_num_env_runner_restarts={limit} (set it with "
                f".fault_tolerance(max_num_env_runner_restarts=N)); last error: "
                f"{self._failures[-1]}")

    def _training_step_async(self) -> None:
        """Runners sample with the latest weights while the learner trains on the replay."""
        group = self.env_runner_group
        budget = max(1, self.config.min_sample_timesteps_per_iteration)
        steps, due = 0, np.zeros(len(self._stored), dtype=np.int64)
        t_wait = t_sync = 0.0
        metrics: list[dict[str, Any]] = []
        while steps < budget:
            healthy = set(group.healthy_env_runner_ids())
            for lost in set(self._in_flight) - healthy:  # the runner died with a request
                del self._in_flight[lost]
                self._needs_reset.add(lost)
                self._failed(lost, "the env runner actor died during a sample request")
            if not healthy:
                break  # let RLlib's restore_env_runners bring runners back between steps
            t0 = time.perf_counter()
            self._request(sorted(healthy - set(self._in_flight)))
            t_sync += time.perf_counter() - t0
            # Learn what is owed while the runners sample; wait only when nothing is owed.
            self._learn(due)
            due = np.zeros_like(due)
            t1 = time.perf_counter()
            # Nothing to learn: wait briefly for whichever request finishes first (RLlib waits
            # for *all* requests in flight until the timeout, so keep it short).
            results = group.fetch_ready_async_reqs(tags=SAMPLE_TAG, timeout_seconds=0.002)
            t_wait += time.perf_counter() - t1
            for runner, result in results:
                seq_no, learn_steps = self._in_flight.pop(runner, (self._seq_no,
                                                                   self._learn_steps))
                if "error" in result:
                    self._needs_reset.add(runner)
                    self._failed(runner, result["error"])
                    continue
                n = len(result["transitions"]["actions"]) // len(self._stored)
                self._runner_steps[runner] = self._runner_steps.get(runner, 0) + n
                self.metrics.log_value((RSC_RESULTS, "policy_lag"), self._seq_no - seq_no)
                self.metrics.log_value((RSC_RESULTS, "policy_lag_learning_steps"),
                                       self._learn_steps - learn_steps)
                due += self._ingest(result)
                steps += n
                metrics.append(result["metrics"])
        self._learn(due)
        # Keep every runner busy through the iteration's bookkeeping (weights of now).
        self._request(sorted(set(group.healthy_env_runner_ids()) - set(self._in_flight)))
        if metrics:
            self.metrics.aggregate(metrics, key=ENV_RUNNER_RESULTS)
        self.metrics.log_value(("timers", "sample_s"), t_wait, reduce="sum")
        self.metrics.log_value(("timers", "sync_s"), t_sync, reduce="sum")

    def _discard_in_flight(self) -> None:
        """Wait for the sample requests in flight and drop them (their weights and counters
        belong to a state that a restore just replaced)."""
        deadline = time.monotonic() + 60.0
        while self._in_flight and time.monotonic() < deadline:
            for runner, _ in self.env_runner_group.fetch_ready_async_reqs(
                    tags=SAMPLE_TAG, timeout_seconds=0.5):
                self._in_flight.pop(runner, None)
            self._in_flight = {i: v for i, v in self._in_flight.items()
                               if i in set(self.env_runner_group.healthy_env_runner_ids())}
        self._pending = []

    # ------------------------------------------------------------------ results
    @override(Algorithm)
    def step(self) -> ResultDict:
        """One iteration; records how training ended for an algorithm-owned DB run, and fills
        the documented metric names so each is present from the first iteration on."""
        try:
            result = super().step()
        except KeyboardInterrupt:
            self._outcome = "interrupted"
            raise
        except BaseException:
            self._outcome = "failed"
            raise
        rsc = result.setdefault(RSC_RESULTS, {})
        for key in DOCUMENTED_METRICS:
            rsc.setdefault(key, math.nan)
        learner = result.get(LEARNER_RESULTS, {})
        rsc["loss"] = learner.get(DEFAULT_MODULE_ID, {}).get("loss", rsc["loss"])
        rsc["num_learning_steps_lifetime"] = self.num_learning_steps
        rsc["global_env_steps"] = self.global_env_steps
        rsc["episodes_total"] = self._episodes_total
        rsc["replay_size"] = float(np.minimum(self._stored, self._memory_size).mean())
        rsc["lr"] = self.learner_lr()
        result.setdefault(ENV_RUNNER_RESULTS, {}).setdefault(
            EPISODE_RETURN_MEAN, rsc["episode_return_mean"])
        if EVALUATION_RESULTS in result:
            self._last_eval = {**result[EVALUATION_RESULTS],
                               "evaluated_at_iteration": self.iteration}
        elif self._last_eval is not None:  # the latest figures, marked with their iteration
            result[EVALUATION_RESULTS] = dict(self._last_eval)
        return result

    def policy_network(self) -> Any:
        """A copy of the learner's current Q-network (``nn.Sequential``), for export."""
        from rsc_policy.agent.network import build_qnet

        state = self.learner_group.get_weights()[DEFAULT_MODULE_ID]
        q_keys = {k[2:]: v for k, v in state.items() if k.startswith("q.")}
        cfg = self.config.model_config
        layers = sorted({int(k.split(".")[0]) for k in q_keys})
        first, last = q_keys[f"{layers[0]}.weight"], q_keys[f"{layers[-1]}.weight"]
        net = build_qnet(first.shape[1], last.shape[0],
                         hiddens=[q_keys[f"{i}.weight"].shape[0] for i in layers[:-1]],
                         activation=cfg.get("fcnet_activation") or "relu")
        import torch

        net.load_state_dict({k: torch.as_tensor(v) for k, v in q_keys.items()})
        return net

    def member_policies(self) -> list[Any]:
        """Each population member's greedy policy (``GreedyPolicy``, ``act(obs) -> int``) on
        the learner's current weights, in member order (a single agent: one)."""
        from rsc_policy.agent.export import GreedyPolicy

        if not self.config.is_population:
            return [GreedyPolicy(self.policy_network())]
        from rsc_policy.agent.population import qnet_from_flat

        return [GreedyPolicy(qnet_from_flat(row)) for row in self.member_weights()]

    def member_weights(self) -> np.ndarray:
        """The population members' flat Q-network weights ``[K, P]`` (learner's current;
        the layout of :func:`rsc_policy.agent.population.initial_weights`). Act with them
        through :class:`rsc_policy.agent.population.FlatGreedy` (the members' own compiled
        forward) or :meth:`member_policies` (torch modules)."""
        if not self.config.is_population:
            raise ValueError("member_weights() is for a population (config.population(...)); "
                             "a single agent's network is policy_network()")
        return np.asarray(self.learner_group.get_weights()[DEFAULT_MODULE_ID]["params"])

    @property
    def num_learning_steps(self) -> int:
        """Learning steps taken so far."""
        return self._learn_steps

    def learner_lr(self) -> float:
        """The learning rate the learner's optimizer uses now (asked of the learner itself)."""
        return next(iter(self.learner_group.foreach_learner(
            lambda learner: learner.current_lr()))).get()

    @property
    def db_run_id(self) -> str | None:
        """The run id episodes are logged under (``None`` without ``.database(...)``; a
        population: its first member's, see :attr:`db_run_ids`)."""
        return None if self._db is None else self._db.run_id

    @property
    def db_run_ids(self) -> list[str]:
        """The run id of each member (one for a single agent)."""
        return [logger.run_id for logger in self._loggers]

    def pop_episode_returns(self) -> list[float]:
        """Returns of the episodes finished since the last call (all runners)."""
        out, self._episode_returns = self._episode_returns, []
        return out

    # ------------------------------------------------------------------ database
    def _open_database(self) -> tuple[Any, bool]:
        """The run logger of ``config.database(...)``: join the given run or open one. A
        population opens one run per member (``<run id>-<member name>``, the member's own
        settings in its parameters); ``self._loggers[k]`` logs member ``k``'s episodes."""
        cfg = self.config
        self._loggers: list[Any] = []
        if cfg.db_url is None:
            return None, False
        from rsc_db import RunLogger, new_run_id

        params = {
            "algorithm": "StrategyAgentAlgo", "seed": cfg.seed_or_zero, "exact": cfg.is_exact,
            **cfg.agent_params(), "updates_per_step": cfg.updates_per_step,
            "num_env_runners": cfg.num_env_runners,
            "num_envs_per_env_runner": cfg.num_envs_per_env_runner,
            "rollout_fragment_length": cfg.get_rollout_fragment_length(),
            "num_learners": cfg.num_learners,
            "env": describe_env_config(cfg.env_config),
        }  # fmt: skip
        if cfg.is_population:
            prefix = cfg.db_run_id or new_run_id()
            envs = cfg.env_config["member_envs"]
            for k, m in enumerate(cfg.members()):
                name = m.name or f"member-{k}"
                own = {**params, **m.agent, "seed": m.seed, "env": describe_env_config(envs[k]),
                       "population": {"run_prefix": prefix, "member": k, "name": name,
                                      "members": len(envs)}}
                self._loggers.append(RunLogger(
                    cfg.db_url, run_id=f"{prefix}-{name}", log_steps=cfg.db_log_steps,
                    step_log_every=cfg.db_step_log_every, parameters=own).start())
            return self._loggers[0], True
        logger = RunLogger(cfg.db_url, run_id=cfg.db_run_id, log_steps=cfg.db_log_steps,
                           step_log_every=cfg.db_step_log_every, parameters=params)
        if cfg.db_run_id is not None:
            try:
                self._loggers = [logger.attach()]
                return self._loggers[0], False
            except ValueError:
                pass  # no such run yet: open it
        self._loggers = [logger.start()]
        return self._loggers[0], True

    def _open_writer(self) -> Any:
        """The background writer of finished episodes (``rsc_db.EpisodeWriter``): ordered,
        bounded, and it waits out a database outage by buffering."""
        if self._db is None:
            return None
        from rsc_db.episode_writer import EpisodeWriter

        target = self._db if len(self._loggers) == 1 else _MemberLoggers(self._loggers)
        return EpisodeWriter(target, max_buffered=_MAX_BUFFERED_EPISODES,
                             max_outage_s=_MAX_OUTAGE_S)

    def _write_finished(self) -> None:
        """Hand the episodes finished this iteration to the writer thread.

        One background thread writes them, in order, each episode in its own transaction, so
        the learner never waits for the database. During an outage longer than the logger's
        retries the writer buffers (up to ``_MAX_BUFFERED_EPISODES``) and writes the buffer
        when the database is back; a full buffer, a too long outage or a write error raises
        here (``DatabaseUnavailable``), so training stops with nothing lost silently.
        """
        if self._db_writer is None:
            return
        done, self._db_writer.write_seconds = self._db_writer.write_seconds, 0.0
        if done:
            self.metrics.log_value(("timers", "log_s"), done, reduce="sum")
        self._submit_finished()

    def _submit_finished(self) -> None:
        """Queue the collected finished episodes for the writer thread."""
        if self._db_writer is not None and self._finished:
            items, self._finished = self._finished, []
            self._db_writer.submit(items)

    def flush_database(self) -> None:
        """Write every finished episode collected so far and wait until it is committed."""
        if self._db_writer is not None:
            self._submit_finished()
            self._db_writer.flush()

    @override(Algorithm)
    def save_to_path(self, *args: Any, **kwargs: Any) -> str:
        self.flush_database()  # a checkpoint implies its episodes are logged
        return super().save_to_path(*args, **kwargs)

    @override(Algorithm)
    def cleanup(self) -> None:
        """Flush the database; an algorithm-owned run ends ``completed`` only after a clean
        stop (``failed`` if training raised, ``interrupted`` on KeyboardInterrupt)."""
        try:
            if self._db is not None:
                try:
                    self.flush_database()
                except BaseException:  # the database gave out: the run did not complete
                    if self._outcome == "completed":
                        self._outcome = "failed"
                    raise
                finally:
                    try:
                        if self._db_owned:  # written, or noted for the next start
                            for logger in self._loggers:
                                logger.finish_or_remember(self._outcome)
                    finally:
                        self._db_writer.close(flush=False)
                        for logger in self._loggers:
                            logger.close()
        finally:
            super().cleanup()  # the runners and learners stop whatever happened above

    # ---------------------------------------------------------------- checkpoints
    @override(Algorithm)
    def get_state(self, components: Any = None, *, not_components: Any = None,
                  **kwargs: Any) -> StateDict:
        state = super().get_state(components, not_components=not_components, **kwargs)
        state[ALGO_STATE] = {
            "global_env_steps": self.global_env_steps, "stored": self._stored.tolist(),
            "owed_updates": self._owed.tolist(), "runner_steps": dict(self._runner_steps),
            "learn_steps": self._learn_steps, "episodes_total": self._episodes_total,
        }
        return state

    @override(Algorithm)
    def set_state(self, state: StateDict) -> None:
        self._discard_in_flight()
        super().set_state(state)
        own = state.get(ALGO_STATE)
        if own is not None:
            self.global_env_steps = int(own["global_env_steps"])
            self._owed = np.broadcast_to(np.asarray(own["owed_updates"], dtype=float),
                                         self._owed.shape).copy()
            # Runners of the checkpoint continue their key counters; new ones start at 0.
            self._runner_steps = {int(k): int(v) for k, v in own["runner_steps"].items()}
            self._learn_steps = int(own["learn_steps"])
            self._episodes_total = int(own["episodes_total"])
        # The "memory > batch_size" rule follows what the memory really holds (a checkpoint
        # without the buffer, or a resized memory, restores fewer transitions).
        self._stored = np.array(next(iter(self.learner_group.foreach_learner(  # a writable
            lambda learner: learner.memory_sizes))).get(), dtype=np.int64)  # copy (object store)
        self._seq_no += 1  # force the restored weights onto every runner
        self._push_weights_to_local_runner()
