"""Populations: each member equals its own sequential run; the compiled sampler equals numpy's;
the RLlib population trains, logs, checkpoints and names a failing member."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rsc_env import TradingEnv
from rsc_policy.agent.exploration import exploration_draw, keyed_epsilon_greedy, seed_keys
from rsc_policy.agent.population import FlatGreedy, Member, train_population
from rsc_policy.agent.rng import array_to_state, choice, state_to_array
from rsc_policy.agent.sequential import train_sequential

#: K = 4 members that differ in lr, gamma, target_update_freq, batch, memory, loss, seed and
#: env penalties / period.
MEMBERS = [
    Member(seed=0),
    Member(seed=1, agent={"lr": 3e-4, "gamma": 0.99}),
    Member(seed=2, agent={"target_update_freq": 7, "batch_size": 16}),
    Member(seed=3, env={"trading_frequency_penalty": 0.01, "drawdown_penalty": 0.02,
                        "start": "2014-06-01"},
           agent={"double_q": True, "td_error_loss_fn": "huber", "memory_size": 300}),
]


def _flat(state: dict[str, torch.Tensor]) -> np.ndarray:
    return torch.cat([v.reshape(-1) for v in state.values()]).numpy()


@pytest.mark.parametrize("pop,size", [(33, 32), (2000, 32), (100, 100), (1, 1),
                                      (50_000, 2_000), (20_000, 10)])
def test_compiled_choice_parity_with_numpy(pop, size):
    """Floyd's sampling (and the tail shuffle for large populations) on PCG64 in numba: the
    same indices and the same generator state afterwards as ``Generator.choice``."""
    for seed in range(3):
        rng = np.random.default_rng(seed)
        rng.choice(7, 3, replace=False)  # leaves a buffered 32-bit half behind
        state = state_to_array(rng.bit_generator.state)
        out = np.empty(size, dtype=np.int64)
        for _ in range(5):
            choice(state, pop, size, out)
            assert np.array_equal(out, rng.choice(pop, size, replace=False))
        assert array_to_state(state) == rng.bit_generator.state


def test_compiled_exploration_draw_parity():
    rng = np.random.default_rng(4)
    n = 500
    seeds = [int(s) for s in rng.integers(0, 2**62, n)]
    seeds[:2] = [0, -5]
    runner, t, env = (rng.integers(0, m, n) for m in (4, 10**7, 64))
    eps, greedy = rng.random(n), rng.integers(0, 3, n)
    got = keyed_epsilon_greedy(greedy, eps, seed_keys(seeds), runner, t, env, 3)
    want = []
    for i in range(n):
        u, a = exploration_draw(seeds[i], int(runner[i]), int(t[i]), int(env[i]), 3)
        want.append(a if u < eps[i] else greedy[i])
    assert np.array_equal(got, want)


@pytest.mark.parametrize("engine", ["compiled", "python"])
def test_population_member_parity_with_sequential(train_env_config, engine):
    """Member k of one population == train_sequential with member k's settings and seed:
    actions, rewards, every loss, final weights and target, bit for bit (two episodes), with
    the compiled per-member loop and with the Python loop."""
    n = 520
    pop = train_population(train_env_config, MEMBERS, env_steps=n, engine=engine)
    for member, got in zip(MEMBERS, pop, strict=True):
        seq = train_sequential({**train_env_config, **member.env}, env_steps=n,
                               seed=member.seed, params=member.params())
        assert np.array_equal(got.actions, seq.actions)
        assert np.array_equal(got.rewards, seq.rewards)
        assert got.losses == seq.losses
        assert np.array_equal(got.epsilons, seq.epsilons)
        assert got.num_updates == seq.num_updates > 0
        assert np.array_equal(_flat(got.state_dict), _flat(seq.state_dict))
        assert np.array_equal(_flat(got.target_state_dict), _flat(seq.target_state_dict))
        assert [e["total_reward"] for e in got.episodes] == [
            e["total_reward"] for e in seq.episodes]
    assert len(pop[0].episodes) == 2  # crossed episode ends
    assert not np.array_equal(pop[0].actions, pop[1].actions)  # members really differ


@pytest.mark.parametrize("engine", ["compiled", "python"])
def test_population_stops_each_member_on_its_own(train_env_config, engine):
    """Members of different periods end their episodes at different steps; each stops after
    its own episode, as its sequential run does, and the others go on."""
    members = [Member(seed=0), Member(seed=1, env={"start": "2015-07-01"})]
    res = train_population(train_env_config, members, episodes=1, engine=engine)
    want = [train_sequential({**train_env_config, **m.env}, episodes=1, seed=m.seed).env_steps
            for m in members]
    assert [r.env_steps for r in res] == want and want[0] > want[1]
    assert [len(r.episodes) for r in res] == [1, 1]


def test_parity_compiled_population_loop_equals_python_loop(train_env_config):
    """The compiled loop (env rules, acting, replay and learning per member in numba) against
    the Python loop over every env and exploration option the team's rule has: actions,
    rewards, epsilons, losses, weights, target and episode totals, bit for bit."""
    members = [
        Member(seed=5, agent={"epsilon_schedule": "per_episode", "epsilon_decay": 0.9}),
        Member(seed=6, agent={"epsilon_schedule": "linear", "epsilon_total_steps": 600}),
        Member(seed=7, env={"stop_loss_pct": 2.0, "take_profit_pct": 3.0,
                            "position_sizing_method": "all_in",
                            "trade_penalty_mode": "per_trade"}),
        Member(seed=8, env={"use_sharpe_ratio": False,
                            "transaction_fee_percent": 1.0, "start": "2014-03-01"},
               agent={"double_q": True, "memory_size": 100, "batch_size": 8}),
        Member(seed=9, env={"sharpe_window_size": 3, "risk_free_rate": 1e-4,
                            "initial_balance": 3000.0, "position_sizing_method": "all_in"},
               agent={"td_error_loss_fn": "huber", "target_update_freq": 3}),
    ]
    observing = [Member(seed=10, env={"observe_position": True, "window_size": 3},
                        agent={"epsilon_decay": 0.99})]  # another observation size
    got, want = [], []
    for group in (members, observing):
        got += train_population(train_env_config, group, episodes=2, engine="compiled")
        want += train_population(train_env_config, group, episodes=2, engine="python")
    for k, (a, b) in enumerate(zip(got, want, strict=True)):
        assert np.array_equal(a.actions, b.actions), k
        assert np.array_equal(a.rewards, b.rewards), k
        assert np.array_equal(a.epsilons, b.epsilons), k
        assert a.losses == b.losses and a.num_updates == b.num_updates > 0, k
        assert np.array_equal(_flat(a.state_dict), _flat(b.state_dict)), k
        assert np.array_equal(_flat(a.target_state_dict), _flat(b.target_state_dict)), k
        assert [e["total_reward"] for e in a.episodes] == [
            e["total_reward"] for e in b.episodes], k
        assert [e["final_portfolio_value"] for e in a.episodes] == [
            e["final_portfolio_value"] for e in b.episodes], k
    assert len({float(np.sum(r.actions == 0)) for r in got}) > 1  # the members differ


def test_population_engine_is_checked(train_env_config):
    with pytest.raises(ValueError, match="engine must be"):
        train_population(train_env_config, [Member()], env_steps=10, engine="fast")


def _population_config(env_config: dict[str, Any], members: list[Any], **runners: Any):
    from rsc_env import TradingEnv
    from rsc_policy import StrategyAgentConfig

    return (StrategyAgentConfig()
            .environment(TradingEnv, env_config=env_config)
            .population(members)
            .env_runners(**runners)
            .training(gamma=0.9, target_update_freq=50)
            .debugging(seed=0))


def _population_weights(algo) -> np.ndarray:
    from ray.rllib.core import DEFAULT_MODULE_ID

    return np.asarray(algo.learner_group.get_weights()[DEFAULT_MODULE_ID]["params"])


def test_rllib_population_exact_parity_with_sequential(ray_local, train_env_config):
    """StrategyAgentAlgo in population mode (exact: one env per member, one step at a time
    through RLlib's env runner, RLModule and LearnerGroup): member k's weights equal
    train_sequential's with member k's settings, across an episode end."""
    algo = (_population_config(train_env_config, MEMBERS)
            .reporting(min_sample_timesteps_per_iteration=150).build_algo())
    try:
        assert algo.config.is_exact
        for _ in range(2):
            result = algo.train()
        n = algo.global_env_steps
        assert n == 300
        weights = _population_weights(algo)
        assert np.array_equal(algo.member_weights(), weights)
        torch_policies = algo.member_policies()
        episodes = 0
        for k, member in enumerate(algo.config.members()):
            env_config = {**train_env_config, **member.env}
            seq = train_sequential(env_config, env_steps=n, seed=member.seed,
                                   params=member.params())
            assert np.array_equal(weights[k], _flat(seq.state_dict)), f"member {k}"
            episodes += len(seq.episodes)
            # greedy acting on the learner's weights: the compiled forward (how rsc-tune
            # scores) acts as the sequential agent and as the exported torch module
            obs = TradingEnv(env_config).unwrapped.market.observations
            flat = FlatGreedy(weights, k)  # member_weights(), checked equal above
            actions = [flat(o) for o in obs]
            assert actions == [seq.agent.greedy(o) for o in obs], f"member {k}"
            assert actions == [torch_policies[k].act(o) for o in obs], f"member {k}"
            assert len(set(actions)) > 1  # a trained net, not a constant
        assert result["rsc"]["episodes_total"] == episodes == 3  # member 3's period is longer
        with pytest.raises(ValueError, match="not a 64-64 Q-network"):
            FlatGreedy(weights[:, :-1], 0)
    finally:
        algo.stop()


@pytest.mark.parametrize("num_learners", [0, 1])
def test_rllib_population_learner_rollout_parity_with_sequential(ray_local, train_env_config,
                                                                 tmp_path: Path, num_learners):
    """``population(rollout="learner")``: the learner (in the driver, or a learner actor)
    steps every member's env itself in compiled code. Over three iterations (an episode end
    included) member k's weights equal ``train_sequential``'s with member k's settings, bit
    for bit; the episodes come back to the algorithm's metrics; a checkpoint taken after two
    iterations and restored into a new algorithm continues exactly as the uninterrupted
    one."""
    def build():
        return (_population_config(train_env_config, MEMBERS)
                .population(rollout="learner")
                .learners(num_learners=num_learners)
                .reporting(min_sample_timesteps_per_iteration=100).build_algo())

    algo = build()
    try:
        for _ in range(2):
            algo.train()
        algo.save_to_path(str(tmp_path / "ckpt"))
        result = algo.train()
        assert algo.global_env_steps == 300
        weights = _population_weights(algo)
    finally:
        algo.stop()
    episodes = 0
    for k, member in enumerate(algo.config.members()):
        seq = train_sequential({**train_env_config, **member.env}, env_steps=300,
                               seed=member.seed, params=member.params())
        assert np.array_equal(weights[k], _flat(seq.state_dict)), f"member {k}"
        episodes += len(seq.episodes)
    assert result["rsc"]["episodes_total"] == episodes == 3  # member 3's period is longer
    assert result["rsc"]["num_learning_steps_lifetime"] == sum(
        300 - m.params().batch_size for m in algo.config.members())
    restored = build()
    try:
        restored.restore_from_path(str(tmp_path / "ckpt"))
        restored.train()
        assert restored.global_env_steps == 300
        assert np.array_equal(_population_weights(restored), weights)
    finally:
        restored.stop()


def test_rllib_population_episodes_per_iteration_parity_with_sequential(ray_local,
                                                                       train_env_config):
    """``population(rollout="learner", episodes_per_iteration=1)``: an iteration is one whole
    episode of every member although their periods differ in length (member 3's is shorter),
    so after two iterations member k equals ``train_sequential(episodes=2)`` bit for bit, and
    ``population_env_steps`` counts each member's own steps."""
    from rsc_env import TradingEnv

    algo = (_population_config(train_env_config, MEMBERS)
            .population(rollout="learner", episodes_per_iteration=1)
            .reporting(min_sample_timesteps_per_iteration=0).build_algo())
    try:
        results = [algo.train() for _ in range(2)]
        weights = _population_weights(algo)
    finally:
        algo.stop()
    members = algo.config.members()
    lengths = [TradingEnv({**train_env_config, **m.env}).episode_length for m in members]
    assert len(set(lengths)) > 1
    for k, member in enumerate(members):
        seq = train_sequential({**train_env_config, **member.env}, episodes=2,
                               seed=member.seed, params=member.params())
        assert np.array_equal(weights[k], _flat(seq.state_dict)), f"member {k}"
    for i, result in enumerate(results, start=1):
        assert result["rsc"]["population_env_steps"] == sum(lengths)
        assert result["rsc"]["episodes_total"] == i * len(members)


def test_episodes_per_iteration_is_checked(train_env_config):
    config = _population_config(train_env_config, MEMBERS[:2])
    with pytest.raises(ValueError, match="needs rollout='learner'"):
        config.copy().population(episodes_per_iteration=1).validate()
    with pytest.raises(ValueError, match=r"must be None or an int >= 1, got 0"):
        config.copy().population(rollout="learner", episodes_per_iteration=0).validate()


@pytest.mark.parametrize(("setting", "named"), [
    ({"num_env_runners": 1}, "num_env_runners=0"),
    ({"updates_per_step": 2}, "updates_per_step=1"),
    ({"database": True}, "no .database()"),
])
def test_learner_rollout_refuses_what_it_cannot_honour(train_env_config, tmp_path: Path,
                                                      setting, named):
    config = _population_config(train_env_config, MEMBERS[:2]).population(rollout="learner")
    if "num_env_runners" in setting:
        config = config.env_runners(num_env_runners=1)
    if "updates_per_step" in setting:
        config = config.training(updates_per_step=2)
    if "database" in setting:
        config = config.database(f"sqlite:///{tmp_path / 'x.sqlite'}")
    with pytest.raises(ValueError, match=named.replace("(", r"\(").replace(")", r"\)")):
        config.validate()


def test_rllib_population_throughput_logs_every_member(ray_local, train_env_config,
                                                      tmp_path: Path):
    """2 runners x 2 env copies of a 3-member population: every member learns and each
    member's finished episodes land in its own run, once each."""
    from rsc_db import episodes_frame

    url = f"sqlite:///{tmp_path / 'pop.sqlite'}"
    members = [Member(seed=s, name=f"s{s}") for s in range(3)]
    algo = (_population_config(train_env_config, members, num_env_runners=2,
                               num_envs_per_env_runner=2, rollout_fragment_length=32)
            .reporting(min_sample_timesteps_per_iteration=256)
            .database(url, log_steps=False).build_algo())
    try:
        before = _population_weights(algo)
        for _ in range(40):  # until each of the 4 env copies ended a 250-step episode
            result = algo.train()
            if result["rsc"]["episodes_total"] >= 12:
                break
        run_ids = algo.db_run_ids
        algo.flush_database()
    finally:
        algo.stop()
    assert len(run_ids) == 3 and all(r.endswith(f"-s{k}") for k, r in enumerate(run_ids))
    after = _population_weights(algo)
    assert all(not np.array_equal(before[k], after[k]) for k in range(3))
    assert result["rsc"]["num_learning_steps_lifetime"] > 0
    counts = []
    for run_id in run_ids:
        eps = episodes_frame(url, run_id)
        assert eps["rllib_episode_id"].is_unique
        counts.append(len(eps))
    assert min(counts) >= 4 and sum(counts) == result["rsc"]["episodes_total"]


def test_rllib_population_checkpoint_restore(ray_local, train_env_config, tmp_path: Path):
    """save_to_path / restore_from_path of a population: every member's weights, target, Adam
    moments and step, replay ring and sampling RNG come back as saved, and training goes on
    from the restored counters."""
    from ray.rllib.core import COMPONENT_LEARNER

    def build():
        return (_population_config(train_env_config, MEMBERS[:3])
                .reporting(min_sample_timesteps_per_iteration=60).build_algo())

    def learner_state(algo) -> dict[str, Any]:
        state = algo.learner_group.get_state(components=COMPONENT_LEARNER)[COMPONENT_LEARNER]
        return {**state["population"], "params": _population_weights(algo)}

    first = build()
    try:
        for _ in range(2):
            first.train()
        saved = learner_state(first)
        path = first.save_to_path(str(tmp_path / "ckpt"))
    finally:
        first.stop()
    second = build()
    try:
        fresh = learner_state(second)
        second.restore_from_path(path)
        restored = learner_state(second)
        assert second.global_env_steps == 120 and second.num_learning_steps == saved[
            "num_updates"].sum()
        for name, value in saved.items():
            assert np.array_equal(np.asarray(restored[name]), np.asarray(value)), name
        assert not np.array_equal(fresh["params"], saved["params"])
        second.train()
        assert second.global_env_steps == 180
        assert (learner_state(second)["num_updates"] == saved["num_updates"] + 60).all()
    finally:
        second.stop()


def test_rllib_population_env_error_names_the_member(ray_local, train_env_config):
    members = [Member(seed=0), Member(seed=1, env={"window_size": 0}, name="bad-window")]
    config = _population_config(train_env_config, members)
    with pytest.raises(Exception, match=r"population member 1 \(bad-window\)"):
        algo = config.build_algo()
        algo.stop()


def test_population_config_refuses_what_it_cannot_honour():
    from rsc_policy import StrategyAgentConfig

    base = StrategyAgentConfig().environment(env_config={"data": "sp500"})
    with pytest.raises(ValueError, match="unknown"):
        base.copy().population([{"agent": {"learning_rat": 1e-3}}]).validate()
    with pytest.raises(ValueError, match="64-64"):
        (base.copy().population([{"seed": 0}])
         .rl_module(model_config={"fcnet_hiddens": [32]}).validate())
    with pytest.raises(ValueError, match="per_episode"):
        base.copy().population([{"agent": {"epsilon_schedule": "per_episode"}}]).validate()


def test_gpu_path_equals_the_compiled_kernel_on_cpu():
    """The batched torch step (bmm over members, autograd, per-member Adam: what a GPU
    learner runs) equals the compiled CPU kernel on the same replay, 20 steps, 4 members
    with different lr, gamma, target sync, double-Q, Huber and batch size."""
    import copy

    from rsc_policy.agent.loss import population_learn_torch
    from rsc_policy.agent.population import Population
    from rsc_policy.agent.sequential import AgentParams

    d, k, n = 20, 4, 300
    params = [AgentParams(), AgentParams(learning_rate=3e-4, gamma=0.99),
              AgentParams(target_update_freq=5, double_q=True),
              AgentParams(td_error_loss_fn="huber", batch_size=16)]
    cpu = Population(d, params, [0, 1, 2, 3])
    rng = np.random.default_rng(0)
    cpu.remember(np.repeat(np.arange(k), n), rng.standard_normal((k * n, d)),
                 rng.integers(0, 3, k * n), rng.standard_normal(k * n),
                 rng.standard_normal((k * n, d)), rng.random(k * n) < 0.05)
    gpu = copy.deepcopy(cpu)
    steps = np.array([4, 4, 4, 3])
    for _ in range(5):
        np.testing.assert_allclose(population_learn_torch(gpu, steps, "cpu"),
                                   cpu.learn(steps), rtol=1e-5, atol=1e-6)
    for name in ("params", "target", "exp_avg", "exp_avg_sq", "adam_step"):
        np.testing.assert_allclose(getattr(gpu, name), getattr(cpu, name), rtol=0, atol=1e-5,
                                   err_msg=name)
    assert np.array_equal(gpu.rng_state, cpu.rng_state)  # the same batches were drawn
    assert not np.allclose(cpu.params[0], cpu.params[1])


def test_population_learner_gpu_path_trains_through_rllib(ray_local, train_env_config):
    """fused_learning_step=False: the PopulationLearner runs the batched torch step (the
    GPU learner's path) inside RLlib; exact mode then stays within float32 rounding of the
    sequential member (not bit-identical: another summation order)."""
    members = MEMBERS[:2]
    algo = (_population_config(train_env_config, members)
            .training(fused_learning_step=False)
            .reporting(min_sample_timesteps_per_iteration=80).build_algo())
    try:
        algo.train()
        weights = _population_weights(algo)
        for k, member in enumerate(algo.config.members()):
            seq = train_sequential({**train_env_config, **member.env}, env_steps=80,
                                   seed=member.seed, params=member.params())
            np.testing.assert_allclose(weights[k], _flat(seq.state_dict), rtol=0, atol=1e-4)
            assert not np.array_equal(weights[k], _flat(seq.state_dict))
    finally:
        algo.stop()


def test_rllib_population_with_a_learner_actor_parity(ray_local, train_env_config,
                                                      tmp_path: Path):
    """num_learners=1 (the population's learner in its own actor, the driver's runner on the
    other CPU): exact mode still equals each member's sequential run bit for bit, and a
    checkpoint restored into a new algorithm trains on (the memory sizes come back from the
    actor through the object store, read-only)."""
    def build():
        return (_population_config(train_env_config, MEMBERS[:2])
                .learners(num_learners=1)
                .reporting(min_sample_timesteps_per_iteration=60).build_algo())

    algo = build()
    try:
        assert not algo.learner_group.is_local
        algo.train()
        weights = _population_weights(algo)
        for k, member in enumerate(algo.config.members()):
            seq = train_sequential({**train_env_config, **member.env}, env_steps=60,
                                   seed=member.seed, params=member.params())
            assert np.array_equal(weights[k], _flat(seq.state_dict)), f"member {k}"
        algo.save_to_path(str(tmp_path / "ckpt"))
    finally:
        algo.stop()
    restored = build()
    try:
        restored.restore_from_path(str(tmp_path / "ckpt"))
        assert np.array_equal(_population_weights(restored), weights)
        result = restored.train()
        assert restored.global_env_steps == 120
        assert result["rsc"]["num_learning_steps_lifetime"] > 0
        assert not np.array_equal(_population_weights(restored), weights)
    finally:
        restored.stop()


def test_population_linear_epsilon_falls_over_each_members_run(train_env_config):
    """epsilon_schedule='linear' without epsilon_total_steps: as train_sequential, each
    member's epsilon falls over its own run's total (here: 1 episode of its own length)."""
    members = [Member(seed=0, agent={"epsilon_schedule": "linear"}),
               Member(seed=1, agent={"epsilon_schedule": "linear"},
                      env={"start": "2015-07-01"})]
    got = train_population(train_env_config, members, episodes=1)
    for member, res in zip(members, got, strict=True):
        seq = train_sequential({**train_env_config, **member.env}, episodes=1, seed=member.seed,
                               epsilon_schedule="linear")
        assert np.array_equal(res.epsilons, seq.epsilons)
        assert np.array_equal(res.actions, seq.actions)
