"""The run report: Markdown tables and PNG plots written into a run directory."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def markdown_table(rows: Mapping[str, Mapping[str, Any]],
                   columns: Sequence[tuple[str, str, str]]) -> str:
    """One row per name (``rows[name][key]``), one column per ``(key, label, format)``."""
    head = "| policy | " + " | ".join(label for _, label, _ in columns) + " |"
    rule = "|---|" + "---:|" * len(columns)
    lines = [head, rule]
    for name, values in rows.items():
        cells = [fmt.format(values[key]) for key, _, fmt in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_equity(path: Path, curves: Mapping[str, Mapping[str, Any]], title: str) -> Path:
    """Equity curves (``curves[name] = {"date", "portfolio_value", "operations"}``) with the
    agent's entries/exits marked."""
    fig, ax = plt.subplots(figsize=(10, 5))
    for name, log in curves.items():
        dates, values = log["date"], log["portfolio_value"]
        ax.plot(dates, values, label=name, linewidth=1.2)
        ops = log.get("operations") or []
        if name == "agent" and ops:
            for kind, marker, color in (("ENTRY", "^", "tab:green"), ("EXIT", "v", "tab:red")):
                idx = [i for i, op, _, _ in ops if op.startswith(kind)]
                if idx:
                    ax.scatter(
                        np.asarray(dates)[idx],
                        np.asarray(values)[idx],
                        marker=marker,
                        color=color,
                        s=28,
                        zorder=3,
                        label=f"agent {kind.lower()}",
                    )
    ax.set_title(title)
    ax.set_xlabel("date")
    ax.set_ylabel("portfolio value")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_training(
    path: Path,
    episode_returns: Sequence[float],
    epsilons: Sequence[float],
    epsilon_steps: Sequence[int],
) -> Path:
    """Episode return per training episode and epsilon over env steps."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    if len(episode_returns):
        a1.plot(np.arange(1, len(episode_returns) + 1), episode_returns, marker=".", linewidth=1)
    else:
        a1.text(0.5, 0.5, "no training episode finished", ha="center", transform=a1.transAxes)
    a1.set_xlabel("training episode")
    a1.set_ylabel("episode return (sum of rewards)")
    a1.set_title("Episode return")
    a1.grid(alpha=0.3)
    a2.plot(epsilon_steps, epsilons)
    a2.set_yscale("log")
    a2.set_xlabel("env steps (all runners)")
    a2.set_ylabel("epsilon")
    a2.set_title("Exploration rate")
    a2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_throughput(path: Path, steps_per_s: Sequence[float]) -> Path:
    """Env steps per second of each training iteration."""
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(np.arange(1, len(steps_per_s) + 1), steps_per_s, color="tab:blue")
    ax.set_xlabel("training iteration")
    ax.set_ylabel("env steps / s")
    ax.set_title("Training throughput per iteration")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_bars(
    path: Path, labels: Sequence[str], values: Sequence[float], ylabel: str, title: str
) -> Path:
    """A labelled bar chart (used by ``rsc-bench``)."""
    fig, ax = plt.subplots(figsize=(8, 4))
    bars = ax.bar(labels, values, color="tab:blue")
    ax.bar_label(bars, fmt="%.0f")
    ax.set_xlabel("configuration")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def collapse_line(episode_log: Mapping[str, Any]) -> tuple[str | None, str]:
    """The collapse verdict of a greedy episode (``None``, ``"no trade"`` or ``"constant
    <action>"``, :func:`rsc_policy.evaluation.learnability.collapse`) and the report's line."""
    from rsc_policy.evaluation.learnability import episode_collapse

    counts, entries, why = episode_collapse(episode_log)
    mix = f"actions flat/long/short {counts[0]}/{counts[1]}/{counts[2]}, {entries} entries"
    if why is None:
        return None, f"- policy: {mix}"
    return why, (f"- **collapsed policy ({why})**: {mix}; the agent learned no trading rule "
                 "(see `rsc-check learnability` and `--preset recommended`)")
