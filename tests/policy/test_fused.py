"""The fused learning step (one compiled call) against the autograd reference
(``td_loss`` + ``backward`` + ``torch.optim.Adam``), with every option; and fused acting
against torch's forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rsc_policy.agent.kernels import greedy_actions
from rsc_policy.agent.loss import AutogradUpdate
from rsc_policy.agent.network import build_qnet
from rsc_policy.agent.update import DQNUpdate

OBS = 102
OPTIONS = [{}, {"huber": True}, {"double_q": True}, {"grad_clip": 0.05},
           {"grad_clip": 1e-3, "grad_clip_by": "value"}]


def batch(i: int, n: int = 32) -> torch.Tensor:
    rng = np.random.default_rng(i)
    rows = rng.standard_normal((n, 2 * OBS + 3)).astype(np.float32)
    rows[:, 2 * OBS] = rng.integers(0, 3, n)
    rows[:, 2 * OBS + 1] = rng.normal(0, 0.01, n)
    rows[:, 2 * OBS + 2] = rng.random(n) < 0.1
    return torch.from_numpy(rows)


def pair(**opts):
    kw = {"gamma": 0.9, "target_update_freq": 50, **opts}
    return (DQNUpdate(build_qnet(OBS, 3, 1), build_qnet(OBS, 3, 1), **kw),
            AutogradUpdate(build_qnet(OBS, 3, 1), build_qnet(OBS, 3, 1), **kw))


def assert_same_state(fast: DQNUpdate, ref: AutogradUpdate, atol: float) -> None:
    for mine, theirs in ((fast.q, ref.q), (fast.target, ref.target)):
        for a, b in zip(mine.parameters(), theirs.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=atol)


# Free-running over 200 steps. Gradient clipping by value (1e-3) is left out here: on these
# batches a first-layer ReLU pre-activation lands within float32 rounding of 0 at step ~170,
# BLAS and torch round it to different sides, that neuron's gradient flips on or off and Adam
# carries the difference (7.6e-5 on one weight at step 200, measured). That is the chaos of
# float32 training, not a difference of rule; the lock-step test below checks every one of
# the 200 steps of that option (and all others) from a shared state at 1e-6.
@pytest.mark.parametrize("opts", OPTIONS[:-1], ids=lambda o: ",".join(o) or "mse")
def test_fused_step_equals_autograd_over_200_steps(opts):
    fast, ref = pair(**opts)
    for i in range(200):
        loss_fast, loss_ref = fast(batch(i)), ref(batch(i))
        assert loss_fast == pytest.approx(loss_ref, rel=5e-6, abs=1e-9)
    assert_same_state(fast, ref, atol=1e-6)
    assert fast.num_updates == ref.num_updates == 200
    # Adam's state is the real optimizer's: step count and moments are there
    state = fast.optimizer.state[fast.params]
    assert float(state["step"]) == 200 and float(state["exp_avg_sq"].abs().sum()) > 0


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: ",".join(o) or "mse")
def test_fused_step_equals_autograd_step_by_step(opts, adopt_state):
    # Lock-step: before every step the fast path takes the reference's weights and Adam
    # moments; the one step it then computes must equal the reference's step.
    fast, ref = pair(**opts)
    for i in range(200):
        if i:
            adopt_state(fast, ref.q, ref.target, ref.optimizer)
        loss_fast, loss_ref = fast(batch(i)), ref(batch(i))
        assert loss_fast == pytest.approx(loss_ref, rel=5e-6, abs=1e-9)
        assert_same_state(fast, ref, atol=1e-6)
    assert fast.num_updates == ref.num_updates == 200


def test_lock_step_check_fails_for_a_different_rule(adopt_state):
    # The lock-step comparison can fail: a fast step with another gamma is caught at once.
    fast, _ = pair(gamma=0.5)
    _, ref = pair()
    fast(batch(0))
    ref(batch(0))
    adopt_state(fast, ref.q, ref.target, ref.optimizer)
    assert fast(batch(1)) != pytest.approx(ref(batch(1)), rel=5e-6)
    with pytest.raises(AssertionError):
        assert_same_state(fast, ref, atol=1e-6)


@pytest.mark.parametrize("opts", OPTIONS[1:], ids=lambda o: ",".join(o))
def test_each_option_changes_the_step(opts):
    plain, _ = pair()
    other, _ = pair(**opts)
    for i in range(20):
        plain(batch(i))
        other(batch(i))
    assert not torch.equal(plain.params, other.params)


def test_lr_is_read_from_the_optimizer_on_every_step():
    a, _ = pair()
    b, _ = pair()
    for i in range(3):
        a(batch(i))
        b(batch(i))
    b.optimizer.param_groups[0]["lr"] = 0.0  # what PBT / a restore with a new lr does
    before = b.params.clone()
    b(batch(3))
    assert torch.equal(b.params, before)
    a(batch(3))
    assert not torch.equal(a.params, before)


def test_fused_greedy_actions_equal_torch_argmax():
    q = build_qnet(OBS, 3, 4)
    weights = [p.detach().numpy() for p in q.parameters()]
    obs = np.random.default_rng(0).standard_normal((4096, OBS)).astype(np.float32)
    with torch.no_grad():
        values = q(torch.from_numpy(obs)).numpy()
    ours = greedy_actions(obs, *weights)
    top2 = np.sort(values, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 1e-5  # float32 rounding may flip exact near-ties
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(ours[clear], values.argmax(axis=1)[clear])
    assert greedy_actions(obs[:1], *weights)[0] == values[0].argmax()
