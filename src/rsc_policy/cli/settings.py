"""Settings of a training run: defaults, a TOML/YAML config file, and command-line overrides."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from rsc_env import TEAM_TRAINING_PARAMS, EnvParams

AGENT_DEFAULTS: dict[str, Any] = {
    # The team's training script (spec/strategy-agent.md): gamma 0.90, target sync every 50.
    "learning_rate": 1e-3,
    "gamma": 0.90,
    "epsilon": 1.0,
    "epsilon_decay": 0.995,
    "epsilon_min": 0.01,
    "memory_size": 2000,
    "batch_size": 32,
    "target_update_freq": 50,
    "updates_per_step": 1.0,
}

ENV_DEFAULTS: dict[str, Any] = {
    **TEAM_TRAINING_PARAMS,
    # The bundled S&P 500 index trades at 1,200-2,900 points: 10% of 10,000 buys 0 units.
    "initial_balance": 100_000.0,
    # Non-terminal steps skip the 16-key info dict (the terminal info, which the database
    # logger reads, is complete either way): ~40% less env-runner CPU.
    "step_info": False,
}


@dataclass
class TrainSettings:
    """Everything a training run needs; ``to_dict`` is what the run's parameters JSON holds."""

    data: str = "sp500"
    start: str | None = "2005-01-01"
    end: str | None = "2014-12-31"
    val_start: str | None = "2015-01-01"
    val_end: str | None = "2016-12-31"
    episodes: int | None = None
    env_steps: int | None = 100_000
    num_env_runners: int = 2
    envs_per_runner: int = 8
    rollout_fragment_length: int = 64
    seed: int = 0
    env: dict[str, Any] = field(default_factory=lambda: dict(ENV_DEFAULTS))
    agent: dict[str, Any] = field(default_factory=lambda: dict(AGENT_DEFAULTS))

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON-serialisable)."""
        return asdict(self)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        EnvParams(**self.env)  # validates every env parameter by name
        unknown = sorted(set(self.agent) - set(AGENT_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown agent setting(s) {unknown}; valid: {sorted(AGENT_DEFAULTS)}")
        if self.episodes is None and self.env_steps is None:
            raise ValueError("give --episodes or --env-steps")
        for name in ("episodes", "env_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name}={value}: must be >= 1")
        if self.num_env_runners < 0 or self.envs_per_runner < 1:
            raise ValueError("num_env_runners must be >= 0 and envs_per_runner >= 1")


_TOP_LEVEL = {f.name for f in fields(TrainSettings)} - {"env", "agent"}


def load_settings(path: Path | None, overrides: dict[str, Any]) -> TrainSettings:
    """Defaults, then the config file (TOML or YAML), then the non-None ``overrides``.

    The file may hold top-level settings and ``[env]`` / ``[agent]`` tables; env and agent
    parameters may also stand at the top level. Unknown keys are an error that names them.
    """
    settings = TrainSettings()
    if path is not None:
        _apply(settings, _read(path), str(path))
    _apply(settings, {k: v for k, v in overrides.items() if v is not None}, "command line")
    settings.validate()
    return settings


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix in (".yaml", ".yml"):
            loaded = yaml.safe_load(text) or {}
            if not isinstance(loaded, dict):
                raise ValueError("top level must be a mapping")
            return loaded
    except (tomllib.TOMLDecodeError, yaml.YAMLError, ValueError) as exc:
        raise ValueError(f"config file {path}: {exc}") from None
    raise ValueError(f"config file {path}: use .toml, .yaml or .yml")


def _apply(settings: TrainSettings, values: dict[str, Any], source: str) -> None:
    env_names = {f.name for f in fields(EnvParams)}
    for key, value in values.items():
        if key in ("env", "agent") and isinstance(value, dict):
            _apply(settings, value, f"{source} [{key}]")
        elif key in _TOP_LEVEL:
            setattr(settings, key, value)
        elif key in env_names:
            settings.env[key] = value
        elif key in AGENT_DEFAULTS:
            settings.agent[key] = value
        else:
            valid = sorted(_TOP_LEVEL | env_names | set(AGENT_DEFAULTS))
            raise ValueError(f"{source}: unknown setting {key!r}; valid settings: {valid}")
