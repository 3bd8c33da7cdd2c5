"""A population: K StrategyAgents, each with the team's rule, learning in one compiled call.

A member is ``(agent settings, env settings, seed)`` (:class:`Member`). Every member keeps its
own Q-network, target network, Adam state, replay memory, epsilon schedule and exploration
keys, and takes one learning step per env step of its own -- exactly what
:class:`rsc_policy.agent.sequential.StrategyAgent` does alone. What the members share is the
*call*: :class:`Population` stores all members' parameters, Adam moments and replay rings as
``[K, ...]`` arrays, acts for all of them in one compiled forward
(:func:`~rsc_policy.agent.kernels.population_greedy`) and runs every owed learning step of
every member in one compiled, thread-parallel call
(:func:`~rsc_policy.agent.kernels.population_learn`, ``numba.prange`` over members; the
replay batches are drawn inside it, bit-identical to numpy's ``Generator.choice``).

:func:`train_population` trains a population without Ray: by default each member's whole
training (env rules, acting, replay, learning) runs in compiled code, one member per thread
at a time (:mod:`rsc_policy.agent.compiled_loop`); ``engine="python"`` steps the envs from
Python with one learning call for all members per step. Either way member ``k`` is
bit-identical to ``train_sequential`` with member ``k``'s settings and seed
(``tests/policy/test_population.py``). The RLlib algorithm runs the same :class:`Population`
in its learner (``StrategyAgentConfig().population(...)``).

Memory per member (default net on the 102-float observation, replay of 2,000): parameters,
target, gradient and two Adam moments 5 x 10,947 float32 = 219 KB, replay 2,000 x 207 float32
= 1.66 MB: ~1.9 MB, so 256 members take ~0.5 GB.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rsc_policy.agent import kernels
from rsc_policy.agent.exploration import keyed_epsilon_greedy, seed_keys
from rsc_policy.agent.network import N_ACTIONS, build_qnet, linear_layers
from rsc_policy.agent.rng import array_to_state, state_to_array
from rsc_policy.agent.schedule import EpisodeSchedule, build_schedule
from rsc_policy.agent.update import transition_width

ADAM_BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults, as the single agent uses
ADAM_EPS = 1e-8


@dataclass(frozen=True)
class Member:
    """One population member: ``agent`` -- :class:`~rsc_policy.agent.sequential.AgentParams`
    fields over the defaults (``learning_rate``/``lr``, ``gamma``, ``target_update_freq``,
    ...); ``env`` -- env-config keys over the population's base env config (e.g. another
    data period or penalty); ``seed`` -- weights, replay sampling and exploration keys;
    ``name`` -- how logs and results call it (default ``member-<index>``)."""

    agent: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    name: str | None = None

    @classmethod
    def coerce(cls, value: Member | Mapping[str, Any]) -> Member:
        """A :class:`Member` from itself or a dict ``{"agent", "env", "seed", "name"}``."""
        if isinstance(value, Member):
            return value
        unknown = set(value) - {"agent", "env", "seed", "name"}
        if unknown:
            raise ValueError(f"population member keys {sorted(unknown)} are unknown; a member "
                             "is {'agent': {...}, 'env': {...}, 'seed': int, 'name': str}")
        return cls(agent=dict(value.get("agent") or {}), env=dict(value.get("env") or {}),
                   seed=int(value.get("seed", 0)), name=value.get("name"))

    def params(self) -> Any:
        """This member's :class:`~rsc_policy.agent.sequential.AgentParams` (validated)."""
        from rsc_policy.agent.params import AgentParams

        agent = dict(self.agent)
        if "lr" in agent:
            if "learning_rate" in agent and agent["learning_rate"] != agent["lr"]:
                raise ValueError("a member gives lr and learning_rate with different values")
            agent["learning_rate"] = agent.pop("lr")
        names = {f.name for f in dataclasses.fields(AgentParams)}
        unknown = sorted(set(agent) - names)
        if unknown:
            raise ValueError(f"population member agent settings {unknown} are unknown; "
                             f"known: {sorted(names)}")
        return AgentParams(**agent)


def initial_weights(obs_dim: int, n_actions: int, seeds: Sequence[int]) -> np.ndarray:
    """``[K, P]``: each seed's initial weights of :func:`build_qnet` as one flat row (layer
    order ``w1, b1, w2, b2, w3, b3``, as :func:`rsc_policy.agent.update._flatten` lays them)."""
    return np.stack([torch.cat([p.detach().reshape(-1)
                                for p in build_qnet(obs_dim, n_actions, s).parameters()]).numpy()
                     for s in seeds])


class Population:
    """K members' networks, Adam state, replay memories and schedules as ``[K, ...]`` arrays.

    Args:
        obs_dim: observation length; ``n_actions``: actions.
        params: each member's :class:`~rsc_policy.agent.sequential.AgentParams`.
        seeds: each member's seed.
        weights, target: ``[K, P]`` float32 arrays to hold the networks (e.g. numpy views of
            an RLModule's tensors); they are set to the seeded initial weights.
    """

    def __init__(self, obs_dim: int, params: Sequence[Any], seeds: Sequence[int],
                 n_actions: int = N_ACTIONS, *, weights: np.ndarray | None = None,
                 target: np.ndarray | None = None) -> None:
        if len(params) != len(seeds) or not params:
            raise ValueError("a population needs one seed per member and at least one member")
        k = len(params)
        self.k, self.obs_dim, self.n_actions = k, int(obs_dim), int(n_actions)
        self.member_params, self.seeds = list(params), [int(s) for s in seeds]
        self.dims = (self.obs_dim, 64, 64, self.n_actions)
        init = initial_weights(obs_dim, n_actions, self.seeds)
        self.params = init if weights is None else weights
        self.target = init.copy() if target is None else target
        self.params[...] = init
        self.target[...] = init
        self.grad = np.zeros_like(self.params)
        self.exp_avg = np.zeros_like(self.params)
        self.exp_avg_sq = np.zeros_like(self.params)
        self.adam_step = np.zeros(k, dtype=np.float32)  # torch keeps Adam's step as float32
        self.sync_count = np.zeros(k, dtype=np.int64)  # learning steps: the target-copy clock
        p = self.member_params
        self.capacity = np.array([q.memory_size for q in p], dtype=np.int64)
        self.memory = np.zeros((k, int(self.capacity.max()), transition_width(obs_dim)),
                               dtype=np.float32)
        self.mem_next = np.zeros(k, dtype=np.int64)
        self.mem_size = np.zeros(k, dtype=np.int64)
        self.rng_state = np.stack([state_to_array(np.random.default_rng(s).bit_generator.state)
                                   for s in self.seeds])
        self.batch_size = np.array([q.batch_size for q in p], dtype=np.int64)
        self.gamma = np.array([q.gamma for q in p], dtype=np.float64)
        self.lr = np.array([q.learning_rate for q in p], dtype=np.float64)
        self.target_freq = np.array([q.target_update_freq for q in p], dtype=np.int64)
        self.loss_kind = np.array([kernels.LOSS_HUBER if q.td_error_loss_fn == "huber"
                                   else kernels.LOSS_MSE for q in p], dtype=np.int64)
        self.double_q = np.array([q.double_q for q in p], dtype=np.bool_)
        self.clip_kind = np.full(k, kernels.CLIP_NONE, dtype=np.int64)
        self.clip = np.zeros(k, dtype=np.float64)
        self.num_updates = np.zeros(k, dtype=np.int64)
        self.schedules = [build_schedule(q.epsilon_schedule, q.epsilon, q.epsilon_decay,
                                         q.epsilon_min, fraction=q.epsilon_fraction,
                                         total_steps=q.epsilon_total_steps) for q in p]
        self.threads: int | None = None  # threads of the compiled step (None: numba's)
        self.selections = np.zeros(k, dtype=np.int64)  # per member: its exploration `t`
        self.seed_keys = seed_keys(self.seeds)

    # ------------------------------------------------------------------ acting
    def epsilons(self) -> np.ndarray:
        """Each member's epsilon for its next action selection."""
        return np.array([s(int(t)) for s, t in zip(self.schedules, self.selections,
                                                   strict=True)])

    def greedy(self, obs: np.ndarray, members: np.ndarray) -> np.ndarray:
        """``argmax_a Q`` of row ``i`` under member ``members[i]``'s network (one call)."""
        return kernels.population_greedy(np.ascontiguousarray(obs, dtype=np.float32),
                                         np.asarray(members, dtype=np.int64), self.params,
                                         *self.dims)

    def act(self, obs: np.ndarray, members: np.ndarray) -> np.ndarray:
        """Epsilon-greedy action of each listed member on its row of ``obs``: the single
        agent's rule (draw keyed on ``(seed, 0, t, 0)``, then ``t += 1``)."""
        members = np.asarray(members, dtype=np.int64)
        zeros = np.zeros(len(members), dtype=np.int64)
        t = self.selections[members]
        eps = np.array([self.schedules[m](int(t[i])) for i, m in enumerate(members)])
        out = keyed_epsilon_greedy(self.greedy(obs, members), eps, self.seed_keys[members],
                                   zeros, t, zeros, self.n_actions)
        self.selections[members] += 1
        return out

    def end_episode(self, member: int) -> None:
        """Member ``member`` finished an episode (the ``per_episode`` schedule decays)."""
        s = self.schedules[member]
        if isinstance(s, EpisodeSchedule):
            s.episode_finished(int(self.selections[member]))

    # ------------------------------------------------------------------ memory
    def remember(self, members: np.ndarray, obs: np.ndarray, actions: np.ndarray,
                 rewards: np.ndarray, next_obs: np.ndarray, dones: np.ndarray) -> None:
        """Store transition ``i`` in the ring of member ``members[i]``; each member's
        transitions in the order given (the oldest evicted first when a ring is full).
        One compiled loop (:func:`~rsc_policy.agent.kernels.population_remember`): numpy's
        fancy indexing took ~45 us per call, most of a small population's step."""
        if len(members) == 0:
            return
        f32 = np.float32
        kernels.population_remember(
            self.memory, self.mem_next, self.mem_size, self.capacity,
            np.asarray(members, dtype=np.int64), np.asarray(obs, dtype=f32),
            np.asarray(actions, dtype=f32), np.asarray(rewards, dtype=f32),
            np.asarray(next_obs, dtype=f32), np.asarray(dones, dtype=f32))

    def can_learn(self) -> np.ndarray:
        """Per member: whether its memory holds more than ``batch_size`` transitions."""
        return self.mem_size > self.batch_size

    # ------------------------------------------------------------------ learning
    def learn(self, steps: np.ndarray) -> np.ndarray:
        """``steps[k]`` learning steps of each member ``k`` in one compiled call; returns the
        losses ``[K, max(steps)]`` (NaN where a member took fewer)."""
        steps = np.asarray(steps, dtype=np.int64)
        n = int(steps.max()) if len(steps) else 0
        losses = np.full((self.k, max(n, 1)), np.nan, dtype=np.float64)
        if n == 0:
            return losses[:, :0]
        torch.set_flush_denormal(True)  # as the single agent's step does (see update.py)
        threads = kernels.call_threads(self.threads)
        learn = kernels.population_learn
        if threads == 1 or np.count_nonzero(steps) == 1:  # nothing to share: no thread pool
            learn = kernels.population_learn_serial
        else:
            kernels.use_threads(threads)
        beta1, beta2 = ADAM_BETAS
        learn(
            self.params, self.target, self.grad, self.exp_avg, self.exp_avg_sq,
            self.adam_step, self.sync_count, self.memory, self.mem_size, self.rng_state,
            steps, self.batch_size, *self.dims, self.gamma, self.lr, beta1, beta2, ADAM_EPS,
            self.loss_kind, self.double_q, self.clip_kind, self.clip, self.target_freq, losses)
        self.num_updates += steps
        return losses

    # ------------------------------------------------------------------ views
    def qnet(self, member: int) -> torch.nn.Sequential:
        """A copy of member ``member``'s Q-network as an ordinary ``nn.Sequential``."""
        return qnet_from_flat(self.params[member], self.n_actions)

    def member_policy(self, member: int) -> MemberPolicy:
        """The greedy policy of one member (live view of its weights)."""
        return MemberPolicy(self, member)

    def get_state(self) -> dict[str, Any]:
        """Everything that learning depends on (for checkpoints)."""
        arrays = ("params", "target", "exp_avg", "exp_avg_sq", "adam_step", "sync_count",
                  "memory", "mem_next", "mem_size", "num_updates", "selections")
        return {**{a: getattr(self, a).copy() for a in arrays},
                "rng": [array_to_state(r) for r in self.rng_state],
                "episode_ends": [list(getattr(s, "ends", [])) for s in self.schedules]}

    def set_state(self, state: Mapping[str, Any]) -> None:
        for name, value in state.items():
            if name == "rng":
                self.rng_state = np.stack([state_to_array(r) for r in value])
            elif name == "episode_ends":
                for s, ends in zip(self.schedules, value, strict=True):
                    if isinstance(s, EpisodeSchedule):
                        s.ends = list(ends)
            else:
                current = getattr(self, name)
                if np.shape(value) != current.shape:
                    raise ValueError(f"population state {name!r} has shape {np.shape(value)}, "
                                     f"this population {current.shape} (another member list?)")
                current[...] = value


class FlatGreedy:
    """Greedy acting (``act(obs) -> int``) of row ``member`` of flat member weights
    ``params`` ``[K, P]`` (a population's learner weights) through the members' own compiled
    forward (:func:`~rsc_policy.agent.kernels.population_greedy`, as a
    :class:`MemberPolicy` acts): 5 us a call against a torch module's 61 (202-float
    observation, measured 2026-12-05), and the same actions as the population that trained
    the weights."""

    def __init__(self, params: np.ndarray, member: int, n_actions: int = N_ACTIONS,
                 hidden: int = 64) -> None:
        self.params = np.ascontiguousarray(params, dtype=np.float32)
        d = _flat_obs_dim(self.params.shape[1], n_actions, hidden)
        self.dims = (d, hidden, hidden, n_actions)
        self.member = np.array([int(member)], dtype=np.int64)

    def act(self, obs: np.ndarray) -> int:
        x = np.ascontiguousarray(np.reshape(obs, (1, -1)), dtype=np.float32)
        return int(kernels.population_greedy(x, self.member, self.params, *self.dims)[0])

    __call__ = act


class MemberPolicy:
    """Greedy acting of one population member (``greedy(obs) -> int``, like
    :meth:`StrategyAgent.greedy`)."""

    def __init__(self, population: Population, member: int) -> None:
        self.population, self.member = population, int(member)

    def greedy(self, obs: np.ndarray) -> int:
        return int(self.population.greedy(np.reshape(obs, (1, -1)),
                                          np.array([self.member]))[0])

    __call__ = greedy


# ---------------------------------------------------------------------- plain loop
def member_env_configs(base_env: Mapping[str, Any] | None,
                       members: Sequence[Member]) -> list[dict[str, Any]]:
    """Each member's env config: the base config with the member's ``env`` keys over it."""
    return [{**dict(base_env or {}), **dict(m.env)} for m in members]


def train_population(
    base_env: Mapping[str, Any] | None,
    members: Sequence[Member | Mapping[str, Any]],
    *,
    episodes: int | None = None,
    env_steps: int | None = None,
    on_episode_end: Callable[[int, dict[str, Any]], None] | None = None,
    threads: int | None = None,
    engine: str = "auto",
) -> list[Any]:
    """Train a population with the plain loop; each member stops after ``episodes`` or
    ``env_steps`` of its own (as :func:`~rsc_policy.agent.sequential.train_sequential`).

    Each member gets its own :class:`rsc_env.TradingEnv` (base config + its ``env`` keys),
    first reset seeded with its seed. Per step: one batched greedy forward for the active
    members, their env steps, one transition each into its memory, then one compiled call
    that runs one learning step for each member whose memory holds more than its batch.
    Returns one :class:`~rsc_policy.agent.sequential.SequentialResult` per member
    (``agent`` is its :class:`MemberPolicy`; ``wall_time_s`` is the population's).
    ``on_episode_end(member, info)`` receives each terminal info; ``threads``: threads of the
    compiled learning call (default: numba's, every core).

    ``engine``: ``"python"`` runs the loop above; ``"compiled"`` runs each member's whole
    training -- env rules, acting, replay, learning -- in compiled code, one member per thread
    at a time (:mod:`rsc_policy.agent.compiled_loop`; the same numbers, bit for bit), whose
    ``episodes`` hold each finished episode's ``total_reward``, ``final_portfolio_value`` and
    ``total_steps`` only; ``"auto"`` (default): compiled unless ``on_episode_end`` wants the
    terminal infos.
    """
    from rsc_env import TradingEnv
    from rsc_policy.agent.sequential import SequentialResult, run_total

    if episodes is None and env_steps is None:
        raise ValueError("give episodes= or env_steps=")
    torch.set_num_threads(1)
    members = [Member.coerce(m) for m in members]
    envs = [TradingEnv(c) for c in member_env_configs(base_env, members)]
    params = []
    for m, env in zip(members, envs, strict=True):
        agent = dict(m.agent)
        if agent.get("epsilon_schedule") == "linear" and agent.get(
                "epsilon_total_steps") is None:  # as train_sequential: the run's total
            agent["epsilon_total_steps"] = run_total(env, episodes, env_steps)
        params.append(dataclasses.replace(m, agent=agent).params())
    obs_dim = int(np.prod(envs[0].observation_space.shape))
    if any(int(np.prod(e.observation_space.shape)) != obs_dim for e in envs):
        raise ValueError("population members must share one observation size (same "
                         "window_size and observe_position)")
    pop = Population(obs_dim, params, [m.seed for m in members])
    pop.threads = threads
    k = pop.k
    if engine not in ("auto", "python", "compiled"):
        raise ValueError(f"engine must be 'auto', 'python' or 'compiled', got {engine!r}")
    if engine == "compiled" or (engine == "auto" and on_episode_end is None):
        return _train_compiled(pop, envs, episodes, env_steps, threads)
    obs = np.stack([env.reset(seed=m.seed)[0] for env, m in zip(envs, members, strict=True)])
    logs: list[dict[str, list[Any]]] = [
        {"actions": [], "rewards": [], "epsilons": [], "losses": [], "episodes": []}
        for _ in range(k)]
    start = time.perf_counter()

    def running(i: int) -> bool:
        return (env_steps is None or len(logs[i]["actions"]) < env_steps) and (
            episodes is None or len(logs[i]["episodes"]) < episodes)

    active = np.array([i for i in range(k) if running(i)], dtype=np.int64)
    next_obs = np.empty_like(obs)
    while len(active):
        eps = pop.epsilons()
        actions = pop.act(obs[active], active)
        rewards = np.empty(len(active))
        dones = np.zeros(len(active), dtype=bool)
        infos = []
        for j, i in enumerate(active):
            o2, r, term, trunc, info = envs[i].step(int(actions[j]))
            next_obs[i] = o2
            rewards[j], dones[j] = r, term or trunc
            infos.append(info)
        pop.remember(active, obs[active], actions, rewards, next_obs[active], dones)
        steps = np.zeros(k, dtype=np.int64)
        steps[active] = pop.can_learn()[active]
        losses = pop.learn(steps)
        for j, i in enumerate(active):
            log = logs[i]
            log["epsilons"].append(float(eps[i]))
            log["actions"].append(int(actions[j]))
            log["rewards"].append(float(rewards[j]))
            log["losses"].append(float(losses[i, 0]) if steps[i] else None)
            if dones[j]:
                pop.end_episode(i)
                info = infos[j]
                log["episodes"].append({key: v for key, v in info.items()
                                        if key not in ("episode_log", "completed_trades")})
                if on_episode_end is not None:
                    on_episode_end(int(i), info)
                obs[i] = envs[i].reset()[0]
            else:
                obs[i] = next_obs[i]
        active = np.array([i for i in active if running(i)], dtype=np.int64)
    wall = time.perf_counter() - start
    results = []
    for i in range(k):
        log = logs[i]
        results.append(SequentialResult(
            actions=np.asarray(log["actions"], dtype=np.int64),
            rewards=np.asarray(log["rewards"], dtype=np.float64),
            epsilons=np.asarray(log["epsilons"], dtype=np.float64),
            losses=log["losses"], episodes=log["episodes"],
            state_dict=_state_dict(pop.params[i], pop.n_actions),
            target_state_dict=_state_dict(pop.target[i], pop.n_actions),
            env_steps=len(log["actions"]), num_updates=int(pop.num_updates[i]),
            wall_time_s=wall, agent=pop.member_policy(i)))
    return results


def _train_compiled(pop: Population, envs: list[Any], episodes: int | None,
                    env_steps: int | None, threads: int | None) -> list[Any]:
    from rsc_policy.agent.compiled_loop import train_compiled
    from rsc_policy.agent.sequential import SequentialResult

    totals = []
    for env in envs:
        caps = [c for c in (env_steps, None if episodes is None
                            else episodes * env.episode_length) if c is not None]
        totals.append(min(caps))
    start = time.perf_counter()
    out = train_compiled(pop, envs, np.asarray(totals, dtype=np.int64), threads)
    wall = time.perf_counter() - start
    results = []
    for i, n in enumerate(totals):
        length = envs[i].episode_length
        done = [{"total_reward": float(r), "final_portfolio_value": float(v),
                 "total_steps": length}
                for r, v in zip(out["episode_reward"][i], out["episode_value"][i], strict=True)
                if not np.isnan(r)]
        losses = out["losses"][i, :n].tolist()
        for j in np.flatnonzero(np.isnan(out["losses"][i, :n])):
            losses[j] = None  # no learning step yet (replay not above the batch size)
        results.append(SequentialResult(
            actions=out["actions"][i, :n].copy(), rewards=out["rewards"][i, :n].copy(),
            epsilons=out["epsilons"][i, :n].copy(), losses=losses, episodes=done,
            state_dict=_state_dict(pop.params[i], pop.n_actions),
            target_state_dict=_state_dict(pop.target[i], pop.n_actions),
            env_steps=int(n), num_updates=int(pop.num_updates[i]), wall_time_s=wall,
            agent=pop.member_policy(i)))
    return results


def _state_dict(flat: np.ndarray, n_actions: int) -> dict[str, torch.Tensor]:
    """The state dict of the Q-network holding the flat weight row ``flat`` (a copy, as
    ``train_sequential`` returns it)."""
    net = qnet_from_flat(flat, n_actions)
    return {name: v.detach().clone() for name, v in net.state_dict().items()}


def train_populations(
    members: Sequence[Member | Mapping[str, Any]],
    *,
    episodes: int | None = None,
    env_steps: int | None = None,
    threads: int | None = None,
) -> list[Any]:
    """:func:`train_population` for members whose observations may differ in size (window,
    position observed): one population per observation size, results in member order. Each
    member's ``env`` is its whole env config (no base)."""
    members = [Member.coerce(m) for m in members]
    groups: dict[tuple[Any, bool], list[int]] = {}
    for i, m in enumerate(members):
        key = (m.env.get("window_size"), bool(m.env.get("observe_position", False)))
        groups.setdefault(key, []).append(i)
    results: list[Any] = [None] * len(members)
    for idx in groups.values():
        trained = train_population(None, [members[i] for i in idx], episodes=episodes,
                                   env_steps=env_steps, threads=threads)
        for i, res in zip(idx, trained, strict=True):
            results[i] = res
    return results


def _flat_obs_dim(size: int, n_actions: int, hidden: int) -> int:
    """The observation size of a ``hidden``-``hidden`` Q-network of ``size`` flat weights."""
    fixed = hidden + hidden * hidden + hidden + n_actions * hidden + n_actions
    obs_dim, rest = divmod(size - fixed, hidden)
    if rest or obs_dim < 1:
        raise ValueError(f"{size} weights are not a {hidden}-{hidden} Q-network")
    return obs_dim


def qnet_from_flat(flat: np.ndarray, n_actions: int = N_ACTIONS, hidden: int = 64
                   ) -> torch.nn.Sequential:
    """The team's Q-network holding the flat weight vector ``flat`` (layout of
    :func:`initial_weights`; the observation size follows from its length)."""
    obs_dim = _flat_obs_dim(len(flat), n_actions, hidden)
    net = build_qnet(obs_dim, n_actions, 0)
    _load_flat(net, np.asarray(flat, dtype=np.float32))
    return net


def _load_flat(net: torch.nn.Sequential, flat: np.ndarray) -> None:
    offset = 0
    with torch.no_grad():
        for layer in linear_layers(net):
            for p in (layer.weight, layer.bias):
                p.copy_(torch.from_numpy(flat[offset:offset + p.numel()].copy()).view_as(p))
                offset += p.numel()
