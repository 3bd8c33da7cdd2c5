"""The fast learning step: the DQN update of :mod:`rsc_policy.agent.loss` written out by hand."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rsc_policy.agent.network import linear_layers


def transition_width(obs_dim: int) -> int:
    """Floats per stored transition row: ``[s | s' | a | r | done]``."""
    return 2 * obs_dim + 3


def _flatten(net: nn.Sequential) -> tuple[nn.Parameter, list[Tensor]]:
    """Rebind ``net``'s parameters as views of one new flat tensor; return it and the views.

    The layers keep working as ordinary ``nn.Linear`` (state_dict, load_state_dict copy in
    place, so the aliasing survives restores); the flat tensor lets Adam and target copies
    run as one op each.
    """
    params = list(net.parameters())
    flat = nn.Parameter(torch.cat([p.detach().reshape(-1) for p in params]))
    views, offset = [], 0
    for layer in linear_layers(net):
        for name in ("weight", "bias"):
            p = getattr(layer, name)
            view = flat.data[offset : offset + p.numel()].view_as(p)
            setattr(layer, name, nn.Parameter(view, requires_grad=p.requires_grad))
            views.append(view)
            offset += p.numel()
    return flat, views


class DQNUpdate:
    """One DQN learning step on a batch: the single implementation both trainers use.

    Target ``y = r + gamma * max_a' Q_target(s', a') * (1 - done)`` (no gradient), loss
    ``mean((Q(s, a) - y)^2)``, one Adam step (torch defaults) over a flat parameter vector,
    and a hard target copy every ``target_update_freq`` learning steps.

    The forward and backward passes of the 3-layer MLP are written out by hand (about 25
    tensor ops, no autograd graph): at batch 32 the cost is dominated by per-op dispatch, so
    this is ~3x faster than ``loss.backward()``. :func:`td_loss` is the same loss written
    for autograd; tests check both give the same gradient.

    ``q`` and ``target`` are rebound so their parameters alias the flat vectors; they remain
    normal modules for acting, ``state_dict`` and ``load_state_dict``.
    """

    def __init__(self, q: nn.Sequential, target: nn.Sequential, *, lr: float = 1e-3,
                 gamma: float = 0.95, target_update_freq: int = 100) -> None:
        self.q, self.target = q, target
        self.gamma = float(gamma)
        self.target_update_freq = int(target_update_freq)
        self.params, self._w = _flatten(q)
        self.target_params, self._tw = _flatten(target)
        self.params.grad = torch.zeros_like(self.params)
        offset, self._g = 0, []
        for v in self._w:
            self._g.append(self.params.grad[offset : offset + v.numel()].view_as(v))
            offset += v.numel()
        # Autograd on the layers (the generic RLlib path) accumulates into the flat grad.
        for p, g in zip(q.parameters(), self._g, strict=True):
            p.grad = g
        # Single-tensor Adam (torch defaults). `_adam_step` replays its exact arithmetic on
        # the optimizer's own state without the ~100 µs of Python around `optimizer.step()`;
        # `optimizer.step()` (RLlib's generic path) gives bit-identical results.
        self.optimizer = torch.optim.Adam([self.params], lr=lr, foreach=False, fused=False)
        self._adam_state()
        self.num_updates = 0
        self.obs_dim = self._w[0].shape[1]
        self.n_actions = self._w[4].shape[0]
        self._actions = torch.arange(self.n_actions, dtype=torch.float32)
        # Transposed views, made once: they alias the flat vectors, so stay current.
        self._wt = [w.t() for w in self._w[0::2]]
        self._tt = [w.t() for w in self._tw[0::2]]

    @torch.no_grad()
    def sync_target(self) -> None:
        """Make the target network an exact copy of the Q-network."""
        self.target_params.copy_(self.params)

    @torch.no_grad()
    def __call__(self, batch: Tensor) -> Tensor:
        """One learning step on ``batch`` rows ``[s | s' | a | r | done]``; returns the loss."""
        d = self.obs_dim
        s, s2 = batch[:, :d], batch[:, d : 2 * d]
        a, r, done = batch[:, 2 * d : 2 * d + 1], batch[:, 2 * d + 1 : 2 * d + 2], batch[:, -1:]
        _, b1, w2, b2, w3, b3 = self._w
        _, c1, _, c2, _, c3 = self._tw
        w1t, w2t, w3t = self._wt
        t1t, t2t, t3t = self._tt
        # Target, no gradient: y = r + gamma * max Q_target(s') * (1 - done).
        g = torch.addmm(c1, s2, t1t).relu_()
        g = torch.addmm(c2, g, t2t).relu_()
        q_next = torch.addmm(c3, g, t3t).amax(dim=1, keepdim=True)
        y = torch.addcmul(r, q_next, 1.0 - done, value=self.gamma)
        # Prediction Q(s, a).
        h1 = torch.addmm(b1, s, w1t).relu_()
        h2 = torch.addmm(b2, h1, w2t).relu_()
        q = torch.addmm(b3, h2, w3t)
        onehot = (a == self._actions).to(q.dtype)
        diff = (q * onehot).sum(dim=1, keepdim=True).sub_(y)
        loss = diff.square().mean()
        # Backward of the MSE through the MLP, written into the flat gradient.
        gw1, gb1, gw2, gb2, gw3, gb3 = self._g
        dq = onehot.mul_(diff.mul_(2.0 / batch.shape[0]))
        torch.mm(dq.t(), h2, out=gw3)
        torch.sum(dq, dim=0, out=gb3)
        dh = torch.ops.aten.threshold_backward(dq.mm(w3), h2, 0)
        torch.mm(dh.t(), h1, out=gw2)
        torch.sum(dh, dim=0, out=gb2)
        dh = torch.ops.aten.threshold_backward(dh.mm(w2), h1, 0)
        torch.mm(dh.t(), s, out=gw1)
        torch.sum(dh, dim=0, out=gb1)
        self._adam_step()
        self.after_step()
        return loss

    def _adam_state(self) -> dict[str, Tensor]:
        state = self.optimizer.state[self.params]
        if not state:  # what Adam's first step would create
            state["step"] = torch.tensor(0.0)
            state["exp_avg"] = torch.zeros_like(self.params, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(self.params,
                                                   memory_format=torch.preserve_format)
        return state

    def _adam_step(self) -> None:
        """``torch.optim.Adam`` single-tensor step (amsgrad off, no weight decay), inlined."""
        group = self.optimizer.param_groups[0]
        beta1, beta2 = group["betas"]
        state = self.optimizer.state[self.params]
        step_t, exp_avg, exp_avg_sq = state["step"], state["exp_avg"], state["exp_avg_sq"]
        grad = self.params.grad
        step_t += 1
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = step_t.item()
        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(group["eps"])
        self.params.data.addcdiv_(exp_avg, denom, value=-(group["lr"] / bias_correction1))

    def after_step(self) -> None:
        """Count the learning step; copy the target every ``target_update_freq`` steps."""
        self.num_updates += 1
        if self.num_updates % self.target_update_freq == 0:
            self.sync_target()

    def state_dict(self) -> dict[str, Any]:
        """Optimizer state and learning-step counter (the networks live in their modules)."""
        return {"optimizer": self.optimizer.state_dict(), "num_updates": self.num_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.num_updates = int(state["num_updates"])


def as_batch_tensor(rows: np.ndarray) -> Tensor:
    """Zero-copy float32 tensor view of replay rows."""
    return torch.from_numpy(rows)
