"""Fixtures for rsc_policy tests: small real-data slices of the bundled S&P 500 series."""

from __future__ import annotations

from typing import Any

import pytest

# "all_in" sizing: with the default fixed-fractional 10% of 10,000 the index (~2,000) buys
# 0 shares and nothing would ever trade.
ENV_PARAMS: dict[str, Any] = {"position_sizing_method": "all_in"}
TRAIN_2015: dict[str, Any] = {"data": "sp500", "start": "2015-01-01", "end": "2015-12-31",
                              **ENV_PARAMS}
HELD_OUT_2016: dict[str, Any] = {"data": "sp500", "start": "2016-01-01", "end": "2016-12-31",
                                 **ENV_PARAMS}


@pytest.fixture(scope="session")
def train_env_config() -> dict[str, Any]:
    """One year (2015, 251 steps per episode) of the bundled S&P 500 daily bars."""
    return dict(TRAIN_2015)


@pytest.fixture(scope="session")
def held_out_env_config() -> dict[str, Any]:
    """The following year (2016), never trained on."""
    return dict(HELD_OUT_2016)


@pytest.fixture(scope="session")
def rsc_env_name(ray_local) -> str:
    """``rsc-trading`` registered with Tune in the shared local Ray session."""
    import rsc_policy

    return rsc_policy.register_env()


@pytest.fixture(scope="session")
def learner_of():
    """``learner_of(algo)``: the algorithm's local learner object (``num_learners=0``), reached
    through LearnerGroup's public ``foreach_learner``."""

    def get(algo):
        return next(iter(algo.learner_group.foreach_learner(lambda learner: learner))).get()

    return get


def _adopt_state(fast: Any, q: Any, target: Any, optimizer: Any) -> None:
    """Copy an autograd learner's weights, target weights and Adam moments (``q``,
    ``target``, a per-parameter ``torch.optim.Adam``) into a ``DQNUpdate``'s flat buffers."""
    import torch

    params = list(q.parameters())
    with torch.no_grad():
        fast.params.copy_(torch.cat([p.reshape(-1) for p in params]))
        fast.target_params.copy_(torch.cat([p.reshape(-1) for p in target.parameters()]))
        state, moments = fast.optimizer.state[fast.params], [optimizer.state[p] for p in params]
        for key in ("exp_avg", "exp_avg_sq"):
            state[key].copy_(torch.cat([m[key].reshape(-1) for m in moments]))
        state["step"].fill_(float(moments[0]["step"]))


@pytest.fixture(scope="session")
def adopt_state():
    """``adopt_state(dqn_update, q, target, adam)``: lock-step helper of the parity tests of
    the fused learning step against autograd (each step compared from a shared state)."""
    return _adopt_state
