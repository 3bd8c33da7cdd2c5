"""Settings of a training run as one typed model: defaults, a TOML/YAML file, then flags.

Every field is typed (strict: ``"2"`` is not an int) and range-checked, unknown keys are
refused, and everything is validated before Ray starts or a run row is written. Imports
stay light (pydantic, no pandas/torch/Ray) so that ``--help`` answers at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tomllib
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from rsc_env.params import TEAM_TRAINING_PARAMS, EnvParams

STRICT = ConfigDict(strict=True, extra="forbid", validate_default=True)

ENV_DEFAULTS: dict[str, Any] = {
    **TEAM_TRAINING_PARAMS,
    # The bundled S&P 500 index trades at 1,200-2,900 points: 10% of 10,000 buys 0 units.
    "initial_balance": 100_000.0,
    # Non-terminal steps skip the 16-key info dict (the terminal info, which the database
    # logger reads, is complete either way): ~40% less env-runner CPU.
    "step_info": False,
}


class AgentSettings(BaseModel):
    """The agent's parameters; defaults are the team's training script (gamma 0.90, target
    sync every 50 learning steps)."""

    model_config = STRICT
    learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate (RLlib's lr)")
    gamma: float = Field(0.90, ge=0, le=1, description="discount factor")
    epsilon: float = Field(1.0, ge=0, le=1, description="initial exploration rate")
    epsilon_decay: float = Field(0.995, gt=0, le=1, description="epsilon *= this per action "
                                 "(1.0: constant epsilon)")
    epsilon_min: float = Field(0.01, ge=0, le=1, description="floor of epsilon")
    memory_size: int = Field(2000, ge=1, description="replay memory capacity")
    batch_size: int = Field(32, ge=1, description="replay batch of one learning step")
    target_update_freq: int = Field(50, ge=1, description="learning steps between target syncs")
    updates_per_step: float = Field(1.0, ge=0, description="learning steps per env step")
    epsilon_schedule: Literal["multiplicative", "linear", "per_episode"] = Field(
        "multiplicative", description="multiplicative: epsilon *= epsilon_decay per action "
        "(the team's rule); linear: to epsilon_min over epsilon_fraction of the run's env "
        "steps; per_episode: epsilon *= epsilon_decay per finished episode")
    epsilon_fraction: float = Field(0.1, gt=0, le=1, description="linear schedule: fraction "
                                    "of the run's env steps over which epsilon falls")
    epsilon_total_steps: int | None = Field(None, ge=1, description="linear schedule: the "
                                            "run's total env steps (default: env_steps)")
    double_q: bool = Field(False, description="double-DQN targets")
    td_error_loss_fn: Literal["mse", "huber"] = Field("mse", description="TD loss: mse (the "
                                                      "team's) or huber")

    @model_validator(mode="after")
    def _batch_fits(self) -> AgentSettings:
        if self.batch_size > self.memory_size:
            raise ValueError(f"batch_size ({self.batch_size}) must be <= memory_size "
                             f"({self.memory_size})")
        return self


class _EnvBase(BaseModel):
    model_config = STRICT

    @model_validator(mode="after")
    def _ranges(self) -> _EnvBase:
        EnvParams(**self.model_dump())  # the env's own range checks, naming the parameter
        return self


_HINTS = typing.get_type_hints(EnvParams)
#: The env's parameters, typed from :class:`rsc_env.EnvParams` (one source of truth), with
#: rsc-train's defaults.
EnvSettings = create_model(
    "EnvSettings", __base__=_EnvBase,
    **{f.name: (_HINTS[f.name], ENV_DEFAULTS.get(f.name, f.default))
       for f in dataclasses.fields(EnvParams)})


def _date(value: str | None, name: str) -> None:
    if value is not None:
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{name}={value!r} is not a date (YYYY-MM-DD)") from None


def _absolute_source(value: str) -> str:
    from rsc_env.data import absolute_source  # pandas: not at import (--help stays fast)

    return absolute_source(value)


#: A ``data`` setting: a bundled sample name, or a CSV path made absolute (what every process
#: of a run or a sweep reads, wherever it starts).
DataSource = Annotated[str, AfterValidator(_absolute_source)]


class TrainSettings(BaseModel):
    """Everything a training run needs; ``to_dict`` is what the run's parameters JSON holds."""

    model_config = STRICT
    data: DataSource = Field("sp500", description="OHLCV CSV path or bundled sample (sp500)")
    date_format: str | None = Field(None, description="strftime format of the CSV's dates "
                                    "(e.g. %d/%m/%Y); default: ISO or m/d/YYYY")
    start: str | None = Field("2005-01-01", description="first training date")
    end: str | None = Field("2014-12-31", description="last training date")
    val_start: str | None = Field("2015-01-01", description="first held-out date")
    val_end: str | None = Field("2016-12-31", description="last held-out date")
    episodes: int | None = Field(None, ge=1, description="train for this many episodes")
    env_steps: int | None = Field(100_000, ge=1, description="train for this many env steps")
    num_env_runners: int = Field(2, ge=0, description="remote env runners")
    envs_per_runner: int = Field(8, ge=1, description="environments per env runner")
    rollout_fragment_length: int = Field(64, ge=1, description="steps per env per request")
    seed: int = Field(0, ge=0, description="random seed")
    preset: str = Field("team", description="named defaults (rsc_policy.presets)")
    checkpoint_every: int = Field(10, ge=0, description="training iterations between "
                                  "checkpoints (0: only the final one)")
    env: EnvSettings = Field(default_factory=EnvSettings)  # type: ignore[valid-type]
    agent: AgentSettings = Field(default_factory=AgentSettings)

    @model_validator(mode="after")
    def _consistent(self) -> TrainSettings:
        from rsc_policy.presets import preset

        preset(self.preset)  # a known name
        for name in ("start", "end", "val_start", "val_end"):
            _date(getattr(self, name), name)
        for first, last in (("start", "end"), ("val_start", "val_end")):
            a, b = getattr(self, first), getattr(self, last)
            if a is not None and b is not None and a > b:
                raise ValueError(f"{first} {a} is after {last} {b}")
        if self.episodes is None and self.env_steps is None:
            raise ValueError("give episodes or env_steps")
        agent = self.agent
        if agent.epsilon_schedule == "linear" and agent.epsilon_total_steps is None:
            if self.episodes is not None:
                raise ValueError("agent.epsilon_schedule 'linear' with episodes: set "
                                 "agent.epsilon_total_steps (the run's total env steps)")
            self.agent = agent.model_copy(update={"epsilon_total_steps": self.env_steps})
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON-serialisable)."""
        return self.model_dump()


TOP_LEVEL = set(TrainSettings.model_fields) - {"env", "agent"}
ENV_KEYS = set(EnvSettings.model_fields)
AGENT_KEYS = set(AgentSettings.model_fields)
AGENT_DEFAULTS: dict[str, Any] = AgentSettings().model_dump()


class SettingsError(ValueError):
    """A settings mistake: the message names the source, the key and the problem."""


def default(name: str) -> Any:
    """The default of a setting (top-level, ``env`` or ``agent``), for ``--help``."""
    if name in TOP_LEVEL:
        return TrainSettings.model_fields[name].default
    if name in AGENT_KEYS:
        return AGENT_DEFAULTS[name]
    return EnvSettings.model_fields[name].default


def load_settings(path: Path | None, overrides: dict[str, Any]) -> TrainSettings:
    """Defaults, then the config file (TOML or YAML), then the non-None ``overrides``.

    The file may hold top-level settings and ``[env]`` / ``[agent]`` tables; env and agent
    parameters may also stand at the top level. Raises :class:`SettingsError` naming the
    file (or "command line"), the key and the problem.
    """
    merged: dict[str, Any] = {"env": {}, "agent": {}}
    origin: dict[str, str] = {}  # setting -> where its value came from
    values = read_settings_file(path) if path is not None else {}
    _apply_preset(merged, overrides.get("preset") or values.get("preset"), origin)
    if path is not None:
        _route(merged, values, f"config file {path}", origin)
    _route(merged, {k: v for k, v in overrides.items() if v is not None}, "command line",
           origin)
    try:
        return TrainSettings(**merged)
    except ValidationError as exc:
        fallback = f"config file {path}" if path is not None else "settings"
        raise SettingsError(_describe(exc, origin, fallback)) from None


FLAGS = {"learning_rate": "--lr"}


def _apply_preset(merged: dict[str, Any], name: Any, origin: dict[str, str]) -> None:
    """A preset's values first (rsc_policy.presets): the file and the flags override them."""
    from rsc_policy.presets import DEFAULT_PRESET, preset

    name = DEFAULT_PRESET if name is None else name
    try:
        chosen = preset(name) if isinstance(name, str) else preset(repr(name))
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    _route(merged, {"env": dict(chosen.env), "agent": dict(chosen.agent)}, f"preset {name}",
           origin)


def _describe(exc: ValidationError, origin: dict[str, str], fallback: str) -> str:
    parts = []
    for err in exc.errors():
        key = str(err["loc"][-1]) if err["loc"] else ""
        msg = err["msg"].removeprefix("Value error, ")
        source = origin.get(key, fallback)
        if source == "command line":
            where = FLAGS.get(key, "--" + key.replace("_", "-"))
        else:
            where = ".".join(str(p) for p in err["loc"])
            where = f"{source}: {where}" if where else source
        got = f" (got {err['input']!r})" if key and "input" in err and not isinstance(
            err["input"], dict) else ""
        parts.append(f"{where}: {msg}{got}" if key else f"{where}: {msg}")
    return "; ".join(parts)


def read_settings_file(path: Path) -> dict[str, Any]:
    """The raw tables of a TOML or YAML settings file (rsc-train settings, rsc-tune spaces);
    :class:`SettingsError` naming the file for anything unreadable."""
    if path.is_dir():
        raise SettingsError(f"config file {path} is a directory")
    if not path.is_file():
        raise SettingsError(f"config file {path} does not exist")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError(f"config file {path} is not a text file (not UTF-8: byte "
                            f"{exc.object[exc.start]:#04x} at offset {exc.start})") from None
    except OSError as exc:
        raise SettingsError(f"config file {path} cannot be read: {exc.strerror}") from None
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            loaded = yaml.safe_load(text) or {}
            if not isinstance(loaded, dict):
                raise SettingsError(f"config file {path}: the top level must be a mapping")
            return loaded
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path}: {exc}") from None
    except Exception as exc:
        if type(exc).__module__.startswith("yaml"):
            raise SettingsError(f"config file {path}: {exc}") from None
        raise
    raise SettingsError(f"config file {path}: use .toml, .yaml or .yml")


#: Other names of settings (RLlib's, also accepted by --lr and space files).
ALIASES = {"lr": "learning_rate"}


def _unalias(values: dict[str, Any], source: str) -> dict[str, Any]:
    out = dict(values)
    for alias, name in ALIASES.items():
        if alias in out:
            value = out.pop(alias)
            if name in out and out[name] != value:
                raise SettingsError(f"{source}: {alias} = {value!r} and {name} = "
                                    f"{out[name]!r} name the same setting; give one")
            out[name] = value
    return out


def _route(merged: dict[str, Any], values: dict[str, Any], source: str,
           origin: dict[str, str]) -> None:
    for key, value in _unalias(values, source).items():
        if key in ("env", "agent") and isinstance(value, dict):
            if key == "agent":
                value = _unalias(value, f"{source} [agent]")
            for sub, v in value.items():
                table = ENV_KEYS if key == "env" else AGENT_KEYS
                if sub not in table:
                    raise SettingsError(f"{source} [{key}]: unknown setting {sub!r}; valid: "
                                        f"{sorted(table)}")
                merged[key][sub] = v
                origin[sub] = source
            continue
        if key in TOP_LEVEL:
            merged[key] = value
        elif key in ENV_KEYS:
            merged["env"][key] = value
        elif key in AGENT_KEYS:
            merged["agent"][key] = value
        else:
            valid = sorted(TOP_LEVEL | ENV_KEYS | AGENT_KEYS)
            raise SettingsError(f"{source}: unknown setting {key!r}; valid settings: {valid}")
        origin[key] = source
