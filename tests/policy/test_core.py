"""The shared learning rule (no Ray): network, epsilon, exploration, update, replay."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from rsc_policy.agent.exploration import epsilon_greedy, exploration_draw
from rsc_policy.agent.network import build_qnet
from rsc_policy.agent.replay import ReplayMemory
from rsc_policy.agent.schedule import EpsilonSchedule
from rsc_policy.agent.update import DQNUpdate, transition_width

OBS = 102


def random_batch(seed: int, n: int = 32) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((n, transition_width(OBS))).astype(np.float32)
    rows[:, 2 * OBS] = rng.integers(0, 3, n)
    rows[:, -1] = rng.integers(0, 2, n)
    return torch.from_numpy(rows)


def test_build_qnet_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = build_qnet(OBS, 3, 7), build_qnet(OBS, 3, 7), build_qnet(OBS, 3, 8)
    assert torch.equal(torch.rand(1), before)
    for (k, va), vb, vc in zip(a.state_dict().items(), b.state_dict().values(),
                               c.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
        assert not torch.equal(va, vc), k
    assert [m.__class__.__name__ for m in a] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert (a[0].in_features, a[0].out_features, a[2].out_features, a[4].out_features) == (
        OBS, 64, 64, 3)


def test_epsilon_schedule_is_the_multiply_per_selection_rule():
    sched = EpsilonSchedule(1.0, 0.995, 0.01)
    eps = 1.0
    for k in range(len(sched) + 50):
        assert sched(k) == eps  # bit-identical to the running product
        if eps > 0.01:
            eps *= 0.995
    assert sched(10**9) == sched.final <= 0.01 < sched(len(sched) - 2)


def test_exploration_draw_is_keyed_and_uniform():
    assert exploration_draw(1, 0, 5) == exploration_draw(1, 0, 5)
    assert exploration_draw(1, 0, 5) != exploration_draw(1, 1, 5)
    assert exploration_draw(1, 0, 5) != exploration_draw(2, 0, 5)
    draws = [exploration_draw(3, 0, t) for t in range(30_000)]
    u = np.array([d[0] for d in draws])
    acts = np.bincount([d[1] for d in draws], minlength=3) / len(draws)
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    assert np.all(np.abs(acts - 1 / 3) < 0.015)
    assert epsilon_greedy([2, 2], 0.0, 1, 0, 9).tolist() == [2, 2]
    assert epsilon_greedy([2, 2], 1.0, 1, 0, 9).tolist() == [exploration_draw(1, 0, 9, j)[1]
                                                              for j in range(2)]


def test_target_copied_every_target_update_freq_learning_steps():
    upd = DQNUpdate(build_qnet(OBS, 3, 2), build_qnet(OBS, 3, 2), target_update_freq=4)
    initial = upd.target_params.clone()
    for step in range(1, 9):
        upd(random_batch(step))
        if step % 4 == 0:
            assert torch.equal(upd.target_params, upd.params)
        elif step < 4:
            assert torch.equal(upd.target_params, initial)
        else:
            assert not torch.equal(upd.target_params, upd.params)


def test_update_state_roundtrip_continues_identically():
    a = DQNUpdate(build_qnet(OBS, 3, 3), build_qnet(OBS, 3, 3))
    for i in range(3):
        a(random_batch(i))
    b = DQNUpdate(build_qnet(OBS, 3, 0), build_qnet(OBS, 3, 0))
    b.q.load_state_dict(a.q.state_dict())
    b.target.load_state_dict(a.target.state_dict())
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    for i in range(3, 6):
        assert float(a(random_batch(i))) == float(b(random_batch(i)))
    assert torch.equal(a.params, b.params) and a.num_updates == b.num_updates == 6


def test_replay_fifo_sampling_without_replacement_and_state():
    mem = ReplayMemory(5, 2, seed=0)
    for i in range(8):
        mem.add(np.array([i, i], np.float32), i % 3, float(i), np.array([i + 1, i + 1]), i == 7)
    tr = mem.transitions()
    assert len(mem) == 5 and tr["rewards"].tolist() == [3, 4, 5, 6, 7]  # oldest evicted
    assert tr["dones"].tolist() == [False] * 4 + [True]
    assert tr["actions"].tolist() == [0, 1, 2, 0, 1]
    batch = mem.sample(5)
    assert sorted(batch[:, 5].tolist()) == [3, 4, 5, 6, 7]  # all distinct
    with pytest.raises(ValueError):
        mem.sample(6)
    clone = ReplayMemory(5, 2, seed=99)
    clone.set_state(mem.get_state())
    assert np.array_equal(clone.sample(3), mem.sample(3))
    # add_batch == repeated add, also when wrapping around
    one, many = ReplayMemory(4, 2, seed=1), ReplayMemory(4, 2, seed=1)
    obs = np.arange(14, dtype=np.float32).reshape(7, 2)
    for k in range(7):
        one.add(obs[k], k % 3, float(k), obs[k] + 1, k == 6)
    many.add_batch(obs[:2], np.arange(2) % 3, np.arange(2.0), obs[:2] + 1, np.zeros(2, bool))
    many.add_batch(obs[2:], np.arange(2, 7) % 3, np.arange(2.0, 7.0), obs[2:] + 1,
                   np.arange(2, 7) == 6)
    assert np.array_equal(one.rows, many.rows) and len(one) == len(many) == 4
