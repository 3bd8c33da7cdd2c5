"""Check a ``StrategyAgentAlgo`` checkpoint completely, without Ray, before anything starts.

RLlib's ``restore_from_path`` silently skips a component whose directory is missing (the
networks then stay freshly initialised) and fails late, deep inside a Ray actor, on a
truncated state file. :func:`validate_checkpoint` reads every component of the checkpoint
on the driver first and raises one :class:`CheckpointError` naming the component and the
problem.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

from rsc_policy.rllib.replay_component import COMPONENT_REPLAY

#: Components a StrategyAgentAlgo checkpoint must hold: (path, what it is, keys its state has).
#: The replay memory (``learner_group/learner/replay``) is optional
#: (``store_buffer_in_checkpoints=False`` leaves it out) but checked when present.
REQUIRED: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("algorithm_state.pkl", "the algorithm's counters", ("rsc_strategy_agent",)),
    ("learner_group/learner/state.pkl", "the learner (optimizer, learning steps)",
     ("optimizer", "num_learning_steps")),
    ("learner_group/learner/rl_module/default_policy/module_state.pkl",
     "the Q-network and target network", ()),
    ("env_runner/state.pkl", "the env runner", ()),
)


class CheckpointError(ValueError):
    """A checkpoint that cannot be restored completely, with the component named."""


def _load(path: Path, root: Path) -> Any:
    rel = path.relative_to(root)
    try:
        if path.suffix == ".msgpack":
            import msgpack

            return msgpack.unpackb(path.read_bytes(), raw=False)
        if path.suffix == ".json":
            return json.loads(path.read_text())
        with path.open("rb") as fh:
            return pickle.load(fh)
    except Exception as exc:  # truncated, corrupt, from an incompatible version, unreadable
        raise CheckpointError(
            f"checkpoint {root}: {rel} cannot be read ({type(exc).__name__}: {exc}); the "
            "checkpoint is damaged"
        ) from None


def _state_file(root: Path, rel: str) -> Path:
    """``rel`` as written (RLlib writes ``*.pkl``, or ``*.msgpack`` with msgpack states)."""
    path = root / rel
    if not path.exists() and path.suffix == ".pkl":
        alt = path.with_suffix(".msgpack")
        if alt.exists():
            return alt
    return path


def validate_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read every component of the StrategyAgentAlgo checkpoint at ``path``; return the
    Q-network's state (parameter name -> array). Raise :class:`CheckpointError`."""
    root = Path(path)
    if not root.is_dir():
        raise CheckpointError(f"checkpoint {root}: no such directory")
    if not (root / "rllib_checkpoint.json").is_file():
        raise CheckpointError(f"checkpoint {root}: not an RLlib checkpoint (no "
                              "rllib_checkpoint.json)")
    states: dict[str, Any] = {}
    for rel, what, keys in REQUIRED:
        file = _state_file(root, rel)
        if not file.parent.is_dir():
            raise CheckpointError(
                f"checkpoint {root}: {file.parent.relative_to(root)}/ ({what}) is missing; "
                "restoring would silently start from fresh weights")
        if not file.is_file():
            raise CheckpointError(f"checkpoint {root}: {rel} ({what}) is missing")
        state = _load(file, root)
        missing = [k for k in keys if not (isinstance(state, dict) and k in state)]
        if not isinstance(state, dict) or missing:
            raise CheckpointError(f"checkpoint {root}: {rel} ({what}) lacks {missing or 'a state'}")
        states[rel] = state
    # Everything else that is there must read too: class files, metadata, the replay memory.
    for file in sorted(root.rglob("*")):
        if file.is_file() and file.suffix in (".pkl", ".msgpack", ".json"):
            if str(file.relative_to(root)) not in states:
                _load(file, root)
    replay = root / "learner_group" / "learner" / COMPONENT_REPLAY
    if replay.is_dir() and not _state_file(replay, "state.pkl").is_file():
        raise CheckpointError(f"checkpoint {root}: {replay.relative_to(root)}/state.pkl (the "
                              "replay memory) is missing")
    module = states[REQUIRED[2][0]]
    weights = {k: v for k, v in module.items() if k.startswith("q.")}
    if not weights or not any(k.startswith("target.") for k in module):
        raise CheckpointError(f"checkpoint {root}: {REQUIRED[2][0]} holds no Q-network weights")
    return weights
