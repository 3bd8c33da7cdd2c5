"""Per-step record of one episode, handed out in the terminal ``info["episode_log"]``.

The database logger turns it into step and operation rows; it lets a remote env runner ship
a whole finished episode to one writer, whatever fragments RLlib cut the episode into.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Operation = tuple[int, str, float, float]
"""(step index within the episode, operation type, signed size, price)."""


class EpisodeRecorder:
    """Appends one entry per step; :meth:`finish` returns the arrays."""

    __slots__ = ("_date", "_action", "_position", "_reward", "_pv", "_price", "_ops")

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget the current episode."""
        self._date: list[np.datetime64] = []
        self._action: list[int] = []
        self._position: list[int] = []
        self._reward: list[float] = []
        self._pv: list[float] = []
        self._price: list[float] = []
        self._ops: list[Operation] = []

    def record(
        self,
        date: np.datetime64,
        action: int,
        position: int,
        reward: float,
        portfolio_value: float,
        price: float,
        operations: list[tuple[str, float, float]],
    ) -> None:
        """Record one step: the agent's action, the position after it, and its operations."""
        index = len(self._action)
        self._date.append(date)
        self._action.append(action)
        self._position.append(position)
        self._reward.append(reward)
        self._pv.append(portfolio_value)
        self._price.append(price)
        for op_type, size, op_price in operations:
            self._ops.append((index, op_type, size, op_price))

    def finish(self) -> dict[str, Any]:
        """The episode's log as arrays (``date`` is datetime64[ns])."""
        return {
            "date": np.array(self._date, dtype="datetime64[ns]"),
            "action": np.array(self._action, dtype=np.int8),
            "position": np.array(self._position, dtype=np.int8),
            "reward": np.array(self._reward, dtype=np.float64),
            "portfolio_value": np.array(self._pv, dtype=np.float64),
            "price": np.array(self._price, dtype=np.float64),
            "operations": list(self._ops),
        }
