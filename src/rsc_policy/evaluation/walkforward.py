"""Walk-forward validation: rolling-origin folds, a final test period no fold touches, and a
verdict with confidence intervals across folds x seeds.

Folds over the bars before the test period: fold ``k`` trains on ``train`` years starting at
``first + k * step`` and validates on the ``validation`` years right after; the last
``test`` years of the data are held back for one final score of the chosen configuration.
Each (fold, seed) trains a fresh agent (``train_fn``; default the sequential trainer) and is
scored greedily on its validation window with the same figures as the benchmarks
(:mod:`rsc_policy.evaluation.benchmarks`); the verdict compares the agent's mean annualised
Sharpe with buy-and-hold's on the same windows, with a bootstrap interval of the difference
(``scipy.stats.bootstrap``, 95 %, over fold x seed results).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Fold:
    """One rolling-origin fold: train on ``[train_start, train_end]``, validate on
    ``[val_start, val_end]`` (dates inclusive, bars of the data)."""

    index: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    val_start: pd.Timestamp
    val_end: pd.Timestamp


def make_folds(dates: Sequence[Any], *, train_years: float = 5.0, validation_years: float = 1.0,
               step_years: float = 1.0, test_years: float = 1.0
               ) -> tuple[list[Fold], tuple[pd.Timestamp, pd.Timestamp]]:
    """Rolling-origin folds over ``dates`` and the final test period ``(first, last)``.

    The test period is the last ``test_years`` of the dates; every fold's training and
    validation bars end before it. Raises ``ValueError`` if not even one fold fits.
    """
    idx = pd.DatetimeIndex(dates).sort_values()
    year = pd.Timedelta(days=365.25)
    test_start = idx[idx.searchsorted(idx[-1] - test_years * year, side="right")]
    before = idx[idx < test_start]
    folds: list[Fold] = []
    origin = before[0]
    while True:
        train_end_t = origin + train_years * year
        val_end_t = train_end_t + validation_years * year
        train = before[(before >= origin) & (before < train_end_t)]
        val = before[(before >= train_end_t) & (before < val_end_t)]
        if val_end_t > before[-1] + pd.Timedelta(days=1) or len(train) < 2 or len(val) < 2:
            break
        folds.append(Fold(len(folds), train[0], train[-1], val[0], val[-1]))
        origin = origin + step_years * year
    if not folds:
        raise ValueError(
            f"no walk-forward fold fits: data {idx[0].date()}..{idx[-1].date()}, test "
            f"{test_years:g} y, train {train_years:g} y + validation {validation_years:g} y")
    return folds, (test_start, idx[-1])


def bootstrap_interval(values: Sequence[float], *, confidence: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """Bootstrap confidence interval of the mean (``scipy.stats.bootstrap``, BCa)."""
    from scipy.stats import bootstrap

    v = np.asarray(values, dtype=float)
    if len(v) < 2 or np.all(v == v[0]):
        return float(v.mean()), float(v.mean())
    res = bootstrap((v,), np.mean, confidence_level=confidence, n_resamples=2000,
                    random_state=np.random.default_rng(seed), method="BCa")
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def walk_forward(env_config: Mapping[str, Any], train_fn: Callable[..., Any], *,
                 seeds: Sequence[int] = (0, 1, 2), metric: str = "sharpe",
                 n_random: int = 100, **fold_args: float) -> dict[str, Any]:
    """Train and score every (fold, seed); return the table and the verdict.

    ``env_config`` names the data (``data`` and env parameters; ``start``/``end`` are
    ignored: the folds decide). ``train_fn(train_config, seed)`` returns a greedy policy
    (callable obs -> action, or an object with ``act``/``greedy``).
    """
    from rsc_env import prepare_market_data
    from rsc_policy.evaluation.benchmarks import compare, random_draws
    from rsc_policy.evaluation.episode import greedy_act

    base = {k: v for k, v in env_config.items() if k not in ("start", "end", "df")}
    table = prepare_market_data(base.get("data", "sp500"),
                                date_format=base.get("date_format"))
    folds, test = make_folds(table.index, **fold_args)
    rows = []
    for fold in folds:
        train_cfg = {**base, "start": str(fold.train_start.date()),
                     "end": str(fold.train_end.date())}
        val_cfg = {**base, "start": str(fold.val_start.date()), "end": str(fold.val_end.date())}
        draws = random_draws(val_cfg, n_random)  # the window's, once for every seed
        for seed in seeds:
            policy = train_fn(train_cfg, seed)
            res = compare(greedy_act(policy), val_cfg, random=draws)
            agent, bh = res["rows"]["agent"], res["rows"]["buy and hold"]
            rows.append({"fold": fold.index, "seed": seed, "val_start": val_cfg["start"],
                         "val_end": val_cfg["end"], "agent": agent[metric],
                         "buy_and_hold": bh[metric],
                         "random_mean": res["random"]["mean"][metric],
                         "agent_percentile_vs_random": res["agent_percentile"][metric],
                         "agent_return": agent["total_return"],
                         "buy_and_hold_return": bh["total_return"]})
    frame = pd.DataFrame(rows)
    diff = (frame["agent"] - frame["buy_and_hold"]).to_numpy()
    low, high = bootstrap_interval(diff)
    verdict = {
        "metric": metric, "n": len(frame), "folds": len(folds), "seeds": list(seeds),
        "agent_mean": float(frame["agent"].mean()),
        "buy_and_hold_mean": float(frame["buy_and_hold"].mean()),
        "difference_mean": float(diff.mean()), "difference_ci95": (low, high),
        "beats_buy_and_hold": bool(low > 0),
        "test_period": (str(test[0].date()), str(test[1].date())),
    }
    return {"folds": folds, "table": frame, "verdict": verdict}


def verdict_text(verdict: Mapping[str, Any]) -> str:
    """One plain paragraph: does the agent beat buy-and-hold across folds x seeds?"""
    low, high = verdict["difference_ci95"]
    answer = "yes" if verdict["beats_buy_and_hold"] else "no"
    return (f"**Beats buy-and-hold on validation {verdict['metric']}: {answer}.** Over "
            f"{verdict['folds']} folds x {len(verdict['seeds'])} seeds the agent's mean "
            f"{verdict['metric']} is {verdict['agent_mean']:.2f} against buy-and-hold's "
            f"{verdict['buy_and_hold_mean']:.2f}; the difference is "
            f"{verdict['difference_mean']:+.2f} (95 % bootstrap interval {low:+.2f} to "
            f"{high:+.2f}). The test period {verdict['test_period'][0]} to "
            f"{verdict['test_period'][1]} was not used.")
