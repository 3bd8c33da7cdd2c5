"""The learning rule on one page: the DQN loss, written for autograd."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rsc_policy.agent.network import linear_layers


def td_loss(q: nn.Module, target: nn.Module, batch: Tensor, gamma: float) -> Tensor:
    """The loss of :class:`DQNUpdate` written for autograd (RLlib's generic loss path)."""
    obs_dim = linear_layers(q)[0].in_features  # type: ignore[arg-type]
    d = obs_dim
    s, s2 = batch[:, :d], batch[:, d : 2 * d]
    a, r, done = batch[:, 2 * d : 2 * d + 1], batch[:, 2 * d + 1 : 2 * d + 2], batch[:, -1:]
    with torch.no_grad():
        y = r + gamma * target(s2).amax(dim=1, keepdim=True) * (1.0 - done)
    q_sa = q(s).gather(1, a.long())
    return torch.nn.functional.mse_loss(q_sa, y)
