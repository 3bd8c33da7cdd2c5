"""Epsilon as a function of the global action count (the spec's repeated multiplication)."""

from __future__ import annotations


class EpsilonSchedule:
    """``epsilon(k)``: epsilon in force at the ``k``-th action selection (0-based).

    The spec multiplies epsilon by ``decay`` after every selection while
    ``epsilon > eps_min``; the values are precomputed by exactly that repeated
    multiplication (in float64, as Python floats), so any process computing ``epsilon(k)``
    gets the same bits as a loop that multiplies as it goes.
    """

    def __init__(self, epsilon: float = 1.0, decay: float = 0.995, eps_min: float = 0.01,
                 max_len: int = 10_000_000) -> None:
        values = [float(epsilon)]
        eps = float(epsilon)
        # decay >= 1 never brings epsilon down: a constant, no table.
        while eps > eps_min and decay < 1 and len(values) < max_len:
            eps *= decay
            values.append(eps)
        self.values: tuple[float, ...] = tuple(values)
        self.final = values[-1]

    def __call__(self, k: int) -> float:
        return self.values[k] if k < len(self.values) else self.final

    def __len__(self) -> int:
        return len(self.values)
