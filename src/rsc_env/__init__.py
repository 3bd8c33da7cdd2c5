"""rsc_env: market data, technical indicators and the trading environment (no Ray, no DB)."""

from rsc_env.data import MarketDataError, load_ohlcv, load_sample, split_by_date, validate_ohlcv
from rsc_env.env import TradingEnv
from rsc_env.features import INDICATOR_COLUMNS, add_indicators, prepare_market_data
from rsc_env.params import TEAM_TRAINING_PARAMS, EnvParams
from rsc_env.reference import ReferenceTradingEnv

__all__ = [
    "INDICATOR_COLUMNS",
    "TEAM_TRAINING_PARAMS",
    "EnvParams",
    "MarketDataError",
    "ReferenceTradingEnv",
    "TradingEnv",
    "add_indicators",
    "load_ohlcv",
    "load_sample",
    "prepare_market_data",
    "split_by_date",
    "validate_ohlcv",
]
