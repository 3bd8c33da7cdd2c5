"""Turn the environment's terminal ``info`` dict into plain, validated row data.

Everything is validated before anything is written: bad input raises :class:`ValueError`
naming the offending key.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from .models import ACTIONS, DIRECTIONS, OPERATION_TYPES

SUMMARY_KEYS = (
    "initial_portfolio_value",
    "final_portfolio_value",
    "pnl",
    "win_rate",
    "max_drawdown",
    "sharpe_ratio",
    "total_reward",
)
TRADE_KEYS = (
    "entry_time",
    "exit_time",
    "entry_price",
    "exit_price",
    "quantity",
    "direction",
    "pnl",
    "costs",
)
LOG_ARRAYS = ("date", "action", "position", "reward", "portfolio_value", "price")
#: env position code (-1/0/1) -> label; env action code (0/1/2) -> label
POSITION_LABELS = {-1: "short", 0: "flat", 1: "long"}
ACTION_LABELS = dict(enumerate(ACTIONS))


@dataclass(frozen=True)
class EpisodeRecord:
    """Row data of one episode, without database ids.

    ``steps`` rows lack ``episode_id``; ``operations`` rows carry ``step_index`` (position in
    ``steps``) instead of ``step_id``/``episode_id``. Both are empty when steps are not logged.
    """

    summary: dict[str, Any]
    trades: list[dict[str, Any]]
    steps: list[dict[str, Any]] = field(default_factory=list)
    operations: list[dict[str, Any]] = field(default_factory=list)


def to_utc(value: Any) -> datetime:
    """A UTC-aware ``datetime`` from a datetime, ``pd.Timestamp``, ``np.datetime64`` or ISO
    string; naive values are taken to be UTC."""
    if isinstance(value, pd.Timestamp):
        if value is pd.NaT:
            raise ValueError("timestamp is NaT")
        value = value.to_pydatetime()
    elif not isinstance(value, datetime):
        ts = pd.Timestamp(value)
        if ts is pd.NaT:
            raise ValueError(f"timestamp is NaT: {value!r}")
        value = ts.to_pydatetime()
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _get(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in mapping:
        raise ValueError(f"{where} is missing key {key!r}")
    return mapping[key]


def _number(mapping: Mapping[str, Any], key: str, where: str) -> float:
    value = _get(mapping, key, where)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}[{key!r}] is not a number: {value!r}") from None
    if math.isnan(number):
        raise ValueError(f"{where}[{key!r}] is NaN")
    return number


def _summary(info: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {k: _number(info, k, "terminal_info") for k in SUMMARY_KEYS}
    total_steps = _number(info, "total_steps", "terminal_info")
    if total_steps < 0 or total_steps != int(total_steps):
        raise ValueError(f"terminal_info['total_steps'] is not a count: {total_steps!r}")
    row["total_steps"] = int(total_steps)
    return row


_TRADES = "terminal_info['completed_trades']"


def _trade_column(trades: Sequence[Mapping[str, Any]], key: str) -> list[Any]:
    try:
        return [t[key] for t in trades]
    except KeyError:
        i = next(i for i, t in enumerate(trades) if key not in t)
        raise ValueError(f"{_TRADES}[{i}] is missing key {key!r}") from None


def _trade_times(values: list[Any], key: str) -> list[datetime]:
    try:
        idx = pd.to_datetime(values, utc=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{_TRADES}[...][{key!r}] is not a timestamp: {exc}") from None
    if idx.hasnans:
        raise ValueError(f"{_TRADES}[{int(np.argmax(idx.isna()))}][{key!r}] is NaT")
    return list(idx.to_pydatetime())


def _trade_numbers(values: list[Any], key: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{_TRADES}[...][{key!r}] has a value that is not a number") from None
    if np.isnan(arr).any():
        raise ValueError(f"{_TRADES}[{int(np.argmax(np.isnan(arr)))}][{key!r}] is NaN")
    return arr


def _trades(info: Mapping[str, Any]) -> list[dict[str, Any]]:
    trades = list(_get(info, "completed_trades", "terminal_info"))
    if not trades:
        return []
    for i, trade in enumerate(trades):
        if not isinstance(trade, Mapping):
            raise ValueError(f"{_TRADES}[{i}] is not a dict")
    cols = {key: _trade_column(trades, key) for key in TRADE_KEYS}
    bad = [d for d in cols["direction"] if d not in DIRECTIONS]
    if bad:
        raise ValueError(f"{_TRADES}[...]['direction'] must be 'long' or 'short': {bad[0]!r}")
    qty = _trade_numbers(cols["quantity"], "quantity")
    if (qty != np.round(qty)).any():
        raise ValueError(f"{_TRADES}[...]['quantity'] must be whole numbers")
    cols["quantity"] = qty.astype(np.int64).tolist()
    for key in ("entry_time", "exit_time"):
        cols[key] = _trade_times(cols[key], key)
    for key in ("entry_price", "exit_price", "pnl", "costs"):
        cols[key] = _trade_numbers(cols[key], key).tolist()
    return [dict(zip(TRADE_KEYS, row, strict=True)) for row in zip(*cols.values(), strict=True)]


def _log_arrays(log: Mapping[str, Any], total_steps: int) -> dict[str, np.ndarray]:
    arrays = {}
    for key in LOG_ARRAYS:
        arr = np.asarray(_get(log, key, "terminal_info['episode_log']"))
        if arr.ndim != 1 or len(arr) != total_steps:
            raise ValueError(
                f"terminal_info['episode_log'][{key!r}] has shape {arr.shape}, "
                f"expected ({total_steps},) (total_steps)"
            )
        arrays[key] = arr
    for key in ("reward", "portfolio_value", "price"):
        if np.isnan(arrays[key].astype(np.float64)).any():
            raise ValueError(f"terminal_info['episode_log'][{key!r}] contains NaN")
    if not np.isin(arrays["action"], list(ACTION_LABELS)).all():
        raise ValueError("terminal_info['episode_log']['action'] has values outside 0/1/2")
    if not np.isin(arrays["position"], list(POSITION_LABELS)).all():
        raise ValueError("terminal_info['episode_log']['position'] has values outside -1/0/1")
    return arrays


def _dates(raw: np.ndarray) -> list[datetime]:
    """Naive-UTC python datetimes (the column type tags them UTC)."""
    idx = pd.DatetimeIndex(raw)
    if idx.hasnans:
        raise ValueError("terminal_info['episode_log']['date'] contains NaT")
    if idx.tz is not None:
        idx = idx.tz_convert(UTC).tz_localize(None)
    return list(idx.to_pydatetime())


def _steps(arrays: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    dates = _dates(arrays["date"])
    acts = [ACTION_LABELS[a] for a in arrays["action"].astype(int).tolist()]
    poss = [POSITION_LABELS[p] for p in arrays["position"].astype(int).tolist()]
    pvs = arrays["portfolio_value"].astype(np.float64).tolist()
    rewards = arrays["reward"].astype(np.float64).tolist()
    prices = arrays["price"].astype(np.float64).tolist()
    return [
        {
            "timestamp": d,
            "portfolio_value": pv,
            "reward": r,
            "asset_price": p,
            "action": a,
            "position": s,
        }
        for d, pv, r, p, a, s in zip(dates, pvs, rewards, prices, acts, poss, strict=True)
    ]


def _operation(op: Any, n: int) -> tuple[int, str, float, float]:
    """One validated ``(step_index, operation_type, size, price)``; ``ValueError`` if bad."""
    try:
        index, kind, size, price = op
        index = operator.index(index)
        size, price = float(size), float(price)
    except (TypeError, ValueError):
        raise ValueError(f"must be (step_index, operation_type, size, price): {op!r}") from None
    if not 0 <= index < n:
        raise ValueError(f"step index {index} is outside the episode (0..{n - 1})")
    if kind not in OPERATION_TYPES:
        raise ValueError(f"has unknown operation type {kind!r}")
    if size != size or price != price:
        raise ValueError("has a NaN size or price")
    return index, kind, size, price


def _operations(raw: Sequence[Any], steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    n = len(steps)
    for i, op in enumerate(raw):
        try:
            index, kind, size, price = _operation(op, n)
        except ValueError as exc:
            raise ValueError(f"terminal_info['episode_log']['operations'][{i}] {exc}") from None
        rows.append(
            {
                "step_index": index,
                "timestamp": steps[index]["timestamp"],
                "operation_type": kind,
                "size": size,
                "price": price,
            }
        )
    return rows


def episode_record(info: Mapping[str, Any], *, with_steps: bool = True) -> EpisodeRecord:
    """Validate a terminal ``info`` dict and return its row data.

    ``with_steps=False`` skips (and does not require) ``info['episode_log']``.
    Raises :class:`ValueError` naming the missing or malformed key.
    """
    if not isinstance(info, Mapping):
        raise ValueError(f"terminal_info must be a dict, got {type(info).__name__}")
    summary = _summary(info)
    trades = _trades(info)
    if not with_steps:
        return EpisodeRecord(summary, trades)
    log = _get(info, "episode_log", "terminal_info")
    if not isinstance(log, Mapping):
        raise ValueError("terminal_info['episode_log'] must be a dict")
    steps = _steps(_log_arrays(log, summary["total_steps"]))
    ops = _operations(_get(log, "operations", "terminal_info['episode_log']"), steps)
    return EpisodeRecord(summary, trades, steps, ops)
