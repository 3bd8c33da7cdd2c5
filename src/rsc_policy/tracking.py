"""Experiment tracking of a run: every iteration's numeric results as TensorBoard scalars
(tensorboardX, which ships with Ray) and as one JSON line each in ``metrics.jsonl``.

``tensorboard --logdir runs/`` shows every run side by side.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def flatten(result: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested result dict as ``{"a/b/c": value}`` (NaN kept as None)."""
    out: dict[str, float] = {}
    for key, value in result.items():
        if not prefix and key == "config":  # the algorithm's settings, not a measurement
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "/"))
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int | float):
            out[name] = float(value)
    return out


class RunTracker:
    """Writes ``metrics.jsonl`` and TensorBoard event files into ``run_dir``."""

    def __init__(self, run_dir: Path) -> None:
        from tensorboardX import SummaryWriter

        self.path = Path(run_dir) / "metrics.jsonl"
        self._file = self.path.open("a")
        self._tb = SummaryWriter(logdir=str(run_dir), flush_secs=10)

    def log(self, step: int, result: Mapping[str, Any]) -> None:
        """Record ``result`` (nested numbers) at ``step`` (env steps)."""
        flat = flatten(result)
        self._file.write(json.dumps({"env_steps": int(step), **{
            k: (None if math.isnan(v) else v) for k, v in flat.items()}}) + "\n")
        self._file.flush()
        for key, value in flat.items():
            if math.isfinite(value):
                self._tb.add_scalar(key, value, global_step=int(step))

    def close(self) -> None:
        self._file.close()
        self._tb.close()
