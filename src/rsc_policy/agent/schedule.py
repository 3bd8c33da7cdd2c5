"""Epsilon schedules: epsilon as a function of the global action count.

``"multiplicative"`` (:class:`EpsilonSchedule`, the spec and the default) is the repeated
multiplication after every action selection; ``"linear"`` (:class:`LinearSchedule`) and
``"per_episode"`` (:class:`EpisodeSchedule`) are options. :func:`build_schedule` makes any of
them from the agent's parameters.
"""

from __future__ import annotations

import bisect

SCHEDULES = ("multiplicative", "linear", "per_episode")


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


class LinearSchedule:
    """Linear from ``epsilon`` at selection 0 to ``eps_min`` at selection ``horizon``, then
    constant: ``epsilon(k) = epsilon + (eps_min - epsilon) * k / horizon`` for
    ``k < horizon``, else ``eps_min`` (``horizon`` 0: ``eps_min`` from the start)."""

    def __init__(self, epsilon: float, eps_min: float, horizon: int) -> None:
        if horizon < 0:
            raise ValueError(f"linear epsilon horizon must be >= 0, got {horizon}")
        self.epsilon, self.eps_min, self.horizon = float(epsilon), float(eps_min), int(horizon)
        self.final = self.eps_min

    def __call__(self, k: int) -> float:
        if k >= self.horizon:
            return self.eps_min
        return self.epsilon + (self.eps_min - self.epsilon) * (k / self.horizon)


class EpisodeSchedule:
    """Per-episode decay: epsilon is multiplied by ``decay`` once per finished episode (while
    ``epsilon > eps_min``), so after ``e`` episodes it is :class:`EpsilonSchedule`'s ``e``-th
    value.

    The episodes finished before selection ``k`` are either counted (the sequential trainer
    calls :meth:`episode_finished` at each episode end) or, with ``episode_length`` (episodes
    of a fixed length, as every :class:`rsc_env.TradingEnv` episode walks all bars),
    ``k // episode_length`` -- a pure function of the global step count, which is what the
    RLlib runners have.
    """

    def __init__(self, epsilon: float = 1.0, decay: float = 0.995, eps_min: float = 0.01,
                 episode_length: int | None = None) -> None:
        self.table = EpsilonSchedule(epsilon, decay, eps_min)
        self.final = self.table.final
        self.episode_length = episode_length
        self.ends: list[int] = []  # selections made when each counted episode finished

    def episode_finished(self, steps: int) -> None:
        """Count an episode that finished after ``steps`` action selections in all."""
        self.ends.append(int(steps))

    def episodes_before(self, k: int) -> int:
        """Episodes finished before selection ``k``."""
        if self.episode_length is not None:
            return int(k) // self.episode_length
        return bisect.bisect_right(self.ends, int(k))

    def __call__(self, k: int) -> float:
        return self.table(self.episodes_before(k))


Schedule = EpsilonSchedule | LinearSchedule | EpisodeSchedule


def linear_horizon(fraction: float, total_steps: int) -> int:
    """Selections over which the linear schedule falls: ``round(fraction * total_steps)``."""
    return int(round(float(fraction) * int(total_steps)))


def check_schedule(kind: str, fraction: float, total_steps: int | None) -> None:
    """Raise ``ValueError`` (naming the setting) for a bad schedule configuration."""
    if kind not in SCHEDULES:
        raise ValueError(f"epsilon_schedule must be one of {list(SCHEDULES)}, got {kind!r}")
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not (
            0 < fraction <= 1):
        raise ValueError(f"epsilon_fraction must be a number in (0, 1], got {fraction!r}")
    if total_steps is not None and (isinstance(total_steps, bool) or not isinstance(
            total_steps, int) or total_steps < 1):
        raise ValueError(f"epsilon_total_steps must be None or an int >= 1, got "
                         f"{total_steps!r}")
    if kind == "linear" and total_steps is None:
        raise ValueError("epsilon_schedule='linear' needs epsilon_total_steps (the run's total "
                         "env steps; epsilon reaches epsilon_min after epsilon_fraction of it)")


def build_schedule(kind: str = "multiplicative", epsilon: float = 1.0, decay: float = 0.995,
                   eps_min: float = 0.01, *, fraction: float = 0.1,
                   total_steps: int | None = None,
                   episode_length: int | None = None) -> Schedule:
    """The schedule ``kind`` (one of :data:`SCHEDULES`) from the agent's parameters."""
    check_schedule(kind, fraction, total_steps)
    if kind == "linear":
        assert total_steps is not None
        return LinearSchedule(epsilon, eps_min, linear_horizon(fraction, total_steps))
    if kind == "per_episode":
        return EpisodeSchedule(epsilon, decay, eps_min, episode_length)
    return EpsilonSchedule(epsilon, decay, eps_min)
