"""Search-space files of ``rsc-tune`` (TOML or YAML), validated before Ray starts.

A file holds an optional ``[sweep]`` table (samples, seeds, episodes, fold sizes, metric,
data) and ``[agent]`` / ``[env]`` tables (or parameters at the top level) in which every
parameter is one of::

    learning_rate = {low = 1e-4, high = 3e-3, log = true}   # float range (log-uniform)
    target_update_freq = {low = 10, high = 200}             # int range (integer parameter)
    window_size = {choices = [5, 10]}                       # choices
    memory_size = 5000                                      # fixed for every trial

Names are those of :class:`rsc_policy.settings.AgentSettings` (``lr`` is accepted for
``learning_rate``) and :class:`rsc_env.EnvParams`; every bound, choice and fixed value is
checked by the same models as ``rsc-train``'s settings. Any mistake raises
:class:`rsc_cli.errors.UserError` naming the file and the key. No Ray, no pandas here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rsc_cli.errors import UserError
from rsc_policy.settings import (
    AgentSettings,
    DataSource,
    EnvSettings,
    SettingsError,
    read_settings_file,
)

EXAMPLE_SPACE = Path(__file__).with_name("example_space.toml")
#: Figures a sweep can rank by, and whether higher is better.
METRICS: dict[str, Literal["max", "min"]] = {
    "sharpe": "max", "sortino": "max", "calmar": "max", "cagr": "max", "total_return": "max",
    "pnl": "max", "max_drawdown": "min", "volatility": "min"}  # fmt: skip
ALIASES = {"lr": "learning_rate"}
_NOT_TUNED = {"record_episode", "step_info"}  # the scoring needs the episode log


def _agent_names() -> set[str]:
    # the sequential trainer runs one learning step per env step: updates_per_step is fixed
    return set(AgentSettings.model_fields) - {"updates_per_step"}


def _env_names() -> set[str]:
    return set(EnvSettings.model_fields) - _NOT_TUNED


class SweepOptions(BaseModel):
    """The ``[sweep]`` table: what each trial does (command-line options override it)."""

    model_config = ConfigDict(strict=True, extra="forbid")
    data: DataSource = Field("sp500", description="OHLCV CSV path or bundled sample")
    date_format: str | None = None
    samples: int = Field(8, ge=1, description="configurations tried")
    seeds: int = Field(2, ge=1, description="seeds per fold (0..seeds-1)")
    episodes: int = Field(5, ge=1, description="training episodes per fold and seed")
    metric: str = Field("sharpe", description="validation figure the sweep maximises")
    train_years: float = Field(3.0, gt=0)
    validation_years: float = Field(1.0, gt=0)
    step_years: float = Field(3.0, gt=0)
    test_years: float = Field(2.0, gt=0)
    env_copies: int = Field(1, ge=1, description="env copies per member in a trial's "
                            "population (1: each member walks whole episodes, as alone)")
    configs_per_trial: int = Field(1, ge=1, description="configurations trained in one "
                                   "population per trial (FIFO and random search only)")
    planted: list[str] = Field(default_factory=list, description="planted series (rsc-check "
                               "learnability) each trial that runs all its episodes is also "
                               "scored on, seed 0; empty: off")
    planted_env_steps: int = Field(20_000, ge=1_000, description="env steps of each planted "
                                   "training")

    @model_validator(mode="after")
    def _metric(self) -> SweepOptions:
        if self.metric not in METRICS:
            raise ValueError(f"metric {self.metric!r} is not one of {sorted(METRICS)}")
        from rsc_env.planted import GENERATORS

        unknown = [n for n in self.planted if n not in GENERATORS]
        if unknown:
            raise ValueError(f"planted: unknown series {unknown}; known: {sorted(GENERATORS)}")
        return self


class _Range(BaseModel):
    model_config = ConfigDict(extra="forbid")
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _order(self) -> _Range:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low:g}) must be < high ({self.high:g})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0 (got {self.low:g})")
        return self


class _Choices(BaseModel):
    model_config = ConfigDict(extra="forbid")
    choices: list[Any] = Field(min_length=1)


@dataclasses.dataclass(frozen=True)
class Param:
    """One searched (or fixed) parameter."""

    name: str
    group: Literal["agent", "env"]
    kind: Literal["float", "int", "choice", "fixed"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    value: Any = None

    def to_tune(self) -> Any:
        """The Ray Tune domain (or the constant) of this parameter."""
        from ray import tune

        if self.kind == "float":
            return (tune.loguniform if self.log else tune.uniform)(self.low, self.high)
        if self.kind == "int":  # randint's upper bound is exclusive
            return (tune.lograndint if self.log else tune.randint)(int(self.low),
                                                                   int(self.high) + 1)
        if self.kind == "choice":
            return tune.choice(list(self.choices))
        return self.value

    def to_json(self) -> dict[str, Any]:
        """Plain-dict form (the sweep's ``space`` JSON)."""
        d = dataclasses.asdict(self)
        d["choices"] = list(self.choices)
        return {k: v for k, v in d.items() if v not in (None, (), []) or k == "value"
                and self.kind == "fixed"}


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """A validated search space: the parameters and the ``[sweep]`` options."""

    source: str
    params: dict[str, Param]
    options: SweepOptions

    @property
    def searched(self) -> list[str]:
        """Names of the parameters that vary between trials."""
        return [n for n, p in self.params.items() if p.kind != "fixed"]

    def param_space(self) -> dict[str, Any]:
        """Tune's ``param_space``: flat ``{name: domain or constant}``."""
        return {name: p.to_tune() for name, p in self.params.items()}

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "params": {n: p.to_json() for n, p in
                                                  self.params.items()}}


def _check(where: str, group: str, name: str, value: Any) -> Any:
    """``value`` checked by the settings model of ``group``; returns the checked value."""
    model = AgentSettings if group == "agent" else EnvSettings
    extra = {"memory_size": max(2000, value)} if name == "batch_size" and isinstance(
        value, int) and not isinstance(value, bool) else {}
    try:
        return getattr(model(**{**extra, name: value}), name)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UserError(f"{where}: {err['msg'].removeprefix('Value error, ')} "
                        f"(got {value!r})") from None


def _param(where: str, group: Literal["agent", "env"], name: str, spec: Any) -> Param:
    model = AgentSettings if group == "agent" else EnvSettings
    annotation = model.model_fields[name].annotation
    if isinstance(spec, dict) and "choices" in spec:
        try:
            choices = _Choices(**spec).choices
        except ValidationError as exc:
            raise UserError(f"{where}: {describe_error(exc)}") from None
        checked = tuple(_check(where, group, name, c) for c in choices)
        return Param(name, group, "choice", choices=checked)
    if isinstance(spec, dict):
        try:
            rng = _Range(**spec)
        except ValidationError as exc:
            raise UserError(f"{where}: {describe_error(exc)}") from None
        if annotation is int:
            for bound in ("low", "high"):
                raw = spec[bound]
                if not isinstance(raw, int) or isinstance(raw, bool):
                    raise UserError(f"{where}: {name} is an integer parameter: {bound} must "
                                    f"be an integer (got {raw!r})")
                _check(f"{where}.{bound}", group, name, raw)
            return Param(name, group, "int", low=rng.low, high=rng.high, log=rng.log)
        if annotation not in (float, float | None):
            raise UserError(f"{where}: {name} is not numeric: give {{choices = [...]}} or a "
                            "value")
        for bound in ("low", "high"):
            _check(f"{where}.{bound}", group, name, float(getattr(rng, bound)))
        return Param(name, group, "float", low=rng.low, high=rng.high, log=rng.log)
    return Param(name, group, "fixed", value=_check(where, group, name, spec))


def describe_error(exc: ValidationError) -> str:
    """The first error of a pydantic validation: ``loc: message``."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def load_space(path: Path | None) -> SearchSpace:
    """Read and validate a search-space file (``None``: the built-in example)."""
    file = EXAMPLE_SPACE if path is None else Path(path)
    label = "built-in example space" if path is None else f"search space {file}"
    try:
        raw = read_settings_file(file)
    except SettingsError as exc:
        raise UserError(str(exc).replace("config file", "search space", 1)) from None
    agent_names, env_names = _agent_names(), _env_names()
    entries: list[tuple[str, Literal["agent", "env"], str, Any]] = []
    sweep: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "sweep":
            if not isinstance(value, dict):
                raise UserError(f"{label}: sweep must be a table")
            sweep = value
        elif key in ("agent", "env") and isinstance(value, dict):
            names = agent_names if key == "agent" else env_names
            for sub, spec in value.items():
                name = ALIASES.get(sub, sub) if key == "agent" else sub
                if name not in names:
                    raise UserError(f"{label}: {key}.{sub}: unknown {key} parameter; valid: "
                                    f"{sorted(names)}")
                entries.append((f"{key}.{sub}", key, name, spec))  # type: ignore[arg-type]
        else:
            name = ALIASES.get(key, key)
            if name in agent_names:
                entries.append((key, "agent", name, value))
            elif name in env_names:
                entries.append((key, "env", name, value))
            else:
                raise UserError(f"{label}: {key}: unknown parameter; valid: [sweep], "
                                f"agent {sorted(agent_names)}, env {sorted(env_names)}")
    params: dict[str, Param] = {}
    for where, group, name, spec in entries:
        if name in params:
            raise UserError(f"{label}: {where}: {name} is given twice")
        params[name] = _param(f"{label}: {where}", group, name, spec)
    try:
        options = SweepOptions(**sweep)
    except ValidationError as exc:
        raise UserError(f"{label}: sweep.{describe_error(exc)}") from None
    _check_batch(label, params)
    return SearchSpace(str(file.absolute()), params, options)  # absolute: --resume elsewhere


def _bounds(p: Param | None, default: int) -> tuple[float, float]:
    if p is None:
        return default, default
    if p.kind == "fixed":
        return p.value, p.value
    if p.kind == "choice":
        return min(p.choices), max(p.choices)
    return float(p.low), float(p.high)  # type: ignore[arg-type]


def _check_batch(label: str, params: dict[str, Param]) -> None:
    defaults = AgentSettings()
    batch = _bounds(params.get("batch_size"), defaults.batch_size)[1]
    memory = _bounds(params.get("memory_size"), defaults.memory_size)[0]
    if batch > memory:
        raise UserError(f"{label}: batch_size can reach {batch:g} but memory_size can be as "
                        f"small as {memory:g}: every batch_size must be <= every memory_size")
