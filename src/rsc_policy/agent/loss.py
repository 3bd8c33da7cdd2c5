"""The learning rule on one page: the DQN loss and one learning step, written for autograd.

This is the reference. :class:`rsc_policy.agent.update.DQNUpdate` computes the same step
in one compiled call (tests check they agree), and RLlib's generic learner path uses
:func:`td_loss`'s maths for network shapes the fused step does not cover.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from rsc_policy.agent.network import linear_layers
from rsc_policy.agent.params import DEFAULTS, check_loss_options  # noqa: F401 (re-export)


def td_loss(q: nn.Module, target: nn.Module, batch: Tensor, gamma: float, *,
            double_q: bool = False, huber: bool = False) -> Tensor:
    """DQN loss on replay rows ``[s | s' | a | r | done]`` (see :func:`dqn_loss`)."""
    d = linear_layers(q)[0].in_features  # type: ignore[arg-type]
    s, s2 = batch[:, :d], batch[:, d : 2 * d]
    a, r, done = batch[:, 2 * d], batch[:, 2 * d + 1], batch[:, -1]
    return dqn_loss(q, target, q(s), a, r, s2, done, gamma, double_q=double_q, huber=huber)


def dqn_loss(q: nn.Module, target: nn.Module, q_s: Tensor, actions: Tensor, rewards: Tensor,
             next_obs: Tensor, dones: Tensor, gamma: float, *, double_q: bool = False,
             huber: bool = False) -> Tensor:
    """The rule: ``y = r + gamma * Q_target(s', a*) * (1 - done)`` with ``a* = argmax_a'
    Q_target(s', a')`` (or ``argmax_a' Q(s', a')`` with ``double_q``), no gradient through
    ``y``; the loss is the mean squared error of ``Q(s, a) - y`` (Huber / smooth L1 with
    ``huber``). ``q_s`` is ``Q(s, .)`` (RLlib's ``forward_train`` output, or ``q(s)``)."""
    with torch.no_grad():
        q_t = target(next_obs)
        if double_q:
            q_next = q_t.gather(1, q(next_obs).argmax(dim=1, keepdim=True)).squeeze(1)
        else:
            q_next = q_t.amax(dim=1)
        y = rewards.float() + gamma * q_next * (1.0 - dones.float())
    q_sa = q_s.gather(1, actions.long().unsqueeze(1)).squeeze(1)
    if huber:
        return nn.functional.smooth_l1_loss(q_sa, y)
    return nn.functional.mse_loss(q_sa, y)


class AutogradUpdate:
    """One learning step the plain way: :func:`td_loss`, ``backward()``, optional gradient
    clipping, ``torch.optim.Adam``, and a hard target copy every ``target_update_freq`` steps.
    Works for any MLP shape; same public surface as :class:`~rsc_policy.agent.update.DQNUpdate`.
    """

    def __init__(self, q: nn.Module, target: nn.Module, *, lr: float = DEFAULTS.learning_rate,
                 gamma: float = DEFAULTS.gamma,
                 target_update_freq: int = DEFAULTS.target_update_freq,
                 grad_clip: float | None = None, grad_clip_by: str = "global_norm",
                 double_q: bool = False, huber: bool = False) -> None:
        self.q, self.target = q, target
        self.gamma, self.target_update_freq = float(gamma), int(target_update_freq)
        self.grad_clip, self.grad_clip_by = grad_clip, grad_clip_by
        self.double_q, self.huber = double_q, huber
        self.optimizer = torch.optim.Adam(q.parameters(), lr=lr)
        self.num_updates = 0

    def __call__(self, batch: Tensor) -> float:
        torch.set_flush_denormal(True)  # as DQNUpdate does (see there): same arithmetic
        loss = td_loss(self.q, self.target, batch, self.gamma, double_q=self.double_q,
                       huber=self.huber)
        self.optimizer.zero_grad()
        loss.backward()
        if self.grad_clip is not None:
            if self.grad_clip_by == "value":
                nn.utils.clip_grad_value_(self.q.parameters(), self.grad_clip)
            else:
                nn.utils.clip_grad_norm_(self.q.parameters(), self.grad_clip)
        self.optimizer.step()
        self.num_updates += 1
        if self.num_updates % self.target_update_freq == 0:
            self.target.load_state_dict(self.q.state_dict())
        return float(loss.detach())


# ------------------------------------------------------------------ a population, batched
def member_layers(flat: Tensor, obs_dim: int, hidden: int = 64, n_actions: int = 3
                  ) -> list[Tensor]:
    """``[w1, b1, w2, b2, w3, b3]`` of ``K`` flat parameter rows ``[K, P]`` as batched views
    (``w [K, out, in]``, ``b [K, 1, out]``; layout of ``population.initial_weights``)."""
    k, out, offset = flat.shape[0], [], 0
    for n_out, n_in in ((hidden, obs_dim), (hidden, hidden), (n_actions, hidden)):
        out.append(flat[:, offset:offset + n_out * n_in].view(k, n_out, n_in))
        offset += n_out * n_in
        out.append(flat[:, offset:offset + n_out].view(k, 1, n_out))
        offset += n_out
    return out


def _batched_q(layers: list[Tensor], x: Tensor) -> Tensor:
    w1, b1, w2, b2, w3, b3 = layers
    h = torch.relu(torch.baddbmm(b1, x, w1.transpose(1, 2)))
    h = torch.relu(torch.baddbmm(b2, h, w2.transpose(1, 2)))
    return torch.baddbmm(b3, h, w3.transpose(1, 2))


def population_td_loss(params: Tensor, target: Tensor, rows: Tensor, gamma: Tensor,
                       double_q: Tensor, huber: Tensor) -> Tensor:
    """:func:`td_loss` of ``K`` members at once: ``params``/``target`` ``[K, P]``, replay rows
    ``[K, B, 2 * obs_dim + 3]``, per-member ``gamma`` (float), ``double_q`` and ``huber``
    (bool) ``[K]``; returns each member's loss ``[K]`` (bmm over members: the GPU path)."""
    d = (rows.shape[2] - 3) // 2
    s, s2 = rows[:, :, :d], rows[:, :, d:2 * d]
    a, r, done = rows[:, :, 2 * d].long(), rows[:, :, 2 * d + 1], rows[:, :, 2 * d + 2]
    online = member_layers(params, d)
    with torch.no_grad():
        q_t = _batched_q(member_layers(target, d), s2)
        a2 = torch.where(double_q[:, None], _batched_q(online, s2).argmax(2), q_t.argmax(2))
        q_next = q_t.gather(2, a2.unsqueeze(2)).squeeze(2)
        y = r + gamma[:, None] * q_next * (1.0 - done)
    q_sa = _batched_q(online, s).gather(2, a.unsqueeze(2)).squeeze(2)
    diff = q_sa - y
    mse = (diff * diff).mean(1)
    smooth = torch.where(diff.abs() < 1.0, 0.5 * diff * diff, diff.abs() - 0.5).mean(1)
    return torch.where(huber, smooth, mse)


def population_learn_torch(pop: Any, steps: Any, device: Any) -> Any:
    """``steps[k]`` learning steps of each member of ``pop`` (a
    :class:`~rsc_policy.agent.population.Population`) with torch on ``device``: the same
    batches as the compiled kernel (its sampler, on the host), :func:`population_td_loss`,
    autograd, clipping and ``torch.optim.Adam``'s update per member with its own ``lr``,
    the target copy every ``target_update_freq`` steps. Updates ``pop``'s arrays; returns the
    losses ``[K, max(steps)]``. Members with different ``batch_size`` step in groups."""
    import numpy as np

    from rsc_policy.agent import kernels
    from rsc_policy.agent.population import ADAM_BETAS, ADAM_EPS
    from rsc_policy.agent.rng import choice

    steps = np.asarray(steps, dtype=np.int64)
    n = int(steps.max()) if len(steps) else 0
    losses = np.full((pop.k, max(n, 1)), np.nan)
    dev = torch.device(device)

    def put(a: Any) -> Tensor:
        return torch.as_tensor(np.ascontiguousarray(a)).to(dev)

    p, tgt = put(pop.params), put(pop.target)
    m, v, t = put(pop.exp_avg), put(pop.exp_avg_sq), put(pop.adam_step)
    gamma = put(pop.gamma.astype(np.float32))
    lr = torch.as_tensor(pop.lr, dtype=torch.float64, device=dev)
    double_q, huber = put(pop.double_q), put(pop.loss_kind == kernels.LOSS_HUBER)
    beta1, beta2 = ADAM_BETAS
    for s in range(n):
        for b in np.unique(pop.batch_size[steps > s]):
            ks = np.flatnonzero((steps > s) & (pop.batch_size == b))
            idx = np.empty(int(b), dtype=np.int64)
            rows = np.empty((len(ks), int(b), pop.memory.shape[2]), dtype=np.float32)
            for j, k in enumerate(ks):
                choice(pop.rng_state[k], int(pop.mem_size[k]), int(b), idx)
                rows[j] = pop.memory[k, idx]
            sel = torch.as_tensor(ks, device=dev)
            leaf = p[sel].clone().requires_grad_(True)
            loss = population_td_loss(leaf, tgt[sel], put(rows), gamma[sel], double_q[sel],
                                      huber[sel])
            (grad,) = torch.autograd.grad(loss.sum(), leaf)
            grad = _clip_rows(grad, pop.clip_kind[ks], pop.clip[ks], dev)
            t[sel] += 1.0
            mm = m[sel].lerp(grad, 1.0 - beta1)
            vv = v[sel] * beta2 + (1.0 - beta2) * grad * grad
            step_t = t[sel].double()
            size = (lr[sel] / (1.0 - beta1 ** step_t)).float()[:, None]
            denom = vv.sqrt() / torch.sqrt(1.0 - beta2 ** step_t).float()[:, None] + ADAM_EPS
            p[sel] = leaf.detach() - size * mm / denom
            m[sel], v[sel] = mm, vv
            losses[ks, s] = loss.detach().cpu().numpy()
            pop.sync_count[ks] += 1
            due = ks[pop.sync_count[ks] % pop.target_freq[ks] == 0]
            if len(due):
                tgt[torch.as_tensor(due, device=dev)] = p[torch.as_tensor(due, device=dev)]
    for arr, tensor in ((pop.params, p), (pop.target, tgt), (pop.exp_avg, m),
                        (pop.exp_avg_sq, v), (pop.adam_step, t)):
        arr[...] = tensor.cpu().numpy()
    pop.num_updates += steps
    return losses


def _clip_rows(grad: Tensor, kind: Any, clip: Any, dev: Any) -> Tensor:
    """Per-member gradient clipping (RLlib's ``grad_clip``: by value or by global norm)."""
    from rsc_policy.agent import kernels

    out = grad
    c = torch.as_tensor(clip, dtype=grad.dtype, device=dev)[:, None]
    value = torch.as_tensor(kind == kernels.CLIP_VALUE, device=dev)[:, None]
    norm = torch.as_tensor(kind == kernels.CLIP_NORM, device=dev)[:, None]
    out = torch.where(value, torch.maximum(torch.minimum(out, c), -c), out)
    total = out.double().pow(2).sum(1, keepdim=True).sqrt().float()
    scale = torch.where(total > c, c / (total + 1e-6), torch.ones_like(total))
    return torch.where(norm, out * scale, out)
