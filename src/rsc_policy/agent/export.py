"""Export a trained Q-net as a plain torch file + JSON metadata; load it back without Ray."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rsc_policy.agent.network import HIDDEN, build_qnet, linear_layers

FORMAT = "rsc-policy/1"
WEIGHTS_FILE = "qnet.pt"
META_FILE = "policy.json"


class GreedyPolicy:
    """``argmax_a Q(obs, a)`` (first index on ties) of an exported Q-net. No Ray needed."""

    def __init__(self, q: nn.Module, metadata: Mapping[str, Any] | None = None) -> None:
        self.q = q.eval()
        self.metadata = dict(metadata or {})

    def act(self, obs: np.ndarray) -> int:
        with torch.inference_mode():
            x = torch.as_tensor(np.asarray(obs, dtype=np.float32)).reshape(1, -1)
            return int(self.q(x).argmax(dim=1))

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.q(torch.as_tensor(np.asarray(obs, dtype=np.float32))).argmax(1).numpy()

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.as_tensor(np.asarray(obs, dtype=np.float32)).reshape(1, -1)
            return self.q(x)[0].numpy()

    __call__ = act


def _qnet_of(source: Any) -> tuple[nn.Module, dict[str, Any]]:
    """The Q-net and known metadata of an algorithm, agent, policy or module."""
    if isinstance(source, nn.Module):
        return source, {}
    if isinstance(source, GreedyPolicy):
        return source.q, dict(source.metadata)
    if hasattr(source, "memory") and hasattr(source, "q") and hasattr(source, "params"):
        return source.q, {"agent_params": dict(source.params.__dict__), "seed": source.seed}
    if hasattr(source, "learner_group"):  # StrategyAgentAlgo

        cfg = source.config
        env_config = dict(cfg.env_config or {})
        return source.policy_network(), {
            "agent_params": cfg.agent_params(), "seed": cfg.seed_or_zero,
            "env_config": env_config}
    raise TypeError(f"cannot export a policy from {type(source).__name__}")


def _jsonable(config: Mapping[str, Any] | None) -> dict[str, Any]:
    out = {}
    for k, v in dict(config or {}).items():
        try:
            json.dumps(v)
        except TypeError:
            continue  # e.g. a DataFrame under "df": not part of the metadata
        out[k] = v
    return out


def export_policy(source: Any, directory: str | Path, *, env_config: Mapping[str, Any] | None
                  = None, extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``qnet.pt`` (the Q-net's state_dict) and ``policy.json`` to ``directory``.

    ``source``: a :class:`StrategyAgentAlgo`, :class:`StrategyAgent`, :class:`GreedyPolicy`
    or Q-net module. ``env_config`` (JSON-serialisable entries) is recorded so the policy can
    be evaluated on the environment it was trained for.
    """
    q, meta = _qnet_of(source)
    layers = linear_layers(q)  # type: ignore[arg-type]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone() for k, v in q.state_dict().items()}
    torch.save(state, directory / WEIGHTS_FILE)
    metadata = {
        "format": FORMAT,
        "obs_dim": layers[0].in_features,
        "n_actions": layers[-1].out_features,
        "hidden": layers[0].out_features,
        "architecture": "Linear-ReLU-Linear-ReLU-Linear",
        **meta,
        "env_config": _jsonable(env_config if env_config is not None
                                else meta.get("env_config")),
        **dict(extra or {}),
    }
    (directory / META_FILE).write_text(json.dumps(metadata, indent=2, default=str))
    return directory


def load_policy(directory: str | Path) -> GreedyPolicy:
    """Load an exported policy as a :class:`GreedyPolicy`."""
    directory = Path(directory)
    meta_path = directory / META_FILE
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path} not found: not an exported policy directory")
    metadata = json.loads(meta_path.read_text())
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{meta_path}: unknown format {metadata.get('format')!r}")
    q = build_qnet(metadata["obs_dim"], metadata["n_actions"], 0,
                   hidden=metadata.get("hidden", HIDDEN))
    q.load_state_dict(torch.load(directory / WEIGHTS_FILE, weights_only=True))
    return GreedyPolicy(q, metadata)
