"""rsc_env: market data, technical indicators and the trading environment (no Ray, no DB).

Submodules load on first use, so ``import rsc_env`` is cheap (the CLIs' ``--help`` stays fast).
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rsc_env.data import (
        MarketDataError,
        load_ohlcv,
        load_sample,
        split_by_date,
        validate_ohlcv,
    )
    from rsc_env.env import TradingEnv
    from rsc_env.features import INDICATOR_COLUMNS, add_indicators, prepare_market_data
    from rsc_env.params import TEAM_TRAINING_PARAMS, EnvParams
    from rsc_env.reference import ReferenceTradingEnv

ENV_ID = "rsc/Trading-v0"
try:
    __version__ = version("reinforce-strategy-creator")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"


def register_gymnasium() -> str:
    """Register :class:`TradingEnv` with gymnasium as ``rsc/Trading-v0`` (idempotent):
    ``gym.make("rsc/Trading-v0", env_config={...})``, or without importing rsc_env first,
    ``gym.make("rsc_env:rsc/Trading-v0", ...)``."""
    import gymnasium

    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point="rsc_env.env:TradingEnv")
    return ENV_ID


if "gymnasium" in sys.modules:  # gym.make("rsc_env:rsc/Trading-v0") imports gymnasium first
    register_gymnasium()


def _drop_stale_numba_cache() -> None:
    from pathlib import Path

    from rsc_env.numba_cache import drop_stale_cache, package_sources

    drop_stale_cache(Path(__file__).parent, package_sources())


_drop_stale_numba_cache()  # before any cached kernel of rsc_env loads (see numba_cache)

_WHERE = {
    "MarketDataError": "data", "load_ohlcv": "data", "load_sample": "data",
    "split_by_date": "data", "validate_ohlcv": "data", "TradingEnv": "env",
    "NoTradeWarning": "env",
    "INDICATOR_COLUMNS": "features", "add_indicators": "features",
    "prepare_market_data": "features", "TEAM_TRAINING_PARAMS": "params", "EnvParams": "params",
    "ReferenceTradingEnv": "reference",
}  # fmt: skip

__all__ = [
    "ENV_ID",
    "__version__",
    "register_gymnasium",
    "INDICATOR_COLUMNS",
    "TEAM_TRAINING_PARAMS",
    "EnvParams",
    "MarketDataError",
    "ReferenceTradingEnv",
    "TradingEnv",
    "NoTradeWarning",
    "add_indicators",
    "load_ohlcv",
    "load_sample",
    "prepare_market_data",
    "split_by_date",
    "validate_ohlcv",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"rsc_env.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'rsc_env' has no attribute {name!r}")
