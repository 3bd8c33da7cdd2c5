"""What runs on an env runner for one sample request, and how its episodes become transitions.

:func:`sample_on_runner` is the one sampling function of the algorithm: the driver calls it on
its local runner (exact mode, or throughput mode without remote runners) and sends it to
remote runners through ``EnvRunnerGroup.foreach_env_runner_async``. It uses the runner's public
API only: ``set_state`` (weights with their sequence number and the global step count, as
RLlib's own weight sync does), ``sample`` and ``get_metrics``.
"""

from __future__ import annotations

import traceback
from typing import Any

import numpy as np
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core import COMPONENT_RL_MODULE
from ray.rllib.env.env_runner import EnvRunner
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

EMPTY_TRANSITIONS: dict[str, np.ndarray] = {
    "obs": np.zeros((0, 0), np.float32), "actions": np.zeros(0, np.int64),
    "rewards": np.zeros(0), "new_obs": np.zeros((0, 0), np.float32),
    "terminateds": np.zeros(0, bool)}


#: Batch column of :class:`ActingEnvs`: whether the env's next action is a real env step.
ACTING = "rsc_acting"


class ActingEnvs(ConnectorV2):
    """Env-to-module piece: per env, whether the action computed now will be an env step.

    After an episode ends, RLlib's runner still computes an action for that env in the next
    vector step and discards it (the vector env resets the env instead, and no step is
    counted). :class:`~rsc_policy.rllib.module.StrategyQModule` advances its own
    exploration-key counter by the acting envs only, so its keys count the runner's real env
    steps without re-deriving RLlib's global-step formula. Uses the public ConnectorV2 API:
    an episode that is done when the batch is built is the one whose action is discarded.
    """

    def __call__(self, *, rl_module: Any, batch: dict[str, Any], episodes: list[Any],
                 explore: bool | None = None, shared_data: dict | None = None,
                 **kwargs: Any) -> Any:
        for ep in episodes:
            self.add_batch_item(batch, ACTING, not ep.is_done, single_agent_episode=ep)
        return batch


def episodes_to_transitions(episodes: list[Any]) -> dict[str, np.ndarray]:
    """Flatten RLlib episode chunks into transition columns
    ``obs, actions, rewards, new_obs, terminateds``.

    ``terminateds`` marks the last step of a terminated or truncated episode (the spec's
    ``done``).
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
        return dict(EMPTY_TRANSITIONS)
    return {"obs": np.concatenate(obs), "actions": np.concatenate(actions),
            "rewards": np.concatenate(rewards), "new_obs": np.concatenate(next_obs),
            "terminateds": np.concatenate(dones)}


def population_transitions(episodes: list[Any]) -> tuple[dict[str, np.ndarray],
                                                         list[tuple[str, dict[str, Any]]]]:
    """Each member's own transitions from chunks of a :class:`PopulationEnv` episode (columns
    of :func:`episodes_to_transitions` plus ``member``; per member in time order), and its
    finished episodes as ``(episode id, terminal info)`` with ``info["member"]`` set.

    Step ``t`` of a chunk gives member ``k`` the transition ``(o_t[k], a_t[k], r, o', done)``
    with ``r``, ``done`` from the step's info and ``o'`` the member's terminal observation
    when its episode ended there (its env was reset at once), else ``o_{t+1}[k]``.
    """
    cols: dict[str, list[np.ndarray]] = {k: [] for k in (*EMPTY_TRANSITIONS, "member")}
    finished: list[tuple[str, dict[str, Any]]] = []
    for ep in episodes:
        n = len(ep)
        if n == 0:
            continue
        o = np.asarray(ep.get_observations(), dtype=np.float32)  # [n + 1, K, D]
        infos = ep.get_infos()[1:]  # the info of each step
        k = o.shape[1]
        nxt = o[1:].copy()
        rewards = np.stack([i["rewards"] for i in infos])
        dones = np.stack([i["dones"] for i in infos])
        for t, info in enumerate(infos):
            for m, end in info["finished"]:
                nxt[t, m] = info["final_obs"][m]
                finished.append((f"{ep.id_}/{m}/{ep.t_started + t}", {**end, "member": m}))
        # member-major order: each member's transitions stay in time order
        cols["obs"].append(o[:-1].transpose(1, 0, 2).reshape(n * k, -1))
        cols["new_obs"].append(nxt.transpose(1, 0, 2).reshape(n * k, -1))
        cols["actions"].append(np.asarray(ep.get_actions()).T.reshape(-1))
        cols["rewards"].append(rewards.T.reshape(-1))
        cols["terminateds"].append(dones.T.reshape(-1))
        cols["member"].append(np.repeat(np.arange(k), n))
    if not cols["actions"]:
        return {**EMPTY_TRANSITIONS, "member": np.zeros(0, np.int64)}, finished
    return {c: np.concatenate(v) for c, v in cols.items()}, finished


def finished_episodes(episodes: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(episode id, terminal info)`` of each episode that ended in ``episodes``.

    The env's terminal info holds the episode's summary (``total_reward`` is its return) and
    its whole per-step log, so the chunk that ends an episode is enough to log all of it.
    """
    return [(str(ep.id_), ep.get_infos(-1)) for ep in episodes if ep.is_done]


def episode_length_of(runner: EnvRunner) -> int:
    """The fixed episode length of the runner's envs (their ``episode_length`` attribute)."""
    try:
        lengths = set(runner.env.unwrapped.get_attr("episode_length"))
    except AttributeError:
        raise ValueError("epsilon_schedule='per_episode' needs envs of a fixed episode length "
                         "with an episode_length attribute (rsc_env.TradingEnv has one)"
                         ) from None
    if len(lengths) != 1:
        raise ValueError(f"epsilon_schedule='per_episode': the runner's envs have different "
                         f"episode lengths {sorted(lengths)}")
    return int(lengths.pop())


def group_episode_length(group: Any) -> int:
    """:func:`episode_length_of` asked of an ``EnvRunnerGroup`` from the driver: its local
    runner when it samples (no remote runners), else its first healthy remote runner."""
    if group.num_remote_env_runners() == 0:
        return episode_length_of(group.local_env_runner)
    first = sorted(group.healthy_env_runner_ids())[:1]
    return int(group.foreach_env_runner(episode_length_of, remote_worker_ids=first,
                                        local_env_runner=False)[0])


def sample_on_runner(runner: EnvRunner, *, global_steps: int, key_base: int,
                     num_timesteps: int, weights: dict[str, Any] | None = None,
                     with_infos: bool = False, force_reset: bool = False,
                     with_metrics: bool = True) -> dict[str, Any]:
    """One sample request: take the weights and the global step count, sample, return.

    ``key_base`` is this runner's own count of env steps so far: the exploration draws of
    this request are keyed from there (see :meth:`StrategyQModule.begin_sample`). An exception
    from the env is returned as ``{"error": ...}`` (the driver counts it and bounds retries)
    instead of taking the runner out of service forever.
    """
    import torch

    torch.set_num_threads(1)
    state: dict[str, Any] = {NUM_ENV_STEPS_SAMPLED_LIFETIME: int(global_steps)}
    if weights is not None:
        state.update(weights)
    runner.set_state(state)
    population = hasattr(runner.module, "begin_sample") and getattr(runner.module, "k", 0) > 0
    if population:
        runner.module.begin_sample(runner.worker_index or 0, key_base)
    else:
        runner.module.begin_sample(runner.worker_index or 0, key_base)
    try:
        if getattr(runner.module, "needs_episode_length", False):
            runner.module.set_episode_length(episode_length_of(runner))
        episodes = runner.sample(num_timesteps=num_timesteps, explore=True,
                                 force_reset=force_reset)
    except Exception as exc:  # noqa: BLE001 - reported to the driver, which bounds retries
        while not str(exc) and exc.__cause__ is not None:  # RLlib re-raises a bare error
            exc = exc.__cause__
        return {"error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(), "runner": runner.worker_index}
    if population:
        transitions, finished = population_transitions(episodes)
    else:
        transitions, finished = episodes_to_transitions(episodes), finished_episodes(episodes)
    return {
        "transitions": transitions,
        "returns": [float(info.get("total_reward", np.nan)) for _, info in finished],
        "finished": finished if with_infos else [],
        "metrics": runner.get_metrics() if with_metrics else None,
    }


def weights_state(rl_module_state: dict[str, Any], seq_no: int) -> dict[str, Any]:
    """The runner state that carries new weights (RLlib's weights sequence number)."""
    from ray.rllib.utils.metrics import WEIGHTS_SEQ_NO

    return {COMPONENT_RL_MODULE: rl_module_state, WEIGHTS_SEQ_NO: int(seq_no)}
