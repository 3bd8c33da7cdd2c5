"""The agent's parameters and their defaults: the one place the team's rule is written down."""

from __future__ import annotations

from dataclasses import dataclass

from rsc_policy.agent.schedule import check_schedule


def check_loss_options(double_q: object, td_error_loss_fn: object) -> None:
    """Raise ``ValueError`` (naming the setting) for a bad ``double_q`` / loss choice."""
    if not isinstance(double_q, bool):
        raise ValueError(f"double_q must be a bool, got {double_q!r}")
    if td_error_loss_fn not in ("mse", "huber"):
        raise ValueError(f"td_error_loss_fn must be 'mse' or 'huber', got {td_error_loss_fn!r}")


@dataclass(frozen=True)
class AgentParams:
    """The agent's hyper-parameters (defaults are the spec's).

    Options beyond the spec (defaults keep it): ``epsilon_schedule`` -- ``"multiplicative"``
    (epsilon *= epsilon_decay after every action), ``"linear"`` (epsilon to epsilon_min over
    ``epsilon_fraction`` of ``epsilon_total_steps`` selections, then constant) or
    ``"per_episode"`` (epsilon *= epsilon_decay once per finished episode); ``double_q``
    (double-DQN targets); ``td_error_loss_fn`` (``"mse"``, the spec, or ``"huber"``).
    """

    learning_rate: float = 1e-3
    gamma: float = 0.95
    epsilon: float = 1.0
    epsilon_decay: float = 0.995
    epsilon_min: float = 0.01
    memory_size: int = 2000
    batch_size: int = 32
    target_update_freq: int = 100
    epsilon_schedule: str = "multiplicative"
    epsilon_fraction: float = 0.1
    epsilon_total_steps: int | None = None
    double_q: bool = False
    td_error_loss_fn: str = "mse"

    def __post_init__(self) -> None:
        check_schedule(self.epsilon_schedule, self.epsilon_fraction, self.epsilon_total_steps)
        check_loss_options(self.double_q, self.td_error_loss_fn)


#: The spec's defaults (``AgentParams()``); every trainer and config starts from these.
DEFAULTS = AgentParams()
#: The learning options beyond the spec and their defaults (the spec's rule).
LEARNING_OPTIONS = ("epsilon_schedule", "epsilon_fraction", "epsilon_total_steps", "double_q",
                    "td_error_loss_fn")
