"""The fast ``TradingEnv``: the team's rules, with every data-only quantity computed once.

Observations depend only on the bar index (the rolling normalisation uses the data alone), so
the whole normalised window of every bar is built once per table as a float32 array and a
step only indexes it and appends the two portfolio features. The trading rules run on Python
scalars. ``rsc_env.reference.ReferenceTradingEnv`` is the literal, slow specification this
class is tested against.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

from rsc_env.episode_log import EpisodeRecorder
from rsc_env.params import parse_env_config

FLAT, LONG, SHORT = 0, 1, 2
_POSITION_OF_ACTION = (0, 1, -1)


@dataclass(frozen=True)
class MarketArrays:
    """Everything the environment needs from the data, precomputed once per table."""

    close: list[float]
    dates: list[pd.Timestamp]
    dates64: np.ndarray
    observations: np.ndarray  # (n_rows, window * n_features + tail) float32, last tail cols 0
    n_features: int

    @classmethod
    def build(cls, df: pd.DataFrame, window: int, norm_window: int, tail: int = 2
              ) -> MarketArrays:
        """Normalise every feature with its rolling stats and lay out each bar's window,
        followed by ``tail`` zero columns for the portfolio features."""
        values = df.to_numpy(dtype=np.float64)
        rolling = df.astype(np.float64).rolling(norm_window, min_periods=1)
        mean = np.nan_to_num(rolling.mean().to_numpy(), nan=0.0)
        std = np.nan_to_num(rolling.std().to_numpy(), nan=1e-8) + 1e-8
        n, f = values.shape
        obs = np.zeros((n, window * f + tail), dtype=np.float32)
        row0 = np.nan_to_num((values[0] - mean[0]) / std[0])
        for k in range(window):  # slot k holds row t - (window - 1) + k
            lag = window - 1 - k
            slot = obs[:, k * f : (k + 1) * f]
            slot[:lag] = row0
            slot[lag:] = np.nan_to_num((values[: n - lag] - mean[lag:]) / std[lag:])
        return cls(
            close=df["close"].astype(float).tolist(),
            dates=list(df.index),
            dates64=df.index.to_numpy(dtype="datetime64[ns]"),
            observations=obs,
            n_features=f,
        )


_CACHE: dict[tuple, MarketArrays] = {}
_CACHE_SIZE = 64  # a sweep's folds: training and validation windows (~0.3 MB each)


def market_arrays(df: pd.DataFrame, window: int, norm_window: int, tail: int = 2
                  ) -> MarketArrays:
    """Shared :class:`MarketArrays` for ``df``: envs built from equal tables reuse one copy.

    Keyed by the table's content (a digest of values and dates), so the copies a vector env or
    an env runner builds from one ``env_config`` share the arrays.
    """
    digest = hashlib.blake2b(np.ascontiguousarray(df.to_numpy(np.float64)).tobytes())
    digest.update(df.index.to_numpy(dtype="datetime64[ns]").tobytes())
    key = (digest.hexdigest(), tuple(df.columns), window, norm_window, tail)
    arrays = _CACHE.get(key)
    if arrays is None:
        arrays = MarketArrays.build(df, window, norm_window, tail)
        if len(_CACHE) >= _CACHE_SIZE:
            del _CACHE[next(iter(_CACHE))]
        _CACHE[key] = arrays
    return arrays


def clear_market_cache() -> None:
    """Forget the shared :class:`MarketArrays` (benchmarks time a cold build with it)."""
    _CACHE.clear()


class NoTradeWarning(UserWarning):
    """The env's position sizing can never buy a share of its data."""


class TradingEnv(gym.Env):
    """Daily-bar trading: actions 0 flat / 1 long / 2 short (target position).

    Args:
        env_config: RLlib-style dict: ``df`` (a prepared table) or ``data`` (CSV path or bundled
            sample name, with optional ``start``/``end``), plus any :class:`EnvParams` field.
        **overrides: parameters given as keywords (win over ``env_config``).

    The terminal step's ``info`` also holds the episode summary and, with
    ``record_episode`` (default), ``episode_log`` (see :mod:`rsc_env.episode_log`).
    """

    metadata = {"render_modes": []}

    def __init__(self, env_config: dict[str, Any] | None = None, **overrides: Any) -> None:
        df, params = parse_env_config(env_config, overrides)
        self.df = df
        self.params = params
        tail = params.n_portfolio_features
        self.market = market_arrays(df, params.window_size, params.normalization_window_size,
                                    tail)
        self.n_rows = len(df)
        dim = params.window_size * self.market.n_features + tail
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32)
        self.action_space = gym.spaces.Discrete(3)
        p = params
        self._pct = p.transaction_fee_percent
        self._fee_rate = self._pct / 100  # sizing divisor 1 + pct/100; fees are v * pct / 100
        self._size: Callable[[float, float], int] = (
            self._size_all_in if p.position_sizing_method == "all_in" else self._size_fraction
        )
        self._sl = None if p.stop_loss_pct is None else p.stop_loss_pct / 100.0
        self._tp = None if p.take_profit_pct is None else p.take_profit_pct / 100.0
        self.recorder = EpisodeRecorder() if p.record_episode else None
        self._per_trade = p.trade_penalty_mode == "per_trade"
        self._observe_position = p.observe_position
        self._warn_if_no_share_affordable()
        self._reset_state()

    def _warn_if_no_share_affordable(self) -> None:
        """Warn (:class:`NoTradeWarning`) when the sizing buys no share even at the period's
        lowest close: every buy and short is then skipped and training learns nothing (the
        team's defaults, 10 % of 10,000, on an index above 1,000)."""
        p = self.params
        low = float(np.min(self.market.close))
        if self._size(p.initial_balance, low) > 0:
            return
        if p.position_sizing_method == "all_in":
            how = (f"all_in spends initial_balance {p.initial_balance:,.2f} / (1 + fee "
                   f"{self._fee_rate:g}) = {p.initial_balance / (1 + self._fee_rate):,.2f}")
            fix = "Raise initial_balance."
        else:
            how = (f"fixed_fractional spends risk_fraction {p.risk_fraction:g} x "
                   f"initial_balance {p.initial_balance:,.2f} = "
                   f"{p.risk_fraction * p.initial_balance:,.2f}")
            fix = ("Raise initial_balance or risk_fraction, or use "
                   "position_sizing_method='all_in'.")
        first, last = self.df.index[0], self.df.index[-1]
        warnings.warn(
            f"TradingEnv: position sizing buys no share on {first:%Y-%m-%d}..{last:%Y-%m-%d}: "
            f"{how}, below the lowest close {low:,.2f}, so the agent can never open a "
            f"position. {fix}", NoTradeWarning, stacklevel=3)

    @property
    def episode_length(self) -> int:
        """Steps of every episode (each walks all bars from row 0): ``n_rows - 1``."""
        return self.n_rows - 1

    # ----------------------------------------------------------------- state
    def _reset_state(self) -> None:
        ib = self.params.initial_balance
        self.t = 0
        self.balance = ib
        self.shares_held = 0
        self.position = 0
        self.entry_price = 0.0
        self.entry_step = 0
        self.trade_count = 0
        self.portfolio_value = ib
        self.max_portfolio_value = ib
        self.max_drawdown = 0.0
        self.total_reward = 0.0
        self.total_steps = 0
        self.returns: list[float] = []
        self.trades: list[dict[str, Any]] = []
        self._sharpe: deque[float] = deque(maxlen=self.params.sharpe_window_size)
        self._done = False
        if self.recorder is not None:
            self.recorder.clear()

    def _observation(self) -> np.ndarray:
        t = self.t
        obs = self.market.observations[t].copy()
        ib = self.params.initial_balance
        price = self.market.close[t]
        if self._observe_position:
            obs[-4] = self.balance / ib
            obs[-3] = self.shares_held * price / ib
            obs[-2] = self.position
            # shares_held is signed, so (price - entry) * shares is the PnL of either side
            obs[-1] = ((price - self.entry_price) * self.shares_held / ib
                       if self.position else 0.0)
            return obs
        obs[-2] = self.balance / ib
        obs[-1] = self.shares_held * price / ib
        return obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new episode at the first bar (every episode walks the same bars)."""
        super().reset(seed=seed)
        self._reset_state()
        info = {
            "balance": self.balance,
            "shares_held": self.shares_held,
            "portfolio_value": self.portfolio_value,
            "starting_step": 0,
            "current_price": self.market.close[0],
        }
        return self._observation(), info

    # ----------------------------------------------------------------- trading
    def _size_fraction(self, balance: float, price: float) -> int:
        return int(balance * self.params.risk_fraction / price)

    def _size_all_in(self, balance: float, price: float) -> int:
        return int(balance / (price * (1.0 + self._fee_rate)))

    def _open(self, side: int, price: float, t: int) -> tuple[str, float, float] | None:
        shares = self._size(self.balance, price)
        if side == 1:
            shares = min(shares, int(self.balance / (price * (1.0 + self._fee_rate))))
        if shares <= 0 or (side == -1 and self.balance <= 0):
            return None
        value = shares * price
        fee = value * self._pct / 100
        if side == 1:
            self.balance -= value + fee
            self.shares_held += shares
        else:
            self.balance += value - fee
            self.shares_held = -shares
        self.position = side
        self.entry_price = price
        self.entry_step = t
        self.trade_count += 1
        return (
            ("ENTRY_LONG", float(shares), price)
            if side == 1
            else ("ENTRY_SHORT", float(-shares), price)
        )

    def _close(self, price: float, t: int, count: bool) -> tuple[str, float, float] | None:
        qty = abs(self.shares_held)
        value = qty * price
        fee = value * self._pct / 100
        if self.position == 1:
            self.balance += value - fee
            pnl = (price - self.entry_price) * qty - fee
            op = ("EXIT_LONG", float(-qty), price)
        else:
            if self.balance < value + fee:
                return None  # failed cover: the short stays open
            self.balance -= value + fee
            pnl = (self.entry_price - price) * qty - fee
            op = ("EXIT_SHORT", float(qty), price)
        self.trades.append(
            {
                "entry_step": self.entry_step,
                "exit_step": t,
                "entry_time": self.market.dates[self.entry_step],
                "exit_time": self.market.dates[t],
                "entry_price": self.entry_price,
                "exit_price": price,
                "quantity": qty,
                "direction": "long" if self.position == 1 else "short",
                "pnl": pnl,
                "costs": fee,
            }
        )
        self.shares_held = 0
        self.position = 0
        self.entry_price = 0.0
        if count:
            self.trade_count += 1
        return op

    def _execute(self, action: int, price: float, t: int) -> list[tuple[str, float, float]]:
        target = _POSITION_OF_ACTION[action]
        pos = self.position
        if target == pos:
            return []
        if pos == 0:
            op = self._open(target, price, t)
            return [op] if op else []
        op = self._close(price, t, count=target == 0)
        if op is None:
            return []
        if target == 0:
            return [op]
        entry = self._open(target, price, t)
        return [op, entry] if entry else [op]

    # ----------------------------------------------------------------- step
    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Advance one bar: stop-loss/take-profit, execute, mark to market, reward."""
        if self._done:
            raise RuntimeError("TradingEnv.step() called after the episode terminated; reset()")
        agent_action = int(action)
        if agent_action not in (0, 1, 2):
            raise ValueError(f"action must be 0 (flat), 1 (long) or 2 (short), got {action!r}")
        p = self.params
        last_pv = self.portfolio_value
        t = self.t = self.t + 1
        price = self.market.close[t]
        terminated = t >= self.n_rows - 1

        sl_hit = tp_hit = False
        if self.position != 0 and self.entry_price > 0:
            entry, sl, tp = self.entry_price, self._sl, self._tp
            if self.position == 1:
                sl_hit = sl is not None and price <= entry * (1 - sl)
                tp_hit = not sl_hit and tp is not None and price >= entry * (1 + tp)
            else:
                sl_hit = sl is not None and price >= entry * (1 + sl)
                tp_hit = not sl_hit and tp is not None and price <= entry * (1 - tp)
        action_taken = FLAT if (sl_hit or tp_hit) else agent_action
        count_before = self.trade_count
        ops = self._execute(action_taken, price, t)

        pv = self.portfolio_value = self.balance + self.shares_held * price
        if pv > self.max_portfolio_value:
            self.max_portfolio_value = pv
        if last_pv == 0:
            reward = 0.0
        else:
            r = (pv - last_pv) / last_pv
            self.returns.append(r)
            risk = r
            if p.use_sharpe_ratio:
                risk = self._push_sharpe(r, p.risk_free_rate)
            drawdown = max(0.0, (self.max_portfolio_value - pv) / self.max_portfolio_value)
            if drawdown > self.max_drawdown:
                self.max_drawdown = drawdown
            trades = self.trade_count - count_before if self._per_trade else self.trade_count
            reward = (
                risk
                - p.trading_frequency_penalty * trades
                - p.drawdown_penalty * drawdown
            )
        self.total_reward += reward
        self.total_steps += 1
        if self.recorder is not None:
            self.recorder.record(
                self.market.dates64[t], agent_action, self.position, reward, pv, price, ops
            )
        if not (p.step_info or terminated):
            return self._observation(), reward, False, False, {}
        last_op = ops[-1] if ops else ("HOLD", 0.0, 0.0)
        info: dict[str, Any] = {
            "balance": self.balance,
            "shares_held": self.shares_held,
            "current_price": price,
            "portfolio_value": pv,
            "current_position": self.position,
            "step": t,
            "date": self.market.dates[t],
            "action_taken": action_taken,
            "original_action": agent_action,
            "sl_triggered": sl_hit,
            "tp_triggered": tp_hit,
            "step_reward": reward,
            "operation_type": last_op[0],
            "shares_transacted": last_op[1],
            "execution_price": last_op[2],
            "operations": ops,
        }
        if terminated:
            self._done = True
            info.update(self.episode_summary())
        return self._observation(), reward, terminated, False, info

    def _push_sharpe(self, r: float, risk_free: float) -> float:
        """Append ``r`` to the rolling window; return the window's Sharpe-like term.

        Mean and population std with ``math.fsum`` (correctly rounded sums): ~5x cheaper
        than numpy on 20-100 values and within 1e-15 of it; an all-equal window still gives
        a std of exactly 0, as the rule needs.
        """
        window = self._sharpe
        window.append(r)
        n = len(window)
        if n < 2:
            return r
        mean = math.fsum(window) / n
        std = math.sqrt(math.fsum([(x - mean) * (x - mean) for x in window]) / n)
        return mean if std == 0 else (mean - risk_free) / std

    def episode_summary(self) -> dict[str, Any]:
        """Summary figures of the episode so far (the terminal info adds these)."""
        trades = self.trades
        wins = sum(1 for tr in trades if tr["pnl"] > 0)
        returns = np.asarray(self.returns)
        sharpe = 0.0
        if len(returns) >= 2:
            std = float(np.std(returns))
            if std > 1e-8:
                sharpe = float(np.mean(returns)) / std
        summary: dict[str, Any] = {
            "initial_portfolio_value": self.params.initial_balance,
            "final_portfolio_value": self.portfolio_value,
            "pnl": self.portfolio_value - self.params.initial_balance,
            "completed_trades": list(trades),
            "win_rate": wins / len(trades) if trades else 0.0,
            "max_drawdown": self.max_drawdown,
            "sharpe_ratio": sharpe,
            "total_reward": self.total_reward,
            "total_steps": self.total_steps,
        }
        if self.recorder is not None:
            summary["episode_log"] = self.recorder.finish()
        return summary


def _register() -> None:
    from rsc_env import register_gymnasium

    register_gymnasium()


_register()
