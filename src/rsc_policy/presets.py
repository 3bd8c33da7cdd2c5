"""Named presets of the agent's and environment's settings (``--preset``, ``preset = ...``).

* ``team`` (the default): nothing changes; the team's rule and rsc-train's defaults (parity).
* ``recommended``: the settings that learn the planted patterns of ``rsc-check learnability``
  (evidence in the README, "Can it learn?").

A preset only sets defaults: a settings file and the command line override any of its values.
This module is light (no pandas, torch or Ray): the CLIs' ``--help`` lists the presets from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class Preset:
    """A preset: a one-line description and its ``env`` and ``agent`` settings."""

    description: str
    env: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    agent: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))


PRESETS: dict[str, Preset] = {
    "team": Preset("the team's rule and defaults (parity)"),
    "recommended": Preset(
        "learns the planted patterns: per-trade penalty, position observed, linear epsilon",
        env=MappingProxyType({
            "trade_penalty_mode": "per_trade",
            "observe_position": True,
        }),
        agent=MappingProxyType({
            "epsilon_schedule": "linear",
            "epsilon_fraction": 0.3,
        }),
    ),
}
DEFAULT_PRESET = "team"


def preset(name: str) -> Preset:
    """The preset ``name``; ValueError naming the known presets otherwise."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name]


def preset_params(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(agent kwargs, env kwargs)`` of a preset: the agent's go to
    ``StrategyAgentConfig.training`` / ``train_sequential``, the env's to the env config."""
    p = preset(name)
    return dict(p.agent), dict(p.env)


def describe() -> str:
    """One line listing the presets, for ``--help``."""
    return "; ".join(f"{name}: {p.description}" for name, p in PRESETS.items())
