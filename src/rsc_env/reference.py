"""``ReferenceTradingEnv``: the slow, literal, executable specification of the environment.

Written rule by rule from ``spec/trading-env.md`` the way the team's environment worked: the
rolling normalisation statistics are recomputed from the whole history at every step, so a
step costs O(t). It is the oracle that :class:`rsc_env.TradingEnv` is tested against and the
"expensive environment" of the benchmarks. Do not optimise it.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np

from rsc_env.episode_log import EpisodeRecorder
from rsc_env.params import parse_env_config


class ReferenceTradingEnv(gym.Env):
    """The literal specification; same constructor and spaces as :class:`rsc_env.TradingEnv`."""

    metadata = {"render_modes": []}

    def __init__(self, env_config: dict[str, Any] | None = None, **overrides: Any) -> None:
        self.df, self.params = parse_env_config(env_config, overrides)
        self.features = self.df.astype(np.float64)
        n_features = self.features.shape[1]
        dim = self.params.window_size * n_features + (4 if self.params.observe_position else 2)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32)
        self.action_space = gym.spaces.Discrete(3)
        self.recorder = EpisodeRecorder() if self.params.record_episode else None
        self.current_step = 0
        self.terminated = True

    @property
    def episode_length(self) -> int:
        """Steps of every episode: all bars after the first."""
        return len(self.df) - 1

    def fee(self, value: float) -> float:
        return value * self.params.transaction_fee_percent / 100

    # ------------------------------------------------------------------ reset
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        p = self.params
        self.balance = p.initial_balance
        self.shares_held = 0
        self.current_position = 0
        self.entry_price = 0.0
        self.entry_step = 0
        self.trade_count = 0
        self.portfolio_value = p.initial_balance
        self.max_portfolio_value = p.initial_balance
        self.sharpe_window: deque[float] = deque(maxlen=p.sharpe_window_size)
        self.episode_returns: list[float] = []
        self.completed_trades: list[dict[str, Any]] = []
        self.episode_max_drawdown = 0.0
        self.total_reward = 0.0
        self.total_steps = 0
        self.current_step = 0
        self.terminated = False
        if self.recorder is not None:
            self.recorder.clear()
        info = {
            "balance": self.balance,
            "shares_held": self.shares_held,
            "portfolio_value": self.portfolio_value,
            "starting_step": self.current_step,
            "current_price": float(self.df["close"].iloc[self.current_step]),
        }
        return self.get_observation(), info

    # ------------------------------------------------------------ observation
    def get_observation(self) -> np.ndarray:
        t = self.current_step
        p = self.params
        history = self.features.iloc[: t + 1]
        rolling = history.rolling(p.normalization_window_size, min_periods=1)
        mean = rolling.mean().iloc[-1].fillna(0.0).to_numpy()
        std = rolling.std().iloc[-1].fillna(1e-8).to_numpy() + 1e-8
        rows = []
        for j in range(max(0, t - p.window_size + 1), t + 1):
            rows.append(np.nan_to_num((history.iloc[j].to_numpy() - mean) / std))
        if len(rows) < p.window_size:
            first = self.features.iloc[:1]
            stats = first.rolling(p.normalization_window_size, min_periods=1)
            mean0 = stats.mean().iloc[-1].fillna(0.0).to_numpy()
            std0 = stats.std().iloc[-1].fillna(1e-8).to_numpy() + 1e-8
            pad = np.nan_to_num((first.iloc[0].to_numpy() - mean0) / std0)
            rows = [pad] * (p.window_size - len(rows)) + rows
        price = float(self.df["close"].iloc[t])
        portfolio = [self.balance / p.initial_balance, self.shares_held * price / p.initial_balance]
        if p.observe_position:  # option: position and unrealised PnL (fees excluded)
            if self.current_position == 1:
                unrealised = (price - self.entry_price) * self.shares_held
            elif self.current_position == -1:
                unrealised = (self.entry_price - price) * abs(self.shares_held)
            else:
                unrealised = 0.0
            portfolio += [float(self.current_position), unrealised / p.initial_balance]
        return np.concatenate([np.concatenate(rows), portfolio]).astype(np.float32)

    # ------------------------------------------------------------------- step
    def step(self, action):
        if self.terminated:
            raise RuntimeError("ReferenceTradingEnv.step() after the episode ended; reset()")
        if int(action) not in (0, 1, 2):
            raise ValueError(f"action must be 0, 1 or 2, got {action!r}")
        p = self.params
        # 1. advance
        last_portfolio_value = self.portfolio_value
        self.current_step += 1
        t = self.current_step
        price = float(self.df["close"].iloc[t])
        terminated = t >= len(self.df) - 1
        original_action = int(action)
        action = original_action
        # 2. stop-loss / take-profit
        sl_triggered = tp_triggered = False
        if self.current_position != 0 and self.entry_price > 0:
            if self.current_position == 1:
                if p.stop_loss_pct is not None and price <= self.entry_price * (
                    1 - p.stop_loss_pct / 100
                ):
                    sl_triggered = True
                elif p.take_profit_pct is not None and price >= self.entry_price * (
                    1 + p.take_profit_pct / 100
                ):
                    tp_triggered = True
            else:
                if p.stop_loss_pct is not None and price >= self.entry_price * (
                    1 + p.stop_loss_pct / 100
                ):
                    sl_triggered = True
                elif p.take_profit_pct is not None and price <= self.entry_price * (
                    1 - p.take_profit_pct / 100
                ):
                    tp_triggered = True
            if sl_triggered or tp_triggered:
                action = 0
        # 3. execute
        self.trade_count_before_step = self.trade_count
        operations = self.execute(action, price, t)
        # 4. mark to market
        self.portfolio_value = self.balance + self.shares_held * price
        # 5. reward
        reward = self.compute_reward(last_portfolio_value)
        self.total_reward += reward
        self.total_steps += 1
        if self.recorder is not None:
            self.recorder.record(
                np.datetime64(self.df.index[t], "ns"),
                original_action,
                self.current_position,
                reward,
                self.portfolio_value,
                price,
                operations,
            )
        op_type, size, op_price = operations[-1] if operations else ("HOLD", 0.0, 0.0)
        info = {
            "balance": self.balance,
            "shares_held": self.shares_held,
            "current_price": price,
            "portfolio_value": self.portfolio_value,
            "current_position": self.current_position,
            "step": t,
            "date": self.df.index[t],
            "action_taken": action,
            "original_action": original_action,
            "sl_triggered": sl_triggered,
            "tp_triggered": tp_triggered,
            "step_reward": reward,
            "operation_type": op_type,
            "shares_transacted": size,
            "execution_price": op_price,
            "operations": operations,
        }
        if terminated:
            self.terminated = True
            info.update(self.summary())
        return self.get_observation(), reward, terminated, False, info

    def position_size(self, price: float) -> int:
        p = self.params
        if p.position_sizing_method == "all_in":
            return int(self.balance / (price * (1 + p.transaction_fee_percent / 100)))
        return int(self.balance * p.risk_fraction / price)

    def execute(self, action: int, price: float, t: int) -> list[tuple[str, float, float]]:
        p = self.params
        ops: list[tuple[str, float, float]] = []
        if action == 1:
            if self.current_position == 1:
                return ops
            if self.current_position == -1:
                if not self.cover_short(price, t, ops, count_trade=False):
                    return ops
            shares = self.position_size(price)
            shares = min(
                shares, int(self.balance / (price * (1 + p.transaction_fee_percent / 100)))
            )
            if shares > 0:
                cost = shares * price
                self.balance -= cost + self.fee(cost)
                self.shares_held += shares
                self.current_position = 1
                self.entry_price = price
                self.entry_step = t
                self.trade_count += 1
                ops.append(("ENTRY_LONG", float(shares), price))
        elif action == 2:
            if self.current_position == -1:
                return ops
            if self.current_position == 1:
                self.sell_long(price, t, ops, count_trade=False)
            shares = self.position_size(price)
            if shares > 0 and self.balance > 0:
                proceeds = shares * price
                self.balance += proceeds - self.fee(proceeds)
                self.shares_held = -shares
                self.current_position = -1
                self.entry_price = price
                self.entry_step = t
                self.trade_count += 1
                ops.append(("ENTRY_SHORT", float(-shares), price))
        else:
            if self.current_position == 1:
                self.sell_long(price, t, ops, count_trade=True)
            elif self.current_position == -1:
                self.cover_short(price, t, ops, count_trade=True)
        return ops

    def record_trade(self, t: int, price: float, qty: int, direction: str, pnl: float, fee: float):
        self.completed_trades.append(
            {
                "entry_step": self.entry_step,
                "exit_step": t,
                "entry_time": self.df.index[self.entry_step],
                "exit_time": self.df.index[t],
                "entry_price": self.entry_price,
                "exit_price": price,
                "quantity": qty,
                "direction": direction,
                "pnl": pnl,
                "costs": fee,
            }
        )

    def sell_long(self, price: float, t: int, ops: list, count_trade: bool) -> None:
        qty = self.shares_held
        value = qty * price
        fee = self.fee(value)
        self.balance += value - fee
        self.record_trade(t, price, qty, "long", (price - self.entry_price) * qty - fee, fee)
        ops.append(("EXIT_LONG", float(-qty), price))
        self.shares_held = 0
        self.current_position = 0
        self.entry_price = 0.0
        if count_trade:
            self.trade_count += 1

    def cover_short(self, price: float, t: int, ops: list, count_trade: bool) -> bool:
        qty = abs(self.shares_held)
        fee = self.fee(qty * price)
        cost = qty * price + fee
        if self.balance < cost:
            return False
        self.balance -= cost
        self.record_trade(t, price, qty, "short", (self.entry_price - price) * qty - fee, fee)
        ops.append(("EXIT_SHORT", float(qty), price))
        self.shares_held = 0
        self.current_position = 0
        self.entry_price = 0.0
        if count_trade:
            self.trade_count += 1
        return True

    def compute_reward(self, last_portfolio_value: float) -> float:
        p = self.params
        self.max_portfolio_value = max(self.max_portfolio_value, self.portfolio_value)
        if last_portfolio_value == 0:
            return 0.0
        r = (self.portfolio_value - last_portfolio_value) / last_portfolio_value
        self.sharpe_window.append(r)
        self.episode_returns.append(r)
        if p.use_sharpe_ratio and len(self.sharpe_window) >= 2:
            window = np.array(self.sharpe_window)
            std = np.std(window)
            if std == 0:
                risk_adjusted = float(np.mean(window))
            else:
                risk_adjusted = float((np.mean(window) - p.risk_free_rate) / std)
        else:
            risk_adjusted = r
        if p.trade_penalty_mode == "per_trade":  # option: only the trades of this step
            trading_penalty = p.trading_frequency_penalty * (
                self.trade_count - self.trade_count_before_step
            )
        else:
            trading_penalty = p.trading_frequency_penalty * self.trade_count
        drawdown = max(
            0.0, (self.max_portfolio_value - self.portfolio_value) / self.max_portfolio_value
        )
        self.episode_max_drawdown = max(self.episode_max_drawdown, drawdown)
        return risk_adjusted - trading_penalty - p.drawdown_penalty * drawdown

    def summary(self) -> dict[str, Any]:
        p = self.params
        trades = self.completed_trades
        returns = np.array(self.episode_returns)
        sharpe = 0.0
        if len(returns) >= 2 and np.std(returns) > 1e-8:
            sharpe = float(np.mean(returns) / np.std(returns))
        out = {
            "initial_portfolio_value": p.initial_balance,
            "final_portfolio_value": self.portfolio_value,
            "pnl": self.portfolio_value - p.initial_balance,
            "completed_trades": list(trades),
            "win_rate": (sum(tr["pnl"] > 0 for tr in trades) / len(trades)) if trades else 0.0,
            "max_drawdown": self.episode_max_drawdown,
            "sharpe_ratio": sharpe,
            "total_reward": self.total_reward,
            "total_steps": self.total_steps,
        }
        if self.recorder is not None:
            out["episode_log"] = self.recorder.finish()
        return out
