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

from rsc_env.compiled import P_WINDOW, S_PV, STATE_SIZE, env_param_vector, env_reset, env_step
from rsc_policy.agent import kernels
from rsc_policy.agent.exploration import keyed_action
from rsc_policy.agent.population import ADAM_BETAS, ADAM_EPS
from rsc_policy.agent.schedule import EpisodeSchedule, EpsilonSchedule


def epsilon_table(schedule: Any, total: int, episode_length: int) -> np.ndarray:
    """``schedule(t)`` for the selections ``t = 0 .. total - 1`` of a member whose episodes
    last ``episode_length`` steps (episode ends counted as the loop counts them)."""
    if isinstance(schedule, EpsilonSchedule):  # the precomputed values, then the floor
        out = np.full(total, schedule.final)
        head = min(total, len(schedule.values))
        out[:head] = schedule.values[:head]
        return out
    out = np.empty(total)
    per_episode = isinstance(schedule, EpisodeSchedule)
    for t in range(total):
        out[t] = schedule(t)
        if per_episode and (t + 1) % episode_length == 0:
            schedule.episode_finished(t + 1)
    return out


def train_compiled(pop: Any, envs: list[Any], totals: np.ndarray, threads: int | None
                   ) -> dict[str, np.ndarray]:
    """Train every member ``k`` of ``pop`` for ``totals[k]`` env steps on ``envs[k]``.

    Returns ``actions``, ``rewards``, ``epsilons``, ``losses`` (NaN: no learning step) as
    ``[K, max(totals)]`` arrays and ``episode_reward`` / ``episode_value`` ``[K, episodes]``
    (each finished episode's total reward and final portfolio value).
    """
    k = pop.k
    width = max(totals)
    rows = max(len(e.unwrapped.market.close) for e in envs)
    dim = pop.obs_dim
    observations = np.zeros((k, rows, dim), dtype=np.float32)
    close = np.zeros((k, rows))
    n_rows = np.zeros(k, dtype=np.int64)
    params = np.zeros((k, len(env_param_vector(envs[0]))))
    for i, env in enumerate(envs):
        market = env.unwrapped.market
        n = len(market.close)
        observations[i, :n] = market.observations
        close[i, :n] = market.close
        n_rows[i] = n
        params[i] = env_param_vector(env)
    eps = np.zeros((k, width))
    for i in range(k):
        eps[i, :totals[i]] = epsilon_table(pop.schedules[i], int(totals[i]), int(n_rows[i] - 1))
    episodes = int(max(t // (n - 1) for t, n in zip(totals, n_rows, strict=True))) + 1
    out = {"actions": np.zeros((k, width), dtype=np.int64), "rewards": np.zeros((k, width)),
           "losses": np.full((k, width), np.nan), "episode_reward": np.full((k, episodes), np.nan),
           "episode_value": np.full((k, episodes), np.nan)}
    beta1, beta2 = ADAM_BETAS
    kernels.use_threads(kernels.call_threads(threads))  # one launch per training: 1 is fine
    with numba.parallel_chunksize(1):  # members of unequal length: one at a time per thread
        population_train(
            np.asarray(totals, dtype=np.int64), observations, close, n_rows, params, eps,
            pop.seed_keys, pop.params, pop.target, pop.grad, pop.exp_avg, pop.exp_avg_sq,
            pop.adam_step, pop.sync_count, pop.memory, pop.mem_next, pop.mem_size,
            pop.capacity, pop.rng_state, pop.batch_size, *pop.dims, pop.gamma, pop.lr, beta1,
            beta2, ADAM_EPS, pop.loss_kind, pop.double_q, pop.clip_kind, pop.clip,
            pop.target_freq, out["actions"], out["rewards"], out["losses"],
            out["episode_reward"], out["episode_value"])
    pop.selections[:] = totals
    pop.num_updates += np.sum(~np.isnan(out["losses"]), axis=1)
    out["epsilons"] = eps
    return out


@njit(cache=True, error_model="numpy")
def _train_member(m, totals, observations, close, n_rows, params, eps, seed_keys, w,
                  target, grad, exp_avg, exp_avg_sq, adam_step, sync_count, memory, mem_next,
                  mem_size, capacity, rng_state, batch_size, d, h1, h2, a, gamma, lr, beta1,
                  beta2, adam_eps, loss_kind, double_q, clip_kind, clip, target_freq, actions,
                  rewards, losses, episode_reward, episode_value):
    """Member ``m``'s whole training (see :func:`train_compiled`)."""
    kernels.flush_denormals()  # this thread's arithmetic as the learning step's
    n = n_rows[m]
    obs_table = observations[m, :n]
    prices = close[m, :n]
    prm = params[m]
    state = np.zeros(STATE_SIZE)
    window = np.zeros(int(prm[P_WINDOW]))  # the rolling-Sharpe ring and fsum's scratch
    partials = np.zeros(int(prm[P_WINDOW]))
    obs = np.empty((1, d), dtype=np.float32)
    nxt = np.empty(d, dtype=np.float32)
    b = batch_size[m]
    idx = np.empty(b, dtype=np.int64)
    batch = np.empty((b, memory.shape[2]), dtype=np.float32)
    work = np.empty(kernels.work_size(b, d, h1, h2, a), dtype=np.float32)
    act_h1 = np.empty((1, h1), dtype=np.float32)  # the acting forward's activations
    act_h2 = np.empty((1, h2), dtype=np.float32)
    q = np.empty((1, a), dtype=np.float32)
    w1, b1, w2, b2, w3, b3 = kernels.layer_views(w[m], d, h1, h2, a)
    env_reset(state, prm, obs_table, prices, obs[0])
    episode, total_reward = 0, 0.0
    key = np.uint64(seed_keys[m])
    for t in range(totals[m]):
        # act: greedy forward, then the keyed draw (seed, runner 0, t, env 0)
        kernels.forward_into(obs, w1, b1, w2, b2, w3, b3, act_h1, act_h2, q)
        action = keyed_action(kernels.argmax_row(q, 0), eps[m, t], key, 0, t, 0, a)
        reward, done = env_step(state, prm, obs_table, prices, action, window, partials, nxt)
        actions[m, t] = action
        rewards[m, t] = reward
        total_reward += reward
        kernels.remember_row(memory, mem_next, mem_size, capacity, m, obs[0], nxt, action,
                             reward, 1.0 if done else 0.0)
        if mem_size[m] > b:  # learn: one step of batch_size distinct rows
            losses[m, t] = kernels.replay_step(
                m, idx, batch, work, w, target, grad, exp_avg, exp_avg_sq, adam_step, sync_count,
                memory, mem_size, rng_state, d, h1, h2, a, gamma, lr, beta1, beta2, adam_eps,
                loss_kind, double_q, clip_kind, clip, target_freq)
        if done:
            episode_reward[m, episode] = total_reward
            episode_value[m, episode] = state[S_PV]
            episode += 1
            total_reward = 0.0
            env_reset(state, prm, obs_table, prices, obs[0])
        else:
            obs[0, :] = nxt


@njit(cache=True, parallel=True)
def population_train(totals, observations, close, n_rows, params, eps, seed_keys, w,
                     target, grad, exp_avg, exp_avg_sq, adam_step, sync_count, memory, mem_next,
                     mem_size, capacity, rng_state, batch_size, d, h1, h2, a, gamma, lr, beta1,
                     beta2, adam_eps, loss_kind, double_q, clip_kind, clip, target_freq,
                     actions, rewards, losses, episode_reward, episode_value):
    """Every member's training (:func:`_train_member`), members over numba's threads."""
    for m in prange(w.shape[0]):
        _train_member(m, totals, observations, close, n_rows, params, eps, seed_keys,
                      w, target, grad, exp_avg, exp_avg_sq, adam_step, sync_count, memory,
                      mem_next, mem_size, capacity, rng_state, batch_size, d, h1, h2, a, gamma,
                      lr, beta1, beta2, adam_eps, loss_kind, double_q, clip_kind, clip,
                      target_freq, actions, rewards, losses, episode_reward, episode_value)
