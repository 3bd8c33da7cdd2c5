"""rsc_policy: the StrategyAgent (DQN) -- a plain sequential trainer and an RLlib algorithm.

Rooms: :mod:`rsc_policy.agent` (the learning rule, replay, the sequential trainer; no Ray),
:mod:`rsc_policy.rllib` (the RLlib plugin), :mod:`rsc_policy.evaluation` (held-out evaluation),
:mod:`rsc_policy.tuning` (rsc-tune's sweep) and :mod:`rsc_policy.cli` (the command-line tools);
settings, data periods, Ray start, plots and tracking shared by ``tuning`` and ``cli`` sit at
this level. Ray is imported lazily: the agent and evaluation packages work without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rsc_env import __version__  # one version for the distribution

if TYPE_CHECKING:
    from rsc_policy.agent.export import GreedyPolicy, export_policy, load_policy
    from rsc_policy.agent.sequential import (
        AgentParams,
        SequentialResult,
        StrategyAgent,
        train_sequential,
    )
    from rsc_policy.evaluation.episode import evaluate
    from rsc_policy.rllib.algorithm import StrategyAgentAlgo
    from rsc_policy.rllib.config import StrategyAgentConfig

ENV_NAME = "rsc-trading"

__all__ = [
    "__version__",
    "ENV_NAME",
    "AgentParams",
    "GreedyPolicy",
    "SequentialResult",
    "StrategyAgent",
    "StrategyAgentAlgo",
    "StrategyAgentConfig",
    "evaluate",
    "export_policy",
    "load_policy",
    "register_env",
    "train_sequential",
]

_LAZY = {
    "evaluate": "rsc_policy.evaluation.episode",
    "GreedyPolicy": "rsc_policy.agent.export",
    "export_policy": "rsc_policy.agent.export",
    "load_policy": "rsc_policy.agent.export",
    "AgentParams": "rsc_policy.agent.sequential",
    "SequentialResult": "rsc_policy.agent.sequential",
    "StrategyAgent": "rsc_policy.agent.sequential",
    "train_sequential": "rsc_policy.agent.sequential",
    "StrategyAgentAlgo": "rsc_policy.rllib.algorithm",
    "StrategyAgentConfig": "rsc_policy.rllib.config",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rsc_policy' has no attribute {name!r}")


def _make_trading_env(env_config: dict[str, Any]) -> Any:
    from rsc_env import TradingEnv

    return TradingEnv({k: v for k, v in dict(env_config).items() if k != "num_envs"})


def register_env(name: str = ENV_NAME) -> str:
    """Register :class:`rsc_env.TradingEnv` with Ray Tune under ``name`` (idempotent)."""
    from ray.tune.registry import register_env as _register

    _register(name, _make_trading_env)
    return name
