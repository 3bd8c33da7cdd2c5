"""Environment parameters, their defaults and validation, and RLlib-style ``env_config`` parsing."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

TRADE_PENALTY_MODES = ("cumulative", "per_trade")


@dataclass(frozen=True)
class EnvParams:
    """The environment's parameters; defaults are the team's environment defaults (spec)."""

    initial_balance: float = 10_000.0
    transaction_fee_percent: float = 0.1
    window_size: int = 5
    normalization_window_size: int = 20
    sharpe_window_size: int = 20
    use_sharpe_ratio: bool = True
    risk_free_rate: float = 0.0
    trading_frequency_penalty: float = 0.01
    drawdown_penalty: float = 0.1
    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    position_sizing_method: str = "fixed_fractional"
    risk_fraction: float = 0.1
    trade_penalty_mode: str = "cumulative"
    """How ``trading_frequency_penalty`` is charged. ``"cumulative"`` (the spec, default): every
    step pays ``trading_frequency_penalty * trade_count`` (the episode's count so far).
    ``"per_trade"``: a step pays ``trading_frequency_penalty`` once for each trade counted on
    that step (the trade count's increment: 1 for an entry or an exit, 1 for a reversal, as the
    team counts it; 0 when nothing executes), so an episode pays ``penalty * trade_count`` in
    all."""
    observe_position: bool = False
    """True: the observation gets two more features after the spec's two portfolio features:
    the position (-1 short / 0 flat / 1 long) and the unrealised PnL of the open position over
    ``initial_balance`` (``(price - entry) * shares`` long, ``(entry - price) * |shares|``
    short, fees excluded; 0 when flat)."""
    record_episode: bool = True
    step_info: bool = True
    """False: non-terminal steps return an empty info (the terminal info, with the summary and
    ``episode_log``, is complete either way). Vector envs spend ~30 us per step aggregating the
    16-key info; RLlib training loses nothing by skipping it."""

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                raise ValueError(f"env parameter {name}={getattr(self, name)!r}: {what}")

        need(self.initial_balance > 0, "initial_balance", "must be > 0")
        need(self.transaction_fee_percent >= 0, "transaction_fee_percent", "must be >= 0")
        for name in ("window_size", "normalization_window_size", "sharpe_window_size"):
            value = getattr(self, name)
            need(isinstance(value, int) and value >= 1, name, "must be an integer >= 1")
        for name in ("stop_loss_pct", "take_profit_pct"):
            value = getattr(self, name)
            need(value is None or value > 0, name, "must be None or > 0 (a percent)")
        need(
            self.position_sizing_method in ("fixed_fractional", "all_in"),
            "position_sizing_method",
            "must be 'fixed_fractional' or 'all_in'",
        )
        need(0 < self.risk_fraction <= 1, "risk_fraction", "must be in (0, 1]")
        need(
            self.trade_penalty_mode in TRADE_PENALTY_MODES,
            "trade_penalty_mode",
            "must be 'cumulative' or 'per_trade'",
        )
        need(isinstance(self.observe_position, bool), "observe_position", "must be a bool")

    @property
    def n_portfolio_features(self) -> int:
        """Features after the market window: 2 (spec), 4 with ``observe_position``."""
        return 4 if self.observe_position else 2

    def to_dict(self) -> dict[str, Any]:
        """All parameters as a plain dict (for run metadata)."""
        return asdict(self)


TEAM_TRAINING_PARAMS: dict[str, Any] = {
    "transaction_fee_percent": 0.001,
    "sharpe_window_size": 100,
    "drawdown_penalty": 0.005,
    "trading_frequency_penalty": 0.002,
    "risk_fraction": 0.1,
    "stop_loss_pct": 5.0,
    "use_sharpe_ratio": False,
}
"""The settings of the team's training script (the training CLI's defaults)."""

PARAM_NAMES = frozenset(f.name for f in fields(EnvParams))
DATA_KEYS = frozenset({"df", "data", "start", "end", "date_column", "date_format"})


def parse_env_config(
    env_config: dict[str, Any] | None, overrides: dict[str, Any]
) -> tuple[pd.DataFrame, EnvParams]:
    """Split an RLlib-style ``env_config`` into the prepared market table and the parameters.

    ``env_config`` holds either ``df`` (a table already passed through
    :func:`rsc_env.add_indicators`) or ``data`` (a CSV path or a bundled sample name, optionally
    with ``start``/``end``/``date_column``/``date_format``), plus any :class:`EnvParams` field.
    Without either, the bundled S&P 500 series is used.
    """
    import numpy as np
    import pandas as pd

    from rsc_env.features import prepare_market_data

    config = {**dict(env_config or {}), **overrides}
    unknown = sorted(set(config) - PARAM_NAMES - DATA_KEYS)
    if unknown:
        raise ValueError(
            f"unknown env_config key(s) {unknown}; valid: {sorted(PARAM_NAMES | DATA_KEYS)}"
        )
    params = EnvParams(**{k: v for k, v in config.items() if k in PARAM_NAMES})
    min_rows = 2
    if "df" in config:
        if "data" in config:
            raise ValueError("env_config: give either 'df' or 'data', not both")
        df = config["df"]
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"env_config['df'] must be a pandas DataFrame, got {type(df)}")
        numeric = df.select_dtypes("number")
        infinite = [c for c in numeric.columns if np.isinf(numeric[c].to_numpy()).any()]
        if infinite:
            col = infinite[0]
            rows = np.flatnonzero(np.isinf(numeric[col].to_numpy()))
            raise ValueError(
                f"env_config['df']: non-finite values (inf) in column {col!r}: {len(rows)} "
                f"row(s), first at row {rows[0]} ({df.index[rows[0]]}); columns with inf: "
                f"{infinite}"
            )
        if df.isna().to_numpy().any():  # spec: rows containing any NaN never reach the environment
            df = df.dropna()
        if config.get("start") is not None or config.get("end") is not None:
            df = df.loc[config.get("start") : config.get("end")]
        if len(df) < min_rows:
            raise ValueError(f"env_config['df'] has {len(df)} rows; need at least {min_rows}")
    else:
        df = prepare_market_data(
            config.get("data", "sp500"),
            start=config.get("start"),
            end=config.get("end"),
            date_column=config.get("date_column"),
            date_format=config.get("date_format"),
            min_rows=min_rows,
        )
    non_numeric = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if non_numeric:
        raise ValueError(f"market table: non-numeric column(s) {non_numeric}")
    return df, params
