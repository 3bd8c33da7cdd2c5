"""RLlib evaluation of the greedy policy on a held-out period: ``results["evaluation"]``.

Configure it the RLlib way::

    config.evaluation(evaluation_interval=1,
                      evaluation_config={"env_config": held_out, "explore": False})

Every evaluation iteration runs one greedy episode over the held-out period (the env and the
greedy policy are deterministic, so one episode is the whole answer) and reports, under
``evaluation/``: ``pnl``, ``total_return``, ``cagr``, ``volatility``, ``sharpe``,
``sortino``, ``max_drawdown``, ``calmar``, ``trades``, ``exposure``, ``turnover``, ``steps``
(annualised from the bar frequency, see :mod:`rsc_policy.evaluation.metrics`), the same
figures of buy-and-hold of that period (whole balance, same fee) under
``evaluation/buy_and_hold/``, ``excess_return`` (agent minus buy-and-hold) and
``evaluated_at_iteration``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, EVALUATION_RESULTS
from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

from rsc_policy.evaluation.benchmarks import buy_and_hold
from rsc_policy.evaluation.metrics import episode_performance


def episode_figures(info: dict[str, Any], env_config: dict[str, Any]) -> dict[str, Any]:
    """Figures of one greedy episode (terminal ``info``) and of buy-and-hold of its period."""
    from rsc_env import TradingEnv

    env = TradingEnv(dict(env_config))  # the period's bars (cached arrays): dates and closes
    dates, params = env.market.dates, env.params
    out = episode_performance(info, dates[0])
    out["steps"] = float(info.get("total_steps", len(dates) - 1))
    out["buy_and_hold"] = buy_and_hold(np.asarray(env.market.close), dates,
                                       params.initial_balance, params.transaction_fee_percent)
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
    figures = episode_figures(info, algo.config.get_evaluation_config_object().env_config)
    one = MetricsLogger()
    one.log_dict(figures, window=1)
    algo.metrics.aggregate([one.reduce()], key=EVALUATION_RESULTS)
    steps = int(info.get("total_steps", 0))
    return figures, steps, steps
