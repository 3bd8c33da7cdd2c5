"""``StrategyAgentAlgo``: sampling, its own replay memory, learning, weight sync.

Two ways to run one algorithm (see :class:`rsc_policy.rllib.config.StrategyAgentConfig`):

* **exact** -- the local env runner steps its one env once, the transition goes into the
  replay memory, then (memory > batch_size) one learning step runs in the local learner, and
  the runner's Q-net gets the new weights by a direct in-process tensor copy before the next
  action. The runner's global step count is set to the number of steps taken, which is the
  ``t`` RLlib passes to ``_forward_exploration``: the sequential agent's selection index.
* **throughput** -- every remote runner always has one ``sample`` request in flight
  (``foreach_env_runner_async``); each request carries the latest weights and the global step
  count. While the runners sample, the driver ingests finished fragments and runs
  ``updates_per_step`` learning steps per new transition inside the local learner.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import ray
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.env.env_runner import EnvRunner
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    LEARNER_RESULTS,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
)
from ray.rllib.utils.typing import StateDict

from rsc_policy.agent.network import copy_weights
from rsc_policy.agent.replay import ReplayMemory
from rsc_policy.agent.schedule import EpsilonSchedule
from rsc_policy.rllib.config import StrategyAgentConfig

ALGO_STATE = "rsc_strategy_agent"
NUM_LEARNING_STEPS_LIFETIME = "num_learning_steps_lifetime"
SAMPLE_TAG = "rsc_sample"
_MAX_PENDING_WRITES = 8


def episodes_to_transitions(episodes: list[Any]) -> dict[str, np.ndarray]:
    """Flatten RLlib episode chunks into transition arrays ``(s, a, r, s', done)``.

    ``done`` marks the last step of a terminated or truncated episode.
    """
    obs, next_obs, actions, rewards, dones = [], [], [], [], []
    for ep in episodes:
        n = len(ep)
        if n == 0:
            continue
        o = np.asarray(ep.get_observations(), dtype=np.float32)
        obs.append(o[:-1])
        next_obs.append(o[1:])
        actions.append(np.asarray(ep.get_actions()))
        rewards.append(np.asarray(ep.get_rewards(), dtype=np.float64))
        d = np.zeros(n, dtype=bool)
        d[-1] = ep.is_terminated or ep.is_truncated
        dones.append(d)
    if not actions:
        return {"obs": np.zeros((0, 0), np.float32), "actions": np.zeros(0, np.int64),
                "rewards": np.zeros(0), "next_obs": np.zeros((0, 0), np.float32),
                "dones": np.zeros(0, bool)}
    return {"obs": np.concatenate(obs), "actions": np.concatenate(actions),
            "rewards": np.concatenate(rewards), "next_obs": np.concatenate(next_obs),
            "dones": np.concatenate(dones)}


def finished_episode_returns(runner: EnvRunner, episodes: list[Any]) -> list[float]:
    """Full returns of the episodes that ended in ``episodes`` (earlier chunks included).

    Call before ``runner.get_metrics()``, which forgets the earlier chunks.
    """
    chunks = runner._ongoing_episodes_for_metrics
    return [float(ep.get_return() + sum(c.get_return() for c in chunks.get(ep.id_, ())))
            for ep in episodes if ep.is_done]


def describe_env_config(env_config: dict[str, Any]) -> dict[str, Any]:
    """``env_config`` for run metadata: a ``df`` is described by its size and dates."""
    out = {k: v for k, v in dict(env_config).items() if k != "df"}
    df = env_config.get("df")
    if df is not None:
        out["df"] = {"rows": len(df), "first": str(df.index[0]), "last": str(df.index[-1]),
                     "columns": len(df.columns)}
    return out


def finished_episode_infos(episodes: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(episode id, terminal info)`` of each episode that ended in ``episodes``.

    The terminal info holds the episode's summary and its whole per-step log, so the chunk
    that ends an episode is enough to write all of it, whatever fragments came before.
    """
    return [(str(ep.id_), ep.get_infos(-1)) for ep in episodes if ep.is_done]


def _remote_sample(runner: EnvRunner, weights: dict[str, Any] | None, global_steps: int,
                   num_timesteps: int, with_infos: bool = False
                   ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Runs on a remote env runner: take weights and ``t``, sample, return transitions."""
    import torch

    torch.set_num_threads(1)
    runner.module.set_runner_index(runner.worker_index or 0)
    if weights is not None:
        runner.module.set_state(weights)
    runner.num_env_steps_sampled_lifetime = int(global_steps)
    episodes = runner.sample(num_timesteps=num_timesteps, explore=True)
    tr = episodes_to_transitions(episodes)
    tr["episode_returns"] = np.asarray(finished_episode_returns(runner, episodes))
    tr["finished"] = finished_episode_infos(episodes) if with_infos else []
    return tr, runner.get_metrics()


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
        self._learner = self.learner_group._learner
        if self._learner is None:
            raise ValueError("StrategyAgentAlgo needs a local learner (num_learners=0)")
        q = self._learner.module[DEFAULT_MODULE_ID].q
        obs_dim = q[0].in_features
        cfg = self.config
        self.memory = ReplayMemory(cfg.memory_size, obs_dim, seed=cfg.seed_or_zero)
        self.schedule = EpsilonSchedule(cfg.epsilon, cfg.epsilon_decay, cfg.epsilon_min)
        self.global_env_steps = 0  # actions selected by all runners: the exploration `t`
        self._owed_updates = 0.0
        self._in_flight: set[int] = set()
        self._episode_returns: list[float] = []
        self._db, self._db_owned = self._open_database()
        self._db_pool = ThreadPoolExecutor(1, thread_name_prefix="rsc-db") if self._db else None
        self._db_writes: deque[Future] = deque()
        self._finished: list[tuple[str, dict[str, Any]]] = []  # episodes waiting for the DB
        runner = self.env_runner_group.local_env_runner
        if runner is not None and runner.module is not None:
            runner.module.set_runner_index(0)
            copy_weights(runner.module.q, q)

    # ------------------------------------------------------------------ training
    @override(Algorithm)
    def training_step(self) -> None:
        if self.config.exact:
            self._training_step_exact()
        elif self.env_runner_group.num_remote_env_runners() == 0:
            self._training_step_local()
        else:
            self._training_step_async()
        self._write_finished()
        self.metrics.log_value("epsilon", self.schedule(self.global_env_steps), window=1)
        self.metrics.log_value("replay_size", len(self.memory), window=1)
        self.metrics.log_value("global_env_steps", self.global_env_steps, window=1)

    def _ingest(self, tr: dict[str, np.ndarray]) -> int:
        """Store transitions; return how many learning steps they make due."""
        n = len(tr["actions"])
        if n == 0:
            return 0
        before = len(self.memory)
        self.memory.add_batch(tr["obs"], tr["actions"], tr["rewards"], tr["next_obs"],
                              tr["dones"])
        # One learning step is due per stored transition that leaves the memory holding
        # more than batch_size (the sequential rule), scaled by updates_per_step.
        b = self.config.batch_size
        eligible = max(0, n - max(0, b - before)) if self.memory.capacity > b else 0
        self._owed_updates += eligible * self.config.updates_per_step
        due = int(self._owed_updates)
        self._owed_updates -= due
        return due

    def _learn(self, num_steps: int) -> None:
        if num_steps <= 0:
            return
        t0 = time.perf_counter()
        losses = self._learner.learn_from_replay(self.memory, num_steps, self.config.batch_size)
        self.metrics.log_value(("timers", "learn_s"), time.perf_counter() - t0, reduce="sum")
        self.metrics.log_value((LEARNER_RESULTS, "loss"), float(np.mean(losses)))
        self.metrics.log_value((LEARNER_RESULTS, NUM_LEARNING_STEPS_LIFETIME), num_steps,
                               reduce="lifetime_sum")

    def _log_sampled(self, n: int) -> None:
        self.global_env_steps += n

    def _training_step_exact(self) -> None:
        """The sequential rule: one env step, one learning step, weights to the runner."""
        runner = self.env_runner_group.local_env_runner
        learner_q = self._learner.module[DEFAULT_MODULE_ID].q
        runner_q = runner.module.q
        t_sample = t_learn = t_sync = 0.0
        budget = max(1, self.config.min_sample_timesteps_per_iteration)
        for _ in range(budget):
            t0 = time.perf_counter()
            runner.num_env_steps_sampled_lifetime = self.global_env_steps
            episodes = runner.sample(num_timesteps=1, explore=True)
            tr = episodes_to_transitions(episodes)
            if tr["dones"].any():
                self._episode_returns += finished_episode_returns(runner, episodes)
                self._collect(episodes)
            due = self._ingest(tr)
            self._log_sampled(len(tr["actions"]))
            t1 = time.perf_counter()
            self._learn(due)
            t2 = time.perf_counter()
            if due:
                copy_weights(runner_q, learner_q)
            t3 = time.perf_counter()
            t_sample += t1 - t0
            t_learn += t2 - t1
            t_sync += t3 - t2
        runner.num_env_steps_sampled_lifetime = self.global_env_steps
        self._log_times(t_sample, t_learn, t_sync)
        self.metrics.aggregate([runner.get_metrics()], key=ENV_RUNNER_RESULTS)

    def _training_step_local(self) -> None:
        """Throughput rules without remote runners: sample a fragment, then train."""
        runner = self.env_runner_group.local_env_runner
        learner_q = self._learner.module[DEFAULT_MODULE_ID].q
        steps = 0
        t_sample = t_learn = t_sync = 0.0
        while steps < max(1, self.config.min_sample_timesteps_per_iteration):
            t0 = time.perf_counter()
            runner.num_env_steps_sampled_lifetime = self.global_env_steps
            frag = self.config.get_rollout_fragment_length(0) * runner.num_envs
            episodes = runner.sample(num_timesteps=frag, explore=True)
            tr = episodes_to_transitions(episodes)
            self._episode_returns += finished_episode_returns(runner, episodes)
            self._collect(episodes)
            due = self._ingest(tr)
            n = len(tr["actions"])
            self._log_sampled(n)
            steps += n
            t1 = time.perf_counter()
            self._learn(due)
            t2 = time.perf_counter()
            copy_weights(runner.module.q, learner_q)
            t_sample += t1 - t0
            t_learn += t2 - t1
            t_sync += time.perf_counter() - t2
        runner.num_env_steps_sampled_lifetime = self.global_env_steps
        self._log_times(t_sample, t_learn, t_sync)
        self.metrics.aggregate([runner.get_metrics()], key=ENV_RUNNER_RESULTS)

    def _weights_ref(self) -> ray.ObjectRef:
        state = self._learner.module[DEFAULT_MODULE_ID].get_state(inference_only=True)
        return ray.put(state)

    def _request(self, runner_ids: list[int]) -> None:
        """Send each idle runner a sample request carrying the current weights and ``t``."""
        if not runner_ids:
            return
        frag = self.config.get_rollout_fragment_length(1) * self.config.num_envs_per_env_runner
        self.env_runner_group.foreach_env_runner_async(
            _remote_sample, tag=SAMPLE_TAG, remote_worker_ids=runner_ids,
            kwargs={"weights": self._weights_ref(), "global_steps": self.global_env_steps,
                    "num_timesteps": frag, "with_infos": self._db is not None},
        )
        self._in_flight.update(runner_ids)

    def _training_step_async(self) -> None:
        """Runners sample with the latest weights while the learner trains on the replay."""
        group = self.env_runner_group
        budget = max(1, self.config.min_sample_timesteps_per_iteration)
        steps = 0
        t_wait = t_learn = t_sync = 0.0
        metrics: list[dict[str, Any]] = []
        due = 0
        while steps < budget:
            healthy = set(group.healthy_env_runner_ids())
            if not healthy:
                break  # let RLlib's restore_env_runners bring runners back between steps
            self._in_flight &= healthy
            t0 = time.perf_counter()
            self._request(sorted(healthy - self._in_flight))
            t1 = time.perf_counter()
            # Learn what is owed while the runners sample; wait only when nothing is owed.
            chunk = min(due, 32)
            if chunk:
                self._learn(chunk)
                due -= chunk
            t2 = time.perf_counter()
            results = group.fetch_ready_async_reqs(tags=SAMPLE_TAG,
                                                   timeout_seconds=0.0 if due else 0.05)
            returned = {i for i, _ in results}
            # Failed requests come back as errors (dropped); forget them too.
            self._in_flight -= returned
            self._in_flight &= set(group.healthy_env_runner_ids())
            for _, (tr, m) in results:
                self._episode_returns += tr["episode_returns"].tolist()
                self._finished += tr["finished"]
                due += self._ingest(tr)
                n = len(tr["actions"])
                self._log_sampled(n)
                steps += n
                metrics.append(m)
            t3 = time.perf_counter()
            t_sync += t1 - t0
            t_learn += t2 - t1
            t_wait += t3 - t2
        self._learn(due)
        if metrics:
            self.metrics.aggregate(metrics, key=ENV_RUNNER_RESULTS)
        self._log_times(t_wait, t_learn, t_sync)

    # ------------------------------------------------------------------ database
    def _open_database(self) -> tuple[Any, bool]:
        """The run logger of ``config.database(...)``: join the given run or open one."""
        cfg = self.config
        if cfg.db_url is None:
            return None, False
        from rsc_db import RunLogger

        params = {
            "algorithm": "StrategyAgentAlgo", "seed": cfg.seed_or_zero, "exact": cfg.exact,
            **cfg.agent_params(), "updates_per_step": cfg.updates_per_step,
            "num_env_runners": cfg.num_env_runners,
            "num_envs_per_env_runner": cfg.num_envs_per_env_runner,
            "rollout_fragment_length": cfg.get_rollout_fragment_length(),
            "env": describe_env_config(cfg.env_config),
        }  # fmt: skip
        logger = RunLogger(cfg.db_url, run_id=cfg.db_run_id, log_steps=cfg.db_log_steps,
                           step_log_every=cfg.db_step_log_every, parameters=params)
        if cfg.db_run_id is not None:
            try:
                return logger.attach(), False
            except ValueError:
                pass  # no such run yet: open it
        return logger.start(), True

    def _collect(self, episodes: list[Any]) -> None:
        if self._db is not None:
            self._finished += finished_episode_infos(episodes)

    def _write_finished(self) -> None:
        """Hand the episodes finished this iteration to the writer thread.

        One background thread writes them, in order, each episode in its own transaction, so
        the learner never waits for the database; at most ``_MAX_PENDING_WRITES`` batches may
        be outstanding (back-pressure), and a write error surfaces here on the next call.
        """
        done = 0.0
        while self._db_writes and (self._db_writes[0].done()
                                   or len(self._db_writes) > _MAX_PENDING_WRITES):
            done += self._db_writes.popleft().result()
        if done:
            self.metrics.log_value(("timers", "log_s"), done, reduce="sum")
        self._submit_finished()

    def _submit_finished(self) -> None:
        """Queue the collected finished episodes as one batch for the writer thread."""
        if self._db is not None and self._finished:
            items, self._finished = self._finished, []
            self._db_writes.append(self._db_pool.submit(self._write_batch, items))

    def _write_batch(self, items: list[tuple[str, dict[str, Any]]]) -> float:
        t0 = time.perf_counter()
        for rid, info in items:
            self._db.log_episode(rid, info)
        return time.perf_counter() - t0

    def flush_database(self) -> None:
        """Write every finished episode collected so far and wait until it is committed."""
        self._submit_finished()
        while self._db_writes:
            self._db_writes.popleft().result()

    @override(Algorithm)
    def save_to_path(self, *args: Any, **kwargs: Any) -> str:
        self.flush_database()  # a checkpoint implies its episodes are logged
        return super().save_to_path(*args, **kwargs)

    @override(Algorithm)
    def cleanup(self) -> None:
        if self._db is not None:
            try:
                self.flush_database()
                if self._db_owned:
                    self._db.finish("completed")
            finally:
                self._db_pool.shutdown(wait=True)
                self._db.close()
        super().cleanup()

    @property
    def num_learning_steps(self) -> int:
        """Learning steps taken so far (the target-sync counter)."""
        return int(self._learner.dqn.num_updates)

    def pop_episode_returns(self) -> list[float]:
        """Returns of the episodes finished since the last call (all runners)."""
        out, self._episode_returns = self._episode_returns, []
        return out

    def _log_times(self, sample: float, learn: float, sync: float) -> None:
        for key, value in (("sample_s", sample), ("learn_step_s", learn), ("sync_s", sync)):
            self.metrics.log_value(("timers", key), value, reduce="sum")
        self.metrics.log_value((ENV_RUNNER_RESULTS, "rsc_" + NUM_ENV_STEPS_SAMPLED_LIFETIME),
                               self.global_env_steps, window=1)

    # ---------------------------------------------------------------- checkpoints
    @override(Algorithm)
    def get_state(self, components: Any = None, *, not_components: Any = None,
                  **kwargs: Any) -> StateDict:
        state = super().get_state(components, not_components=not_components, **kwargs)
        state[ALGO_STATE] = {
            "replay": self.memory.get_state(),
            "global_env_steps": self.global_env_steps,
            "owed_updates": self._owed_updates,
        }
        return state

    @override(Algorithm)
    def set_state(self, state: StateDict) -> None:
        super().set_state(state)
        own = state.get(ALGO_STATE)
        if own is not None:
            self.memory.set_state(own["replay"])
            self.global_env_steps = int(own["global_env_steps"])
            self._owed_updates = float(own["owed_updates"])
        runner = self.env_runner_group.local_env_runner
        if runner is not None:
            runner.num_env_steps_sampled_lifetime = self.global_env_steps
            if runner.module is not None:
                copy_weights(runner.module.q, self._learner.module[DEFAULT_MODULE_ID].q)
