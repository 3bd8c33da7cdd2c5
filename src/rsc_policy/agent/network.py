"""The Q-network: ``Linear(obs,64)-ReLU-Linear(64,64)-ReLU-Linear(64,n)`` and its helpers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

N_ACTIONS = 3
HIDDEN = 64

# ----------------------------------------------------------------------------- network


ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "silu": nn.SiLU, "swish": nn.SiLU}


def build_qnet(obs_dim: int, n_actions: int = N_ACTIONS, seed: int = 0, hidden: int = HIDDEN,
               *, hiddens: Sequence[int] | None = None, activation: str = "relu"
               ) -> nn.Sequential:
    """An MLP Q-net, by default the team's ``Linear(obs,64)-ReLU-Linear(64,64)-ReLU-Linear(64,n)``
    (``hiddens`` and ``activation`` give other shapes: RLlib's ``fcnet_hiddens`` /
    ``fcnet_activation``), PyTorch default init.

    The initialisation is drawn from torch's generator seeded with ``seed`` inside
    ``fork_rng``, so it neither depends on nor disturbs the global torch RNG state.
    """
    widths = [hidden, hidden] if hiddens is None else [int(h) for h in hiddens]
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r}: choose one of {sorted(ACTIVATIONS)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        width = obs_dim
        for h in widths:
            layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
            width = h
        layers.append(nn.Linear(width, n_actions))
        return nn.Sequential(*layers)


def is_default_shape(net: nn.Sequential) -> bool:
    """True for two hidden ReLU layers (the shape the fast learning step is written for)."""
    kinds = [type(m) for m in net]
    return kinds == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]


def linear_layers(net: nn.Sequential) -> list[nn.Linear]:
    """The ``nn.Linear`` layers of a Q-net, in order."""
    return [m for m in net if isinstance(m, nn.Linear)]
