"""The learning rule on one page: the DQN loss and one learning step, written for autograd.

This is the reference. :class:`rsc_policy.agent.update.DQNUpdate` computes the same step
in one compiled call (tests check they agree), and RLlib's generic learner path uses
:func:`td_loss`'s maths for network shapes the fused step does not cover.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rsc_policy.agent.network import linear_layers


def td_loss(q: nn.Module, target: nn.Module, batch: Tensor, gamma: float, *,
            double_q: bool = False, huber: bool = False) -> Tensor:
    """DQN loss on replay rows ``[s | s' | a | r | done]``.

    ``y = r + gamma * Q_target(s', a*) * (1 - done)`` with ``a* = argmax_a' Q_target(s', a')``
    (or ``argmax_a' Q(s', a')`` with ``double_q``), no gradient through ``y``; the loss is the
    mean squared error of ``Q(s, a) - y`` (Huber / smooth L1 with ``huber``).
    """
    d = linear_layers(q)[0].in_features  # type: ignore[arg-type]
    s, s2 = batch[:, :d], batch[:, d : 2 * d]
    a, r, done = batch[:, 2 * d : 2 * d + 1], batch[:, 2 * d + 1 : 2 * d + 2], batch[:, -1:]
    with torch.no_grad():
        if double_q:
            q_next = target(s2).gather(1, q(s2).argmax(dim=1, keepdim=True))
        else:
            q_next = target(s2).amax(dim=1, keepdim=True)
        y = r + gamma * q_next * (1.0 - done)
    q_sa = q(s).gather(1, a.long())
    if huber:
        return nn.functional.smooth_l1_loss(q_sa, y)
    return nn.functional.mse_loss(q_sa, y)


def check_loss_options(double_q: object, td_error_loss_fn: object) -> None:
    """Raise ``ValueError`` (naming the setting) for a bad ``double_q`` / loss choice."""
    if not isinstance(double_q, bool):
        raise ValueError(f"double_q must be a bool, got {double_q!r}")
    if td_error_loss_fn not in ("mse", "huber"):
        raise ValueError(f"td_error_loss_fn must be 'mse' or 'huber', got {td_error_loss_fn!r}")


class AutogradUpdate:
    """One learning step the plain way: :func:`td_loss`, ``backward()``, optional gradient
    clipping, ``torch.optim.Adam``, and a hard target copy every ``target_update_freq`` steps.
    Works for any MLP shape; same public surface as :class:`~rsc_policy.agent.update.DQNUpdate`.
    """

    def __init__(self, q: nn.Module, target: nn.Module, *, lr: float = 1e-3,
                 gamma: float = 0.95, target_update_freq: int = 100,
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
