"""An honest comparison: the agent against true benchmarks on the same period and fee.

* **buy and hold**: the whole balance buys the instrument at the first bar's close (fractional
  shares, the fee paid), holds to the last bar and sells (the fee paid again); no stop-loss.
* **always long (env sizing)**: the env's "long" every step, with the run's position sizing
  and stop-loss (what older reports called buy-and-hold).
* **SMA crossover**: long while the fast simple moving average of the close is above the slow
  one, else flat (default 50/200 bars, on the whole history before the period too), run
  through the env: same sizing, stop-loss and fee as the agent.
* **random**: uniformly random actions through the env, as a distribution over ``n_random``
  seeds (mean, 5th and 95th percentile of each figure) and the agent's percentile in it.

All figures come from :func:`rsc_policy.evaluation.metrics.performance` (annualised from the
bar frequency). One seed of the agent is one draw: compare several seeds before concluding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from rsc_policy.evaluation.metrics import episode_performance, performance

LONG, FLAT = 1, 0


def buy_and_hold_curve(prices: np.ndarray, initial: float, fee_percent: float) -> np.ndarray:
    """Portfolio value per bar of buy-and-hold (see module doc): the whole balance bought at
    the first close (fractional shares, fee paid), sold at the last (fee paid)."""
    p = np.asarray(prices, dtype=float)
    fee = fee_percent / 100.0
    shares = initial / (p[0] * (1.0 + fee))
    values = np.concatenate([[initial], shares * p[1:]])
    values[-1] *= 1.0 - fee
    return values


def buy_and_hold(prices: np.ndarray, dates: Any, initial: float, fee_percent: float
                 ) -> dict[str, float]:
    """Figures of :func:`buy_and_hold_curve`."""
    p = np.asarray(prices, dtype=float)
    values = buy_and_hold_curve(p, initial, fee_percent)
    shares = initial / (p[0] * (1.0 + fee_percent / 100.0))
    return performance(values, dates, trades=1, positions=np.ones(len(p) - 1),
                       traded_value=shares * (p[0] + p[-1]))


def run_policy(act: Callable[[np.ndarray, int], int], env: Any) -> dict[str, Any]:
    """Run ``act(obs, step)`` through one episode of ``env``; the terminal info."""
    obs, _ = env.reset()
    step = 0
    while True:
        obs, _, terminated, truncated, info = env.step(int(act(obs, step)))
        step += 1
        if terminated or truncated:
            return info


def sma_signal(close_history: pd.Series, dates: pd.DatetimeIndex, fast: int, slow: int
               ) -> np.ndarray:
    """1 (long) where SMA(fast) > SMA(slow) of the close on each of ``dates``, else 0."""
    fast_ma = close_history.rolling(fast).mean()
    slow_ma = close_history.rolling(slow).mean()
    signal = (fast_ma > slow_ma).astype(int)
    return signal.reindex(dates).fillna(0).to_numpy(dtype=int)


def _history(env_config: Mapping[str, Any]) -> pd.Series | None:
    """The close of the whole file up to the period's end (for the SMA warm-up)."""
    if "data" not in env_config:
        return None
    from rsc_env import prepare_market_data

    table = prepare_market_data(env_config["data"], end=env_config.get("end"),
                                date_format=env_config.get("date_format"))
    return table["close"]


def random_draws(env_config: Mapping[str, Any], n_random: int = 100,
                 make_env: Callable[[dict[str, Any]], Any] | None = None
                 ) -> dict[str, np.ndarray]:
    """The figures of ``n_random`` uniformly random policies (seeds ``0..n_random-1``; policy
    ``i`` draws its actions with ``default_rng(i).integers(3)``, one per step) through the env
    of ``env_config``: ``{figure: array of n_random values}``. They depend on the window and
    the env settings only, so a sweep or a walk-forward computes them once per window and
    hands them to :func:`compare` for every seed.

    With the default env the action sequences run through the env's trading rules in one
    compiled call (:func:`rsc_env.action_replay.replay_actions`, ~0.5 s faster per window
    than stepping); ``make_env`` (another env class) steps that env instead."""
    from rsc_env import TradingEnv
    from rsc_env.action_replay import replay_actions

    env = (make_env or TradingEnv)(dict(env_config))
    draws = []
    if make_env is None:
        steps = env.episode_length
        actions = np.stack([np.random.default_rng(seed).integers(3, size=steps)
                            for seed in range(n_random)])
        runs = replay_actions(env, actions)
        dates = np.asarray(env.unwrapped.market.dates64)
        for i in range(n_random):
            draws.append(performance(runs.values[i], dates, trades=int(runs.trades[i]),
                                     positions=runs.positions[i],
                                     traded_value=float(runs.traded_value[i])))
    else:
        start = pd.DatetimeIndex(env.unwrapped.market.dates)[0]
        for seed in range(n_random):
            rng = np.random.default_rng(seed)
            info = run_policy(lambda _o, _t, r=rng: int(r.integers(3)), env)
            draws.append(episode_performance(info, start))
    return {key: np.asarray([d[key] for d in draws]) for key in draws[0]}


def percentile_among(value: float, draws: np.ndarray) -> float:
    """The percentage of ``draws`` strictly below ``value`` (NaN for a NaN value)."""
    if not np.isfinite(value):
        return float("nan")
    return float(100.0 * np.mean(np.asarray(draws) < value))


def compare(policy: Callable[[np.ndarray], int], env_config: Mapping[str, Any], *,
            n_random: int = 100, sma: tuple[int, int] = (50, 200),
            make_env: Callable[[dict[str, Any]], Any] | None = None,
            random: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """The agent's greedy ``policy`` and every benchmark over the period of ``env_config``.

    ``random``: the window's :func:`random_draws` when already computed (the same window for
    several seeds), else they are drawn here.

    Returns ``{"rows": {name: figures}, "random": {"mean"|"p5"|"p95": figures},
    "agent_percentile": {figure: percentile of the agent among the random seeds},
    "fee_bp": fee in basis points, "period": (first, last), "agent_info": terminal info}``.
    """
    from rsc_env import TradingEnv

    make = make_env or TradingEnv
    env = make(dict(env_config))
    market = env.unwrapped.market
    dates = pd.DatetimeIndex(market.dates)
    fee_percent = float(env.unwrapped.params.transaction_fee_percent)
    initial = float(env.unwrapped.params.initial_balance)

    def figures(act: Callable[[np.ndarray, int], int]) -> tuple[dict[str, float], dict]:
        info = run_policy(act, env)
        return episode_performance(info, dates[0]), info

    rows: dict[str, dict[str, float]] = {}
    rows["agent"], agent_info = figures(lambda obs, _t: policy(obs))
    rows["buy and hold"] = buy_and_hold(np.asarray(market.close), dates, initial, fee_percent)
    p = env.unwrapped.params
    sizing = f"{p.position_sizing_method} {p.risk_fraction:g}" if \
        p.position_sizing_method == "fixed_fractional" else p.position_sizing_method
    stop = f", stop-loss {p.stop_loss_pct:g}%" if p.stop_loss_pct else ""
    rows[f"always long (env sizing: {sizing}{stop})"], _ = figures(lambda _o, _t: LONG)
    history = _history(env_config)
    fast, slow = sma
    signal = sma_signal(history if history is not None else pd.Series(market.close, dates),
                        dates, fast, slow)
    rows[f"SMA {fast}/{slow} crossover"], _ = figures(lambda _o, t: int(signal[t]))
    if random is None:
        random = random_draws(env_config, n_random, make_env)
    n_random = len(next(iter(random.values())))
    summary = {stat: {k: float(fn(v)) for k, v in random.items()}
               for stat, fn in (("mean", np.mean), ("p5", lambda v: np.percentile(v, 5)),
                                ("p95", lambda v: np.percentile(v, 95)))}
    percentile = {k: float(100.0 * np.mean(v < rows["agent"][k])) for k, v in random.items()}
    return {"rows": rows, "random": summary, "agent_percentile": percentile,
            "n_random": n_random, "fee_bp": fee_percent * 100.0,
            "period": (str(dates[0].date()), str(dates[-1].date())), "agent_info": agent_info,
            "buy_and_hold_curve": {"date": np.asarray(dates),
                                   "portfolio_value": buy_and_hold_curve(
                                       np.asarray(market.close), initial, fee_percent)}}


COLUMNS = (("total_return", "return", "{:+.2%}"), ("cagr", "CAGR", "{:+.2%}"),
           ("volatility", "volatility", "{:.2%}"), ("sharpe", "Sharpe", "{:.2f}"),
           ("sortino", "Sortino", "{:.2f}"), ("max_drawdown", "max DD", "{:.2%}"),
           ("calmar", "Calmar", "{:.2f}"), ("trades", "trades", "{:.0f}"),
           ("exposure", "exposure", "{:.0%}"), ("turnover", "turnover/yr", "{:.1f}"))


def format_figure(fmt: str, value: float) -> str:
    """``value`` formatted with ``fmt``, or ``n/a`` if it is missing or not finite."""
    return "n/a" if value is None or not np.isfinite(value) else fmt.format(value)


def markdown(result: Mapping[str, Any]) -> str:
    """The comparison as Markdown: table, random distribution, fee, and a plain verdict."""
    head = "| policy | " + " | ".join(label for _, label, _ in COLUMNS) + " |"
    lines = [head, "|---|" + "---:|" * len(COLUMNS)]
    for name, row in result["rows"].items():
        cells = " | ".join(format_figure(f, row[k]) for k, _, f in COLUMNS)
        lines.append(f"| {name} | {cells} |")
    n = result["n_random"]
    for stat, label in (("mean", "mean"), ("p5", "5th pct"), ("p95", "95th pct")):
        row = result["random"][stat]
        lines.append(f"| random ({n} seeds, {label}) | "
                     + " | ".join(format_figure(f, row[k]) for k, _, f in COLUMNS) + " |")
    agent, bh = result["rows"]["agent"], result["rows"]["buy and hold"]
    pct = result["agent_percentile"]
    fee_bp = result["fee_bp"]
    beats = agent["sharpe"] > bh["sharpe"]
    notes = [
        "",
        f"Period {result['period'][0]} to {result['period'][1]}; figures annualised from the "
        f"bar frequency ({agent['periods_per_year']:.0f} bars/year); fee {fee_bp:g} bp per "
        "trade (transaction_fee_percent / 100 x 10,000).",
    ]
    if fee_bp < 1:
        notes.append(f"**Warning: the fee of {fee_bp:g} bp is below 1 bp**, far cheaper than "
                     "most real trading (10 bp is common); results may not survive real costs.")
    notes.append(
        f"Agent's percentile among {n} random policies: return {pct['total_return']:.0f}, "
        f"Sharpe {pct['sharpe']:.0f}.")
    notes.append(
        f"**Beats buy-and-hold's Sharpe on this period: {'yes' if beats else 'no'}** "
        f"(agent {agent['sharpe']:.2f} vs buy-and-hold {bh['sharpe']:.2f}; return "
        f"{agent['total_return']:+.2%} vs {bh['total_return']:+.2%}). One trained seed on one "
        "period is one draw, not a verdict: use walk-forward folds and several seeds.")
    return "\n".join(lines + notes)
