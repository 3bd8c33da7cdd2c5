"""``rsc-check``: known-answer checks of the agent (``rsc-check learnability``).

Exit codes: 0 every series passed, 3 a series failed, 2 a user mistake (one ``error:`` line),
1 an internal error, 130/143 interrupted. Imports stay light until the settings are valid.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

from rsc_cli.errors import UserError, cli_errors, version_callback
from rsc_policy.cli import USER_ERRORS
from rsc_policy.presets import describe as describe_presets

DIST = "reinforce-strategy-creator"
EXIT_PASS, EXIT_FAIL = 0, 3
CHECK_ENV_STEPS = 20_000
app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0],
                  pretty_exceptions_enable=False)


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", callback=version_callback(DIST), is_eager=True,
        help="show the version")] = False) -> None:
    """Known-answer checks of the agent."""


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; VALUE is read as a TOML value (``0.5``, ``true``, ``"x"``), else
    as a string."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: expected KEY=VALUE")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out[key.strip()] = value
    return out


def _series(text: str) -> tuple[str, ...]:
    from rsc_env.planted import GENERATORS

    names = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [n for n in names if n not in GENERATORS]
    if not names or unknown:
        raise UserError(f"--series {text!r}: unknown series {unknown}; known: "
                        f"{', '.join(GENERATORS)}")
    return names


@app.command()
@cli_errors("rsc-check", USER_ERRORS)
def learnability(
    config: Annotated[Path | None, typer.Option(
        help="rsc-train settings file (TOML/YAML; its data and dates are not used)")] = None,
    preset: Annotated[str | None, typer.Option(
        help=f"named defaults: {describe_presets()}", show_default="team")] = None,
    series: Annotated[str, typer.Option(
        help="planted series, comma-separated (random_walk is the null)")] =
        "sine,regimes,mean_reversion,random_walk",
    seeds: Annotated[int, typer.Option(min=2, help="seeds per series (seed s: the series "
                                       "drawn with s, the agent seeded with s)")] = 5,
    env_steps: Annotated[int, typer.Option(min=1, help="training env steps per seed")] =
        CHECK_ENV_STEPS,
    train_bars: Annotated[int, typer.Option(min=50, help="training bars")] = 3000,
    val_bars: Annotated[int, typer.Option(min=20, help="held-out bars after them")] = 500,
    min_fraction: Annotated[float, typer.Option(
        help="pass: mean held-out Sharpe >= this fraction of the oracle's")] = 0.5,
    lr: Annotated[float | None, typer.Option("--lr", help="learning rate")] = None,
    gamma: Annotated[float | None, typer.Option(help="discount factor")] = None,
    epsilon_schedule: Annotated[str | None, typer.Option(
        help="multiplicative | linear | per_episode")] = None,
    double_q: Annotated[bool | None, typer.Option(
        "--double-q/--no-double-q", help="double-DQN targets")] = None,
    td_error_loss_fn: Annotated[str | None, typer.Option(help="mse | huber")] = None,
    trade_penalty_mode: Annotated[str | None, typer.Option(
        help="cumulative | per_trade")] = None,
    observe_position: Annotated[bool | None, typer.Option(
        "--observe-position/--no-observe-position",
        help="position and unrealised PnL in the observation")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="any rsc-train setting, KEY=VALUE (repeatable), e.g. --set "
        "epsilon_fraction=0.3")] = None,
    out: Annotated[Path | None, typer.Option(help="write the result as JSON here")] = None,
) -> None:
    """Train on planted series with a known edge (and a random walk, the null) over several
    seeds, evaluate greedily held out, and judge: per series the oracle's Sharpe, the agent's
    mean Sharpe with a 95 % t interval over seeds, the fraction of the oracle captured, the
    collapsed seeds (no trade or one constant action) and, on the null, whether an apparent
    edge is significant (it must not be). Exit 0 if every series passes, 3 otherwise."""
    from rsc_policy.settings import load_settings

    flags = {"preset": preset, "learning_rate": lr, "gamma": gamma,
             "epsilon_schedule": epsilon_schedule, "double_q": double_q,
             "td_error_loss_fn": td_error_loss_fn, "trade_penalty_mode": trade_penalty_mode,
             "observe_position": observe_position}
    overrides: dict[str, Any] = {**parse_sets(set_ or []),
                                 **{k: v for k, v in flags.items() if v is not None},
                                 "env_steps": env_steps}
    settings = load_settings(config, overrides)
    names = _series(series)
    from rsc_policy.evaluation.learnability import CheckPlan, run_check, table

    plan = CheckPlan(series=names, seeds=tuple(range(seeds)), train_bars=train_bars,
                     val_bars=val_bars, env_steps=env_steps,
                     env_params=settings.env.model_dump(),
                     agent_params=settings.agent.model_dump(exclude={"updates_per_step"}),
                     min_fraction=min_fraction)
    typer.echo(f"rsc-check learnability: preset {settings.preset}, {len(names)} series x "
               f"{seeds} seeds, {env_steps:,} env steps each, {train_bars} training bars, "
               f"{val_bars} held-out bars")
    result = run_check(plan, progress=typer.echo)
    result["settings"] = settings.to_dict()
    result["plan"] = {"series": list(names), "seeds": seeds, "env_steps": env_steps,
                      "train_bars": train_bars, "val_bars": val_bars,
                      "min_fraction": min_fraction}
    typer.echo(table(result))
    verdict = "PASS" if result["passed"] else "FAIL"
    typer.echo(f"{verdict} in {result['wall_s']:.0f} s")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str))
        typer.echo(f"JSON: {out}")
    raise typer.Exit(EXIT_PASS if result["passed"] else EXIT_FAIL)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
