"""RLlib evaluation of the greedy policy on a held-out period: ``results["evaluation"]``.

Configure it the RLlib way::

    config.evaluation(evaluation_interval=1,
                      evaluation_config={"env_config": held_out, "explore": False})

Every evaluation iteration runs one greedy episode over the held-out period (the env and the
greedy policy are deterministic, so one episode is the whole answer) and reports, under
``evaluation/``: ``pnl``, ``total_return``, ``sharpe_annualised``, ``max_drawdown``,
``trades``, ``steps``, and the same figures of buy-and-hold of that period under
``evaluation/buy_and_hold/``, plus ``excess_return`` (agent minus buy-and-hold) and
``evaluated_at_iteration``. Sharpe is annualised with sqrt(252) (daily bars).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, EVALUATION_RESULTS
from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

from rsc_env import EnvParams

PERIODS_PER_YEAR = 252  # daily bars


def _figures(values: np.ndarray, trades: int) -> dict[str, float]:
    returns = np.diff(values) / values[:-1]
    sd = returns.std(ddof=1) if len(returns) > 1 else 0.0
    peak = np.maximum.accumulate(values)
    return {
        "pnl": float(values[-1] - values[0]),
        "total_return": float(values[-1] / values[0] - 1.0),
        "sharpe_annualised": float(returns.mean() / sd * np.sqrt(PERIODS_PER_YEAR))
        if sd > 0 else 0.0,
        "max_drawdown": float(((peak - values) / peak).max()),
        "trades": float(trades),
    }


def episode_figures(info: dict[str, Any], fee_percent: float) -> dict[str, Any]:
    """Agent and buy-and-hold figures of one finished episode's terminal ``info``."""
    log = info["episode_log"]
    initial = float(info["initial_portfolio_value"])
    agent = np.concatenate([[initial], log["portfolio_value"]])
    prices = np.asarray(log["price"], dtype=float)
    fee = fee_percent / 100.0
    shares = initial / (prices[0] * (1 + fee))  # the whole balance, fractional shares
    hold = np.concatenate([[initial], shares * prices * np.r_[np.ones(len(prices) - 1),
                                                              1 - fee]])
    out = _figures(agent, len(info.get("completed_trades", [])))
    out["steps"] = float(info.get("total_steps", len(prices)))
    out["buy_and_hold"] = _figures(hold, 1)
    out["excess_return"] = out["total_return"] - out["buy_and_hold"]["total_return"]
    return out


def _greedy_episode(runner: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    episodes = runner.sample(num_episodes=1, explore=False)
    done = [ep for ep in episodes if ep.is_done]
    return (done[0].get_infos(-1) if done else {}), runner.get_metrics()


def evaluate_held_out(algo: Any, eval_runners: Any) -> tuple[dict[str, Any], int, int]:
    """``custom_evaluation_function`` of :class:`StrategyAgentConfig` (RLlib's signature)."""
    eval_runners.sync_weights(from_worker_or_learner_group=algo.learner_group,
                              inference_only=True)
    if eval_runners.num_remote_env_runners() > 0:
        outs = eval_runners.foreach_env_runner(_greedy_episode, local_env_runner=False)
    else:
        outs = [_greedy_episode(eval_runners.local_env_runner)]
    algo.metrics.aggregate([m for _, m in outs], key=(EVALUATION_RESULTS, ENV_RUNNER_RESULTS))
    info = next((i for i, _ in outs if i), None)
    if info is None or "episode_log" not in info:
        raise RuntimeError("held-out evaluation needs the env's terminal episode_log "
                           "(TradingEnv with record_episode=True)")
    env_config = algo.config.get_evaluation_config_object().env_config
    fee = float(env_config.get("transaction_fee_percent", EnvParams.transaction_fee_percent))
    figures = episode_figures(info, fee_percent=fee)
    one = MetricsLogger()
    one.log_dict(figures, window=1)
    algo.metrics.aggregate([one.reduce()], key=EVALUATION_RESULTS)
    steps = int(info.get("total_steps", 0))
    return figures, steps, steps
