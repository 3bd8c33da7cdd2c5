"""Statistical parity: throughput mode (2 remote runners) learns like the sequential agent.

Test: for each trainer, ``SEEDS`` independent runs of ``ENV_STEPS`` env steps on 2015; the
greedy policy is then scored on (a) the held-out year 2016 (PnL and return) and (b) the
training year (greedy total reward, in-sample). For each metric a two-sided exact
permutation test of the difference in means (all C(2n, n) splits, no distributional
assumption) must NOT reject at ``ALPHA`` = 0.01. The same test must reject for a
deliberately broken learner (learning rate 0, i.e. the untrained network): that shows the
test can fail. With n = 8 per side the smallest attainable p-value is 2/12870 = 0.00016.

Same bars seen: the parallel side runs 2 runners x 1 env, so each env plays exactly 3 whole
251-step episodes, like the sequential agent's 6. (With 2 x 2 envs each env stops mid-way
through its second episode: the first half of the year is then replayed twice as often as
the second, a different training distribution, and in-sample reward differed at p = 0.009
in CI and 0.04 here: a test-design confound, not a learner difference.)

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


def parallel_scores(env_name, train_cfg, held_cfg, tmp_path) -> list[dict[str, float]]:
    out = []
    for seed in SEEDS:
        config = (StrategyAgentConfig()
                  .environment(env_name, env_config=train_cfg)
                  .training(exact=False)
                  .env_runners(num_env_runners=2, num_envs_per_env_runner=1,
                               rollout_fragment_length=8)
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


@pytest.mark.slow
def test_statistical_parity_throughput_vs_sequential(sequential_runs, rsc_env_name, train_cfg,
                                                     held_cfg, tmp_path):
    parallel = parallel_scores(rsc_env_name, train_cfg, held_cfg, tmp_path)
    p = compare(sequential_runs, parallel)
    print("parity p-values", p, "\nsequential", sequential_runs, "\nparallel", parallel)
    for metric, value in p.items():
        assert value >= ALPHA, f"{metric}: p={value:.4f} < {ALPHA}"


@pytest.mark.slow
def test_statistical_parity_detects_a_broken_learner(sequential_runs, train_cfg, held_cfg):
    broken = sequential_scores(train_cfg, held_cfg, learning_rate=0.0)
    p = compare(sequential_runs, broken)
    print("broken-learner p-values", p, "\nbroken", broken)
    assert min(p.values()) < ALPHA, p

