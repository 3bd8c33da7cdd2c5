"""``rsc-bench``: timed comparisons of the sequential trainer and the RLlib algorithm.

Light imports only; the benchmark itself is :mod:`rsc_policy.cli.seq_vs_par`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rsc_cli.errors import cli_errors, version_callback
from rsc_policy.cli import USER_ERRORS

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Benchmarks of the StrategyAgent trainers (see seq-vs-par --help).")


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=version_callback("reinforce-strategy-creator"), is_eager=True,
        help="show the version")] = False) -> None:
    """Benchmarks of the StrategyAgent trainers."""


@app.command("seq-vs-par")
@cli_errors("rsc-bench", USER_ERRORS)
def seq_vs_par(
    env: str = typer.Option("fast", help="environment: fast (TradingEnv) or reference"),
    env_steps: int = typer.Option(None, help="env steps per configuration [20000; quick 2000]"),
    runners: str = typer.Option(None, help="comma-separated env-runner counts [1,2]"),
    data: str = typer.Option("sp500", help="OHLCV CSV path or bundled sample name"),
    date_format: str = typer.Option(None, help="strftime format of the CSV's dates"),
    start: str = typer.Option(None, help="first training date [2010-01-01; quick 2015]"),
    end: str = typer.Option(None, help="last training date [2014-12-31]"),
    val_start: str = typer.Option(None, help="first held-out date [2015-01-01]"),
    val_end: str = typer.Option(None, help="last held-out date [2015-12-31]"),
    seed: int = typer.Option(0, help="random seed of every run"),
    # 16 x 16: the same 256 steps per request as 4 x 64, but RLlib's ~0.4 ms per vector step
    # is shared by 16 envs (measured: 2 runners, reference env, 4 x 64 911 env steps/s,
    # 16 x 16 1,092; fast env 4 x 64 6,948, 16 x 64 10,594)
    envs_per_runner: int = typer.Option(16, help="environments per env runner"),
    fragment: int = typer.Option(16, help="rollout fragment length (steps per env)"),
    updates_per_step: float = typer.Option(1.0, help="learning steps per env step (RLlib)"),
    address: str = typer.Option(None, help="address of an existing Ray cluster"),
    out: Annotated[Path, typer.Option(help="output directory")] = Path("bench-out"),
    quick: bool = typer.Option(False, help="small configuration for CI (< 2 min on 2 cores)"),
) -> None:
    """Sequential trainer vs RLlib throughput mode: speed and held-out quality."""
    from rsc_policy.cli.seq_vs_par import benchmark, settings_from_cli
    from rsc_policy.common import load_periods

    s = settings_from_cli(
        {"env_steps": env_steps, "runners": runners, "start": start, "end": end,
         "val_start": val_start, "val_end": val_end},
        env=env, data=data, envs_per_runner=envs_per_runner, fragment=fragment,
        updates_per_step=updates_per_step, seed=seed, quick=quick)
    if address is None:
        import os

        from rsc_policy.cli.train_job import check_cpus

        check_cpus(max(s.runners), os.cpu_count() or 1, "this machine", "--runners")
    train_cfg, val_cfg = load_periods(s.data, s.start, s.end, s.val_start, s.val_end,
                                      s.env_params, date_format)
    benchmark(s, train_cfg, val_cfg, out, address)


@app.command("sweep")
@cli_errors("rsc-bench")
def sweep_cmd(
    members: int = typer.Option(16, help="population members K (seed i, lr from a grid)"),
    env_steps: int = typer.Option(5000, help="env steps per member"),
    runners: int = typer.Option(1, help="env runners of the population (0: the driver's)"),
    envs_per_runner: int = typer.Option(4, help="env copies of each member per runner"),
    fragment: int = typer.Option(32, help="rollout fragment length (steps per env)"),
    data: str = typer.Option("sp500", help="OHLCV CSV path or bundled sample name"),
    start: str = typer.Option("2010-01-01", help="first training date"),
    end: str = typer.Option("2014-12-31", help="last training date"),
    val_start: str = typer.Option("2015-01-01", help="first held-out date"),
    val_end: str = typer.Option("2015-12-31", help="last held-out date"),
    seed: int = typer.Option(0, help="seed of member 0 (member i: seed + i)"),
    skip_sequential: bool = typer.Option(False, help="leave out (a), one after another"),
    out: Annotated[Path, typer.Option(help="output directory")] = Path("bench-out"),
) -> None:
    """K member trainings (a) one after another, (b) one sequential trainer per core, (c) as
    one population on the EnvRunner group, (d) as one population in the compiled per-member
    loop, (e) as one population on StrategyAgentAlgo whose learner steps the envs, beside the
    FLOP limit: DIR/sweep.json, sweep.md."""
    from rsc_cli.errors import UserError
    from rsc_policy.cli.sweep_bench import run_sweep_bench
    from rsc_policy.common import load_periods
    from rsc_policy.settings import AGENT_DEFAULTS, ENV_DEFAULTS

    for name, value, low in (("--members", members, 1), ("--env-steps", env_steps, 64),
                             ("--envs-per-runner", envs_per_runner, 1),
                             ("--fragment", fragment, 1), ("--runners", runners, 0)):
        if value < low:
            raise UserError(f"{name} must be >= {low}, got {value}")
    train_cfg, val_cfg = load_periods(data, start, end, val_start, val_end,
                                      dict(ENV_DEFAULTS))
    result = run_sweep_bench(train_cfg, val_cfg, dict(AGENT_DEFAULTS), members=members,
                             env_steps=env_steps, runners=runners,
                             envs_per_runner=envs_per_runner, fragment=fragment, seed=seed,
                             out=out, skip_sequential=skip_sequential)
    print((out / "sweep.md").read_text())
    del result


@app.command("walk-forward")
@cli_errors("rsc-bench", USER_ERRORS)
def walk_forward_cmd(
    data: str = typer.Option("sp500", help="OHLCV CSV path or bundled sample name"),
    date_format: str = typer.Option(None, help="strftime format of the CSV's dates"),
    train_years: float = typer.Option(5.0, help="training window of each fold (years)"),
    validation_years: float = typer.Option(1.0, help="validation window after it (years)"),
    step_years: float = typer.Option(1.0, help="shift between folds (years)"),
    test_years: float = typer.Option(2.0, help="final test period no fold sees (years)"),
    seeds: str = typer.Option("0,1,2", help="comma-separated seeds per fold"),
    episodes: int = typer.Option(10, help="training episodes per fold and seed"),
    metric: str = typer.Option("sharpe", help="figure the verdict compares"),
    preset: str = typer.Option(None, help="settings preset (rsc_policy.presets): team | "
                               "recommended [default: team, or the --config file's]"),
    fee_percent: float = typer.Option(None, help="transaction fee in percent (0.1 = 10 bp) "
                                      "[the preset's: 0.001]"),
    config: Annotated[Path | None, typer.Option(
        help="rsc-train settings file (TOML/YAML; its data and dates are not used)")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="any rsc-train setting, KEY=VALUE (repeatable), e.g. --set "
        "gamma=0.95; beats the file and the preset")] = None,
    label: str = typer.Option(None, help="name of the settings in the table's title "
                              "[the preset's]"),
    out: Annotated[Path, typer.Option(help="output directory")] = Path("bench-out"),
) -> None:
    """Walk-forward validation of the sequential trainer with rsc-train's settings (the
    team's, a ``--preset``, a ``--config`` file, ``--set`` overrides): a table per fold x
    seed and a verdict against buy-and-hold with a bootstrap interval."""
    import json

    from rsc_cli.errors import UserError
    from rsc_policy.agent.sequential import train_sequential
    from rsc_policy.cli.check import parse_sets
    from rsc_policy.evaluation.walkforward import verdict_text, walk_forward
    from rsc_policy.settings import load_settings

    try:
        seed_list = [int(x) for x in seeds.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"--seeds {seeds!r}: give comma-separated integers") from None
    chosen = load_settings(config, {**parse_sets(set_ or []), "preset": preset,
                                    "transaction_fee_percent": fee_percent})
    agent = chosen.agent.model_dump(exclude={"updates_per_step"})

    def train(cfg: dict, seed: int):
        return train_sequential(cfg, episodes=episodes, seed=seed, **agent).agent

    env = {"data": data, **chosen.env.model_dump(),
           **({"date_format": date_format} if date_format else {})}
    try:
        result = walk_forward(env, train, seeds=seed_list, metric=metric,
                              train_years=train_years, validation_years=validation_years,
                              step_years=step_years, test_years=test_years)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    from rsc_policy.plots import markdown_table

    columns = (("val_start", "validation from", "{}"), ("val_end", "to", "{}"),
               ("agent", f"agent {metric}", "{:.2f}"),
               ("buy_and_hold", f"buy-and-hold {metric}", "{:.2f}"),
               ("random_mean", f"random mean {metric}", "{:.2f}"),
               ("agent_percentile_vs_random", "agent pct vs random", "{:.0f}"),
               ("agent_return", "agent return", "{:+.2%}"),
               ("buy_and_hold_return", "buy-and-hold return", "{:+.2%}"))
    table = markdown_table({f"fold {r['fold']} seed {r['seed']}": r
                            for r in result["table"].to_dict("records")}, columns).replace(
        "| policy |", "| run |", 1)
    fee_bp = chosen.env.transaction_fee_percent * 100
    name = label or f"preset {chosen.preset}"
    text = "\n".join([f"# walk-forward: `{data}`, {name}, fee {fee_bp:g} bp, "
                      f"{episodes} episodes per fold and seed", "",
                      table, "", verdict_text(result["verdict"]), ""])
    (out / "walkforward.md").write_text(text)
    (out / "walkforward.json").write_text(json.dumps(
        {"verdict": result["verdict"], "settings": chosen.to_dict(),
         "rows": result["table"].to_dict("records")},
        indent=2, default=str))
    print(text)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
