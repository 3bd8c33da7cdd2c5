"""Environment step cost: fast TradingEnv vs the literal reference vs a bare numpy floor.

Run: ``pytest bench/bench_env.py --benchmark-only`` (all suites: ``pytest bench --benchmark-only``).
The reference's cost grows with the bar index (it recomputes rolling statistics over the
history), so it is timed at the end of a 1,000- and a 3,000-bar table; the fast env is timed
over whole episodes of those tables (its cost does not depend on the index).
"""

from __future__ import annotations

import numpy as np
import pytest

from rsc_env import ReferenceTradingEnv, TradingEnv, prepare_market_data

STEPS = 500


@pytest.fixture(scope="module", params=[1000, 3000], ids=["1000bars", "3000bars"])
def table(request):
    return prepare_market_data("sp500").iloc[: request.param]


def _actions(n: int) -> list[int]:
    return np.random.default_rng(0).integers(0, 3, n).tolist()


def test_fast_env_step(benchmark, table):
    """Mean per-step time = reported time / STEPS (random actions, team training params)."""
    env = TradingEnv({"df": table, "initial_balance": 100_000.0, "stop_loss_pct": 5.0})
    actions = _actions(STEPS)
    start = len(table) - STEPS - 2

    def setup():
        env.reset()
        env.t = start  # jump to the end region of the table: cost is index-independent

    def run():
        for a in actions:
            env.step(a)

    benchmark.extra_info["steps_per_round"] = STEPS
    benchmark.pedantic(run, setup=setup, rounds=30, iterations=1)


def test_reference_env_step(benchmark, table):
    """One reference step at the last bars of the table (the O(t) cost of the team's env)."""
    env = ReferenceTradingEnv({"df": table, "initial_balance": 100_000.0})
    env.reset()

    def setup():
        env.reset()
        env.current_step = len(table) - 3

    benchmark.extra_info["steps_per_round"] = 1
    benchmark.pedantic(lambda: env.step(1), setup=setup, rounds=30, iterations=1)


def test_numpy_floor(benchmark, table):
    """The floor: index a precomputed window, append the two portfolio features, and return a
    gymnasium step tuple with the spec's info keys: what any env with this interface must do."""
    env = TradingEnv({"df": table})
    windows = env.market.observations
    close = env.market.close
    dates = env.market.dates
    start = len(table) - STEPS - 2

    def run():
        for t in range(start, start + STEPS):
            obs = windows[t].copy()
            obs[-2] = 1.0
            obs[-1] = 0.0
            info = {
                "balance": 1.0, "shares_held": 0, "current_price": close[t],
                "portfolio_value": 1.0, "current_position": 0, "step": t, "date": dates[t],
                "action_taken": 0, "original_action": 0, "sl_triggered": False,
                "tp_triggered": False, "step_reward": 0.0, "operation_type": "HOLD",
                "shares_transacted": 0.0, "execution_price": 0.0, "operations": [],
            }  # fmt: skip
            _ = (obs, 0.0, False, False, info)

    benchmark.extra_info["steps_per_round"] = STEPS
    benchmark.pedantic(run, rounds=30, iterations=1)


def test_bare_index_floor(benchmark, table):
    """Indexing the precomputed window alone (no portfolio features, no info)."""
    windows = TradingEnv({"df": table}).market.observations
    start = len(table) - STEPS - 2

    def run():
        for t in range(start, start + STEPS):
            windows[t].copy()

    benchmark.extra_info["steps_per_round"] = STEPS
    benchmark.pedantic(run, rounds=30, iterations=1)


def test_build_env_5000_bars(benchmark):
    """Building the env for ~5,000 bars, indicators included (from the loaded OHLCV table)."""
    from rsc_env import load_sample
    from rsc_env.env import clear_market_cache

    raw = load_sample("sp500")

    def build():
        clear_market_cache()
        return TradingEnv({"df": prepare_market_data(raw)})

    benchmark.pedantic(build, rounds=5, iterations=1)
