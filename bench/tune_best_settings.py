"""Write an rsc-tune sweep's best configuration as an rsc-train settings file.

    python bench/tune_best_settings.py RUN_DIR OUT.toml [--episodes N --train-bars B]

RUN_DIR is an ``rsc-tune --out`` directory of a finished sweep: the best trial's parameters
come from its database (``sweeps.verdict``, the same parameters ``report.md`` lists), each
under ``[agent]`` or ``[env]`` as the sweep's space groups it. Unlisted settings keep
rsc-train's defaults (the team's), as in the trials. The file then goes to
``rsc-bench walk-forward --config OUT.toml`` (README, "Does it make money?").

A linear epsilon schedule needs its length in env steps: the trial used its own run's, so
give ``--episodes`` and ``--train-bars`` of the walk-forward run (their product is written as
``epsilon_total_steps``); without them such a configuration is refused with one error.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any


def best_settings(run_dir: Path) -> dict[str, dict[str, Any]]:
    """``{"agent": {...}, "env": {...}}``: the finished sweep's best trial's parameters."""
    db, sweep_file = run_dir / "rsc.sqlite", run_dir / "sweep.json"
    if not db.is_file() or not sweep_file.is_file():
        raise ValueError(f"{run_dir}: not an rsc-tune sweep directory (no rsc.sqlite or "
                         "sweep.json)")
    sweep = json.loads(sweep_file.read_text())
    with sqlite3.connect(db) as con:
        row = con.execute("SELECT verdict FROM sweeps WHERE sweep_id = ?",
                          (sweep["sweep_id"],)).fetchone()
    if row is None or row[0] is None:
        raise ValueError(f"{run_dir}: the sweep has no best configuration yet (unfinished?)")
    params = json.loads(row[0])["params"]
    space = sweep["space"]["params"]
    out: dict[str, dict[str, Any]] = {"agent": {}, "env": {}}
    for name, value in params.items():
        out[space[name]["group"]][name] = value
    return out


def to_toml(settings: dict[str, dict[str, Any]], comment: str = "") -> str:
    """A TOML text of ``[agent]`` and ``[env]`` tables of scalar values."""
    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        return repr(v)

    lines = [f"# {line}" for line in comment.splitlines()]
    for table in ("agent", "env"):
        lines += ["", f"[{table}]"] + [f"{k} = {fmt(v)}" for k, v in settings[table].items()]
    return "\n".join(lines).lstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: write OUT.toml; exit 2 with one ``error:`` line on bad input."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--episodes", type=int, help="walk-forward episodes per fold and seed")
    ap.add_argument("--train-bars", type=int, help="bars of a fold's training window")
    args = ap.parse_args(argv)
    try:
        settings = best_settings(args.run_dir)
        if settings["agent"].get("epsilon_schedule") == "linear":
            if not (args.episodes and args.train_bars):
                raise ValueError("the best configuration has a linear epsilon schedule: give "
                                 "--episodes and --train-bars of the walk-forward run")
            settings["agent"]["epsilon_total_steps"] = args.episodes * args.train_bars
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(to_toml(settings, f"rsc-tune's best configuration of {args.run_dir}"))
    print(args.out.read_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
