"""The same throughput config on a 2-node Ray cluster, runners on both nodes.

The cluster needs its own Ray, so the run happens in a subprocess (multinode_script.py) and
never touches the session's ``ray_local``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_two_node_cluster_places_runners_on_both_nodes(train_env_config):
    script = Path(__file__).with_name("multinode_script.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
           "RAY_DEDUP_LOGS": "0"}
    proc = subprocess.run([sys.executable, str(script), json.dumps(train_env_config)],
                          capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["cluster_nodes"] == 2
    assert len(result["runner_nodes"]) == 2 and len(set(result["runner_nodes"])) == 2
    assert result["env_steps"] >= 300
    assert result["learning_steps"] == result["env_steps"] - 32
