"""The agent: the learning rule shared by the sequential trainer and the RLlib algorithm.

Everything that decides *what* the agent does lives here, so the plain sequential loop
(:mod:`rsc_policy.agent.sequential`) and the RLlib algorithm (:mod:`rsc_policy.rllib`) cannot
drift apart. No Ray import.

Read in this order: :mod:`~rsc_policy.agent.loss` (the rule for autograd, one page),
:mod:`~rsc_policy.agent.update` (the same step, fast), :mod:`~rsc_policy.agent.network`,
:mod:`~rsc_policy.agent.schedule`, :mod:`~rsc_policy.agent.exploration`,
:mod:`~rsc_policy.agent.replay`, :mod:`~rsc_policy.agent.sequential`.

How the random streams line up by design
----------------------------------------
There is no shared global RNG anywhere; each source of randomness is dedicated and keyed:

* **Weight init** -- :func:`build_qnet` draws PyTorch's default initialisation inside
  ``torch.random.fork_rng`` after ``torch.manual_seed(seed)``: the same seed gives the same
  weights in any process, whatever else consumed torch's global generator before.
  The target network is an exact copy.
* **Exploration** -- the draw for one action selection is a pure function of
  ``(seed, runner_index, t, env_index)`` (:func:`exploration_draw`, a splitmix64 hash), where
  ``t`` is the global number of actions selected so far. The sequential agent passes its
  selection counter; RLlib passes ``t`` to ``_forward_exploration`` (the runner's global env
  step count, which the algorithm keeps equal to the number of steps taken). No stream
  state exists, so RLlib's extra, discarded forward pass on each terminal observation (same
  ``t`` as the next real selection) cannot shift later draws.
* **Epsilon** -- :class:`EpsilonSchedule` precomputes the exact repeated-multiplication
  sequence of the spec (multiply by ``decay`` after every selection while ``eps > eps_min``),
  so ``epsilon(t)`` is bit-identical in both trainers and in every runner.
* **Replay sampling** -- :class:`rsc_policy.agent.replay.ReplayMemory` owns a
  ``np.random.Generator`` seeded from ``seed``; both trainers add the same transitions in
  the same order and call ``sample`` at the same moments, so they draw the same batches.
* **Learning** -- :class:`DQNUpdate` is the one implementation of the learning step.
"""

from __future__ import annotations

from pathlib import Path

from rsc_env.numba_cache import drop_stale_cache, package_sources
from rsc_policy.agent import native

#: This package's modules with cached numba functions (a test checks the list is complete).
NUMBA_MODULES = ("blas.py", "compiled_loop.py", "exploration.py", "kernels.py", "rng.py")

# Before any cached kernel here loads: they inline rsc_env's compiled env and helpers too,
# which numba's cache does not track (see rsc_env.numba_cache).
drop_stale_cache(Path(__file__).parent,
                 [*(Path(__file__).parent / name for name in NUMBA_MODULES),
                  Path(__file__).parent / "step.c", *package_sources()],
                 extra=native.BACKEND)
