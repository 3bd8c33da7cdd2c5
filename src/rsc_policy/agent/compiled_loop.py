"""A population's whole training loop in compiled code: env, acting, replay and learning of
each member in one thread, members spread over the cores (the shape of Podracer's Anakin).

:func:`~rsc_policy.agent.population.train_population` steps every member's
:class:`rsc_env.TradingEnv` from Python and then makes one learning call for all members, so
each member's learning state (~225 KB: weights, target, gradient, Adam's moments) leaves the
cache between its steps, and every step pays Python's per-member costs. Here a thread runs
one member's whole training -- the env rules of :mod:`rsc_env.compiled`, the greedy forward,
the keyed epsilon-greedy draw, the replay ring and :func:`~rsc_policy.agent.kernels.
member_step` -- before it takes the next member, so the member's state stays in cache and no
Python runs per step. The rule is the sequential one, in the same order with the same
arithmetic: ``tests/policy/test_population.py`` holds every member equal to
``train_sequential`` and to the Python loop, bit for bit.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba import njit, prange

from rsc_env.compiled import (
    P_WINDOW,
    S_PV,
    S_T,
    STATE_SIZE,
    copy_into,
    env_param_vector,
    env_reset,
    env_step,
)
from rsc_policy.agent import kernels
from rsc_policy.agent.exploration import keyed_action
from rsc_policy.agent.population import ADAM_BETAS, ADAM_EPS
from rsc_policy.agent.schedule import EpisodeSchedule, EpsilonSchedule, LinearSchedule


def epsilon_range(schedule: Any, start: int, n: int, episode_length: int) -> np.ndarray:
    """``schedule(t)`` for the selections ``t = start .. start + n - 1`` of a member whose
    episodes last ``episode_length`` steps. A per-episode schedule is told of each episode
    end the range passes, so consecutive ranges continue it as one loop would."""
    if isinstance(schedule, EpsilonSchedule):  # the precomputed values, then the floor
        out = np.full(n, schedule.final)
        head = max(0, min(start + n, len(schedule.values)) - start)
        out[:head] = schedule.values[start:start + head]
        return out
    t = np.arange(start, start + n)
    if isinstance(schedule, LinearSchedule):  # its formula elementwise: the same float64 ops
        if schedule.horizon == 0:
            return np.full(n, schedule.eps_min)
        return np.where(t >= schedule.horizon, schedule.eps_min,
                        schedule.epsilon + (schedule.eps_min - schedule.epsilon)
                        * (t / schedule.horizon))
    out = np.empty(n)
    per_episode = isinstance(schedule, EpisodeSchedule)
    for i in range(n):
        out[i] = schedule(int(t[i]))
        if per_episode and (t[i] + 1) % episode_length == 0:
            schedule.episode_finished(int(t[i]) + 1)
    return out


class CompiledRollout:
    """Each member of ``pop`` stepping its own env (``envs[k]``) in compiled code, resumable.

    Holds what a member's env carries between calls of :meth:`advance` -- the env state
    vector, the rolling-Sharpe ring, the current observation and the running episode reward
    (the member's step count is the population's ``selections``: its exploration ``t``) --
    so training in rounds (an RLlib iteration, a Tune report) continues exactly where the
    last round stopped: ``advance(a)`` then ``advance(b)`` is ``advance(a + b)``, bit for
    bit. Every env is reset once, here.
    """

    STATE = ("state", "window", "partials", "obs", "episode_reward")

    def __init__(self, pop: Any, envs: list[Any]) -> None:
        k = pop.k
        if len(envs) != k:
            raise ValueError(f"{len(envs)} envs for a population of {k} members")
        self.pop = pop
        rows = max(len(e.unwrapped.market.close) for e in envs)
        dim = pop.obs_dim
        self.observations = np.zeros((k, rows, dim), dtype=np.float32)
        self.close = np.zeros((k, rows))
        self.n_rows = np.zeros(k, dtype=np.int64)
        self.env_params = np.zeros((k, len(env_param_vector(envs[0]))))
        for i, env in enumerate(envs):
            market = env.unwrapped.market
            n = len(market.close)
            if market.observations.shape[1] != dim:
                raise ValueError(f"member {i}: its env observes {market.observations.shape[1]} "
                                 f"floats, the population {dim}")
            self.observations[i, :n] = market.observations
            self.close[i, :n] = market.close
            self.n_rows[i] = n
            self.env_params[i] = env_param_vector(env)
        width = max(1, int(self.env_params[:, P_WINDOW].max()))
        self.state = np.zeros((k, STATE_SIZE))
        self.window = np.zeros((k, width))  # each member's rolling-Sharpe ring, fsum scratch
        self.partials = np.zeros((k, width))
        self.obs = np.zeros((k, dim), dtype=np.float32)
        self.episode_reward = np.zeros(k)  # the running episode's total reward
        _reset_all(self.state, self.env_params, self.observations, self.close, self.n_rows,
                   self.obs)

    @property
    def episode_lengths(self) -> np.ndarray:
        """Steps of each member's episodes (every episode walks all its bars)."""
        return self.n_rows - 1

    def steps_to_episode_end(self, episodes: int = 1) -> np.ndarray:
        """Env steps that take each member to the end of its ``episodes``-th next episode end
        (``episodes`` whole episodes from an episode start): members of unequal periods take
        unequal steps."""
        return episodes * self.episode_lengths - self.state[:, S_T].astype(np.int64)

    def advance(self, steps: np.ndarray, threads: int | None = None) -> dict[str, np.ndarray]:
        """``steps[k]`` more env steps of each member ``k`` (one learning step each once its
        replay holds more than its batch, the sequential rule).

        Returns ``actions``, ``rewards``, ``epsilons``, ``losses`` (NaN: no learning step) as
        ``[K, max(steps)]`` arrays (row ``k`` filled up to ``steps[k]``) and the episodes this
        call finished as ``episode_reward`` / ``episode_value`` ``[K, E]`` (each one's total
        reward and final portfolio value, NaN past a member's count)."""
        pop = self.pop
        steps = np.broadcast_to(np.asarray(steps, dtype=np.int64), (pop.k,)).copy()
        width = max(1, int(steps.max()))
        eps = np.zeros((pop.k, width))
        for i in range(pop.k):
            eps[i, :steps[i]] = epsilon_range(pop.schedules[i], int(pop.selections[i]),
                                              int(steps[i]), int(self.episode_lengths[i]))
        episodes = int(np.max((self.state[:, S_T] + steps) // self.episode_lengths)) + 1
        out = {"actions": np.zeros((pop.k, width), dtype=np.int64),
               "rewards": np.zeros((pop.k, width)),
               "losses": np.full((pop.k, width), np.nan),
               "episode_reward": np.full((pop.k, episodes), np.nan),
               "episode_value": np.full((pop.k, episodes), np.nan)}
        beta1, beta2 = ADAM_BETAS
        kernels.use_threads(kernels.call_threads(threads))  # one launch per call: 1 is fine
        with numba.parallel_chunksize(1):  # members of unequal length: one at a time per thread
            population_advance(
                steps, pop.selections, self.observations, self.close, self.n_rows,
                self.env_params, eps, self.state, self.window, self.partials, self.obs,
                self.episode_reward,
                pop.seed_keys, pop.params, pop.target, pop.grad, pop.exp_avg, pop.exp_avg_sq,
                pop.adam_step, pop.sync_count, pop.memory, pop.mem_next, pop.mem_size,
                pop.capacity, pop.rng_state, pop.batch_size, *pop.dims, pop.gamma, pop.lr,
                beta1, beta2, ADAM_EPS, pop.loss_kind, pop.double_q, pop.clip_kind, pop.clip,
                pop.target_freq, out["actions"], out["rewards"], out["losses"],
                out["episode_reward"], out["episode_value"])
        pop.selections += steps
        pop.num_updates += np.sum(~np.isnan(out["losses"]), axis=1)
        out["epsilons"] = eps
        return out

    def get_state(self) -> dict[str, np.ndarray]:
        """The envs' state between calls (copies), for a checkpoint."""
        return {name: getattr(self, name).copy() for name in self.STATE}

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`get_state` of a rollout over the same members and data."""
        for name in self.STATE:
            current = getattr(self, name)
            value = np.asarray(state[name])
            if value.shape != current.shape:
                raise ValueError(f"rollout state {name!r} has shape {value.shape}, this "
                                 f"rollout {current.shape} (other members or data?)")
            current[...] = value


def train_compiled(pop: Any, envs: list[Any], totals: np.ndarray, threads: int | None
                   ) -> dict[str, np.ndarray]:
    """Train every member ``k`` of ``pop`` for ``totals[k]`` env steps on ``envs[k]`` from a
    fresh reset (:meth:`CompiledRollout.advance` of a new rollout)."""
    return CompiledRollout(pop, envs).advance(np.asarray(totals, dtype=np.int64), threads)


@njit(cache=True)
def _reset_all(state, params, observations, close, n_rows, obs):
    for m in range(state.shape[0]):
        n = n_rows[m]
        env_reset(state[m], params[m], observations[m, :n], close[m, :n], obs[m])


@njit(cache=True, error_model="numpy")
def _advance_member(m, steps, done_steps, observations, close, n_rows, params, eps, state,
                    window, partials, obs, episode_reward, seed_keys, w, target, grad, exp_avg,
                    exp_avg_sq, adam_step, sync_count, memory, mem_next, mem_size, capacity,
                    rng_state, batch_size, d, h1, h2, a, gamma, lr, beta1, beta2, adam_eps,
                    loss_kind, double_q, clip_kind, clip, target_freq, actions, rewards,
                    losses, finished_reward, finished_value):
    """Member ``m``'s next ``steps[m]`` env steps (see :meth:`CompiledRollout.advance`)."""
    kernels.flush_denormals()  # this thread's arithmetic as the learning step's
    n = n_rows[m]
    obs_table = observations[m, :n]
    prices = close[m, :n]
    prm = params[m]
    width = int(prm[P_WINDOW])
    ring = window[m, :width]  # the rolling-Sharpe ring and fsum's scratch
    scratch = partials[m, :width]
    st = state[m]
    current = obs[m:m + 1]  # (1, d): the acting forward's input
    nxt = np.empty(d, dtype=np.float32)
    b = batch_size[m]
    idx = np.empty(b, dtype=np.int64)
    batch = np.empty((b, memory.shape[2]), dtype=np.float32)
    work = np.empty(kernels.work_size(b, d, h1, h2, a), dtype=np.float32)
    kernels.prepare_target(work, target[m], d, h1, h2, a)
    act_h1 = np.empty((1, h1), dtype=np.float32)  # the acting forward's activations
    act_h2 = np.empty((1, h2), dtype=np.float32)
    q = np.empty((1, a), dtype=np.float32)
    w1, b1, w2, b2, w3, b3 = kernels.layer_views(w[m], d, h1, h2, a)
    key = np.uint64(seed_keys[m])
    episode = 0
    for i in range(steps[m]):
        t = done_steps[m] + i  # the member's selection count: its exploration key's t
        # act: greedy forward, then the keyed draw (seed, runner 0, t, env 0)
        kernels.forward_into(current, w1, b1, w2, b2, w3, b3, act_h1, act_h2, q)
        action = keyed_action(kernels.argmax_row(q, 0), eps[m, i], key, 0, t, 0, a)
        reward, done = env_step(st, prm, obs_table, prices, action, ring, scratch, nxt)
        actions[m, i] = action
        rewards[m, i] = reward
        episode_reward[m] += reward
        kernels.remember_row(memory, mem_next, mem_size, capacity, m, current[0], nxt, action,
                             reward, 1.0 if done else 0.0)
        if mem_size[m] > b:  # learn: one step of batch_size distinct rows
            losses[m, i] = kernels.replay_step(
                m, idx, batch, work, w, target, grad, exp_avg, exp_avg_sq, adam_step,
                sync_count, memory, mem_size, rng_state, d, h1, h2, a, gamma, lr, beta1,
                beta2, adam_eps, loss_kind, double_q, clip_kind, clip, target_freq)
        if done:
            finished_reward[m, episode] = episode_reward[m]
            finished_value[m, episode] = st[S_PV]
            episode += 1
            episode_reward[m] = 0.0
            env_reset(st, prm, obs_table, prices, current[0])
        else:
            copy_into(current[0], nxt)


@njit(cache=True, parallel=True)
def population_advance(steps, done_steps, observations, close, n_rows, params, eps, state,
                       window, partials, obs, episode_reward, seed_keys, w, target, grad,
                       exp_avg, exp_avg_sq, adam_step, sync_count, memory, mem_next, mem_size,
                       capacity, rng_state, batch_size, d, h1, h2, a, gamma, lr, beta1, beta2,
                       adam_eps, loss_kind, double_q, clip_kind, clip, target_freq, actions,
                       rewards, losses, finished_reward, finished_value):
    """Every member's next steps (:func:`_advance_member`), members over numba's threads."""
    for m in prange(w.shape[0]):
        _advance_member(m, steps, done_steps, observations, close, n_rows, params, eps, state,
                        window, partials, obs, episode_reward, seed_keys, w, target, grad,
                        exp_avg, exp_avg_sq, adam_step, sync_count, memory, mem_next, mem_size,
                        capacity, rng_state, batch_size, d, h1, h2, a, gamma, lr, beta1, beta2,
                        adam_eps, loss_kind, double_q, clip_kind, clip, target_freq, actions,
                        rewards, losses, finished_reward, finished_value)
