"""The sequential reference: the team's StrategyAgent and its training loop, in plain PyTorch.

One env, no Ray. Every parity test and the ``seq-vs-par`` benchmark compare against this.
The learning rule itself (network, epsilon, exploration draw, update) comes from
:mod:`rsc_policy.agent`, the same code the RLlib algorithm runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rsc_policy.agent.exploration import exploration_draw
from rsc_policy.agent.kernels import greedy_actions
from rsc_policy.agent.network import N_ACTIONS, build_qnet
from rsc_policy.agent.params import AgentParams
from rsc_policy.agent.replay import ReplayMemory
from rsc_policy.agent.schedule import EpisodeSchedule, build_schedule
from rsc_policy.agent.update import DQNUpdate


class StrategyAgent:
    """DQN agent: epsilon-greedy ``act``, FIFO ``remember``, one-step ``learn``.

    Args:
        obs_dim: observation length; ``n_actions``: number of discrete actions.
        seed: seeds the weights, the replay sampling and the exploration draws.
        params: hyper-parameters; keyword overrides are accepted too.
    """

    def __init__(self, obs_dim: int, n_actions: int = N_ACTIONS, *, seed: int = 0,
                 params: AgentParams | None = None, **overrides: Any) -> None:
        p = params or AgentParams()
        if overrides:
            p = AgentParams(**{**p.__dict__, **overrides})
        self.params, self.seed, self.n_actions = p, int(seed), n_actions
        self.q = build_qnet(obs_dim, n_actions, seed)
        self.target = build_qnet(obs_dim, n_actions, seed)  # exact copy: same seed
        self.update = DQNUpdate(self.q, self.target, lr=p.learning_rate, gamma=p.gamma,
                                target_update_freq=p.target_update_freq, double_q=p.double_q,
                                huber=p.td_error_loss_fn == "huber")
        self.memory = ReplayMemory(p.memory_size, obs_dim, seed=seed)
        self.schedule = build_schedule(p.epsilon_schedule, p.epsilon, p.epsilon_decay,
                                       p.epsilon_min, fraction=p.epsilon_fraction,
                                       total_steps=p.epsilon_total_steps)
        self.steps = 0  # action selections so far: the `t` of the exploration key
        # numpy views of the (flat, updated in place) Q-net weights for the fused forward
        self._weights = [w.detach().numpy() for w in self.q.parameters()]

    @property
    def epsilon(self) -> float:
        """Epsilon for the next action selection."""
        return self.schedule(self.steps)

    def act(self, obs: np.ndarray) -> int:
        """Epsilon-greedy action; epsilon then decays (one selection more)."""
        u, random_action = exploration_draw(self.seed, 0, self.steps, 0, self.n_actions)
        explore = u < self.schedule(self.steps)
        self.steps += 1
        if explore:
            return random_action
        return self.greedy(obs)

    def end_episode(self) -> None:
        """An episode finished (the ``per_episode`` schedule decays; the others ignore it)."""
        if isinstance(self.schedule, EpisodeSchedule):
            self.schedule.episode_finished(self.steps)

    def greedy(self, obs: np.ndarray) -> int:
        """``argmax_a Q(obs, a)`` without touching epsilon (one fused forward call)."""
        return int(greedy_actions(obs.reshape(1, -1), *self._weights)[0])

    def remember(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray,
                 done: bool) -> None:
        self.memory.add(obs, action, reward, next_obs, done)

    def learn(self) -> float | None:
        """One learning step if the memory holds more than ``batch_size`` transitions."""
        if len(self.memory) <= self.params.batch_size:
            return None
        batch = self.memory.sample(self.params.batch_size)
        return float(self.update(torch.from_numpy(batch)))


@dataclass
class SequentialResult:
    """What :func:`train_sequential` returns (one entry per env step unless noted)."""

    actions: np.ndarray
    rewards: np.ndarray
    epsilons: np.ndarray
    losses: list[float | None]
    episodes: list[dict[str, Any]] = field(default_factory=list)  # terminal-step summaries
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict)  # final Q-net
    target_state_dict: dict[str, torch.Tensor] = field(default_factory=dict)
    env_steps: int = 0
    num_updates: int = 0
    wall_time_s: float = 0.0
    agent: StrategyAgent | None = None

    @property
    def env_steps_per_s(self) -> float:
        return self.env_steps / self.wall_time_s if self.wall_time_s > 0 else float("nan")


_SUMMARY_SKIP = ("episode_log", "completed_trades")


def _make_env(env: gym.Env | dict[str, Any] | None) -> gym.Env:
    if isinstance(env, gym.Env):
        return env
    from rsc_env import TradingEnv

    return TradingEnv(env)


def run_total(env: gym.Env, episodes: int | None, env_steps: int | None) -> int:
    """The run's total env steps, for the linear schedule's horizon."""
    totals = [] if env_steps is None else [int(env_steps)]
    if episodes is not None:
        length = getattr(env.unwrapped, "episode_length", None)
        if length is None:
            raise ValueError("epsilon_schedule='linear' with episodes= needs env_steps= or "
                             "epsilon_total_steps= (this env has no fixed episode_length)")
        totals.append(int(episodes) * int(length))
    return max(1, min(totals))


def train_sequential(
    env_config: gym.Env | dict[str, Any] | None,
    *,
    episodes: int | None = None,
    env_steps: int | None = None,
    seed: int = 0,
    on_episode_end: Callable[[dict[str, Any]], None] | None = None,
    params: AgentParams | None = None,
    **agent_params: Any,
) -> SequentialResult:
    """Train a :class:`StrategyAgent` with the plain loop; stop after ``episodes`` or
    ``env_steps`` (whichever is given; both: the first reached).

    ``env_config`` is a :class:`rsc_env.TradingEnv` config dict (or an env instance). The first
    reset is seeded with ``seed`` (as RLlib's runner does), later resets are not.
    ``on_episode_end(info)`` receives the terminal step's info (summary, ``episode_log``).
    ``epsilon_schedule="linear"`` without ``epsilon_total_steps`` falls over the run's total:
    ``env_steps``, or ``episodes`` times the env's ``episode_length`` (whichever is smaller).
    """
    if episodes is None and env_steps is None:
        raise ValueError("give episodes= or env_steps=")
    torch.set_num_threads(1)
    env = _make_env(env_config)
    obs_dim = int(np.prod(env.observation_space.shape))
    kind = agent_params.get("epsilon_schedule", getattr(params, "epsilon_schedule", None))
    total = agent_params.get("epsilon_total_steps",
                             getattr(params, "epsilon_total_steps", None))
    if kind == "linear" and total is None:
        agent_params["epsilon_total_steps"] = run_total(env, episodes, env_steps)
    agent = StrategyAgent(obs_dim, int(env.action_space.n), seed=seed, params=params,
                          **agent_params)
    actions: list[int] = []
    rewards: list[float] = []
    epsilons: list[float] = []
    losses: list[float | None] = []
    summaries: list[dict[str, Any]] = []
    start = time.perf_counter()
    obs, _ = env.reset(seed=seed)
    while (env_steps is None or len(actions) < env_steps) and (
        episodes is None or len(summaries) < episodes
    ):
        epsilons.append(agent.epsilon)
        action = agent.act(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        agent.remember(obs, action, reward, next_obs, done)
        losses.append(agent.learn())
        actions.append(action)
        rewards.append(float(reward))
        if done:
            agent.end_episode()
            summaries.append({k: v for k, v in info.items() if k not in _SUMMARY_SKIP})
            if on_episode_end is not None:
                on_episode_end(info)
            obs, _ = env.reset()
        else:
            obs = next_obs
    wall = time.perf_counter() - start
    return SequentialResult(
        actions=np.asarray(actions, dtype=np.int64),
        rewards=np.asarray(rewards, dtype=np.float64),
        epsilons=np.asarray(epsilons, dtype=np.float64),
        losses=losses,
        episodes=summaries,
        state_dict={k: v.detach().clone() for k, v in agent.q.state_dict().items()},
        target_state_dict={k: v.detach().clone() for k, v in agent.target.state_dict().items()},
        env_steps=len(actions),
        num_updates=agent.update.num_updates,
        wall_time_s=wall,
        agent=agent,
    )
