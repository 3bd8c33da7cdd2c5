"""Statistical parity: throughput mode on 2 remote runners learns like the same schedule run
synchronously, and that schedule at one step per fragment is the sequential agent exactly.

Throughput mode changes two things against the team's rule, and they are tested apart:

* **The fragment schedule** (deterministic): runners act ``rollout_fragment_length`` steps with
  the weights of the fragment's start, then the learner takes the steps owed. With one step
  per fragment on the driver's runner it is the sequential rule bit for bit
  (``test_parity_throughput_schedule_of_one_step_is_sequential``). With 8-step fragments
  it is a different schedule, and it shows: measured 2026-12-04, 8 seeds, in-sample reward
  -24.4 (1 env) and -23.7 (2 envs) against the sequential -27.9; remote runners at that
  schedule -22.8, -25.1, -23.4 in three runs. An earlier version of this test compared the
  remote runners with the sequential agent directly and failed CI twice (p = 0.004 and
  0.006, parallel *better*): it measured the schedule, not the runners.
* **Asynchrony** (timing-dependent): remote runners sample while the learner trains, so their
  weights are also older by however many steps the learner took meanwhile. Test: ``SEEDS``
  runs of ``ENV_STEPS`` env steps on 2015 with 2 remote runners x 1 env, against the same
  schedule on the driver's runner (2 envs, 8-step fragments, no asynchrony); the greedy
  policy is scored on (a) the held-out year 2016 (PnL and return) and (b) the training year
  (greedy total reward, in-sample). For each metric a two-sided exact permutation test of the
  difference in means (all C(2n, n) splits, no distributional assumption) must NOT reject at
  ``ALPHA`` = 0.01. The same test must reject for a deliberately broken learner (learning rate
  0, i.e. the untrained network): that shows the test can fail. With n = 8 per side the
  smallest attainable p-value is 2/12870 = 0.00016.

Same bars seen: 2 envs, so each env plays exactly 3 whole 251-step episodes, like the
sequential agent's 6. (With 2 x 2 envs each env stops mid-way through its second episode: the
first half of the year is then replayed twice as often as the second.)

Environment: the 2015/2016 slices with the team's training parameters
(``rsc_env.TEAM_TRAINING_PARAMS``, the training CLI's defaults; "all_in" sizing). With the
spec's default reward (cumulative trade-count penalty dominating) the lr-0 detection was
only p = 0.04 at this budget, too weak for ALPHA = 0.01.

What the held-out metrics can and cannot show: one year of S&P 500 bars and a few thousand
env steps give policies whose held-out PnL varies a lot from seed to seed, so those
comparisons have little power; the in-sample reward is what separates a learning agent
from a broken one (see ``test_statistical_parity_detects_a_broken_learner``).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from rsc_env import TEAM_TRAINING_PARAMS, TradingEnv
from rsc_policy import StrategyAgentConfig, export_policy, load_policy, train_sequential
from rsc_policy.evaluation.episode import greedy_act, run_episode

SEEDS = range(8)
ENV_STEPS = 1506  # six 251-step episodes
FRAGMENT = 8
ALPHA = 0.01
METRICS = ("held_out_pnl", "held_out_return", "in_sample_reward")


def permutation_p_value(a: list[float], b: list[float]) -> float:
    """Exact two-sided p-value of ``|mean(a) - mean(b)|`` over all relabellings."""
    pooled = np.asarray(list(a) + list(b), dtype=np.float64)
    n = len(a)
    observed = abs(pooled[:n].mean() - pooled[n:].mean())
    total = pooled.sum()
    count = splits = 0
    for idx in itertools.combinations(range(len(pooled)), n):
        s = pooled[list(idx)].sum()
        diff = abs(s / n - (total - s) / (len(pooled) - n))
        count += diff >= observed - 1e-12
        splits += 1
    return count / splits


def score(policy: Any, train_cfg: dict, held_cfg: dict) -> dict[str, float]:
    held = run_episode(greedy_act(policy), TradingEnv(held_cfg))
    inside = run_episode(greedy_act(policy), TradingEnv(train_cfg))
    return {"held_out_pnl": held["pnl"], "held_out_return": held["return"],
            "in_sample_reward": inside["total_reward"]}


def sequential_scores(train_cfg, held_cfg, **params) -> list[dict[str, float]]:
    out = []
    for seed in SEEDS:
        res = train_sequential(train_cfg, env_steps=ENV_STEPS, seed=seed, **params)
        out.append(score(res.agent, train_cfg, held_cfg))
    return out


def throughput_scores(env_name, train_cfg, held_cfg, tmp_path, *, runners: int, envs: int,
                      fragment: int = FRAGMENT, seeds=SEEDS) -> list[dict[str, float]]:
    """Throughput mode: ``runners`` remote runners x ``envs`` envs (0: the driver's runner)."""
    out = []
    for seed in seeds:
        config = (StrategyAgentConfig()
                  .environment(env_name, env_config=train_cfg)
                  .training(exact=False)
                  .env_runners(num_env_runners=runners, num_envs_per_env_runner=envs,
                               rollout_fragment_length=fragment)
                  .reporting(min_sample_timesteps_per_iteration=ENV_STEPS)
                  .debugging(seed=seed))
        algo = config.build_algo()
        try:
            algo.train()
            path = export_policy(algo, tmp_path / f"seed{seed}")
        finally:
            algo.stop()
        out.append(score(load_policy(path), train_cfg, held_cfg))
    return out


def compare(a: list[dict[str, float]], b: list[dict[str, float]]) -> dict[str, float]:
    return {m: permutation_p_value([x[m] for x in a], [x[m] for x in b]) for m in METRICS}


@pytest.fixture(scope="module")
def train_cfg(train_env_config) -> dict[str, Any]:
    return {**train_env_config, **TEAM_TRAINING_PARAMS}


@pytest.fixture(scope="module")
def held_cfg(held_out_env_config) -> dict[str, Any]:
    return {**held_out_env_config, **TEAM_TRAINING_PARAMS}


@pytest.fixture(scope="module")
def sequential_runs(train_cfg, held_cfg):
    return sequential_scores(train_cfg, held_cfg)


def test_permutation_test_itself():
    assert permutation_p_value([1, 2, 3], [1, 2, 3]) == 1.0
    assert permutation_p_value([0, 0, 0, 0, 0, 1], [9, 9, 9, 9, 9, 10]) == pytest.approx(2 / 924)


def test_parity_throughput_schedule_of_one_step_is_sequential(rsc_env_name, train_cfg,
                                                               held_cfg, tmp_path):
    """Throughput mode on the driver's runner with 1-step fragments: the sequential numbers
    exactly (the schedule is the only thing throughput mode changes before asynchrony)."""
    seeds = (0, 3)
    ours = throughput_scores(rsc_env_name, train_cfg, held_cfg, tmp_path, runners=0, envs=1,
                             fragment=1, seeds=seeds)
    for seed, got in zip(seeds, ours, strict=True):
        res = train_sequential(train_cfg, env_steps=ENV_STEPS, seed=seed)
        assert got == score(res.agent, train_cfg, held_cfg), seed


@pytest.mark.slow
def test_statistical_parity_remote_runners_vs_their_schedule(rsc_env_name, train_cfg,
                                                             held_cfg, tmp_path):
    synchronous = throughput_scores(rsc_env_name, train_cfg, held_cfg, tmp_path / "local",
                                    runners=0, envs=2)
    remote = throughput_scores(rsc_env_name, train_cfg, held_cfg, tmp_path / "remote",
                               runners=2, envs=1)
    p = compare(synchronous, remote)
    print("parity p-values", p, "\nsynchronous", synchronous, "\nremote", remote)
    for metric, value in p.items():
        assert value >= ALPHA, f"{metric}: p={value:.4f} < {ALPHA}"


@pytest.mark.slow
def test_statistical_parity_detects_a_broken_learner(sequential_runs, train_cfg, held_cfg):
    broken = sequential_scores(train_cfg, held_cfg, learning_rate=0.0)
    p = compare(sequential_runs, broken)
    print("broken-learner p-values", p, "\nbroken", broken)
    assert min(p.values()) < ALPHA, p



#: Members of the population test: 16 seeds per side (a population trains them at once).
POPULATION_SEEDS = range(16)


def sampled_p_value(a: list[float], b: list[float]) -> float:
    """Two-sided permutation p-value of the difference in means from 20,000 seeded random
    relabellings (scipy; all C(32, 16) splits would be 6e8)."""
    from scipy.stats import permutation_test

    res = permutation_test((np.asarray(a), np.asarray(b)),
                           lambda x, y: np.mean(x) - np.mean(y), permutation_type="independent",
                           alternative="two-sided", n_resamples=20_000, random_state=0)
    return float(res.pvalue)


def population_scores(train_cfg, held_cfg, *, runners: int, envs: int
                      ) -> list[dict[str, float]]:
    """One population in throughput mode whose members are the seeds ``POPULATION_SEEDS``
    (the team's settings otherwise): each member's scores, in seed order."""
    from rsc_env import TradingEnv

    config = (StrategyAgentConfig()
              .environment(TradingEnv, env_config=train_cfg)
              .training(exact=False)
              .population([{"seed": seed, "name": f"seed{seed}"} for seed in POPULATION_SEEDS])
              .env_runners(num_env_runners=runners, num_envs_per_env_runner=envs,
                           rollout_fragment_length=FRAGMENT)
              .reporting(min_sample_timesteps_per_iteration=ENV_STEPS)
              .debugging(seed=0))
    algo = config.build_algo()
    try:
        while algo.global_env_steps < ENV_STEPS:
            algo.train()
        policies = algo.member_policies()
    finally:
        algo.stop()
    return [score(p, train_cfg, held_cfg) for p in policies]


@pytest.mark.slow
def test_statistical_parity_population_members_remote_vs_their_schedule(ray_local, train_cfg,
                                                                        held_cfg):
    """Throughput mode of a population, per member: 16 members sampled by 2 remote runners
    (asynchronous) against the same members and schedule on the driver's runner; a
    permutation test per metric as for one agent (the members are the seeds). With 8 members
    a side the deterministic synchronous side is one draw of 8 seeds, and seeds 0-7 happened
    to score high in-sample (-22.4 against -23.7 and -23.4 for seeds 8-15 and 16-23;
    remote -24.1, -23.8, -22.5): p = 0.04-0.28 in four runs. 16 a side halves that luck."""
    synchronous = population_scores(train_cfg, held_cfg, runners=0, envs=2)
    remote = population_scores(train_cfg, held_cfg, runners=2, envs=1)
    assert len({round(x["in_sample_reward"], 9) for x in remote}) > 1  # members differ
    p = {m: sampled_p_value([x[m] for x in synchronous], [x[m] for x in remote])
         for m in METRICS}
    print("population parity p-values", p, "\nsynchronous", synchronous, "\nremote", remote)
    for metric, value in p.items():
        assert value >= ALPHA, f"{metric}: p={value:.4f} < {ALPHA}"
