"""Ray's error line at each start with remote env runners (``core_worker.cc ... has
constructor arguments in the object store and max_restarts > 0``, ray#53727) comes from
RLlib's own ``ray.put`` of the runner config, not from anything rsc passes: rsc's part is
small, the line is kept out of the user's view, and restarts still work
(``tests/policy/test_throughput.py::test_killed_env_runner_is_restored``)."""

from __future__ import annotations

import os
import subprocess
import sys

NOTICE = "constructor arguments in the object store"


def test_rsc_train_start_shows_no_ray_actor_argument_error(tmp_path):
    # a fresh process: Ray prints the line once per process, at the first runner actor
    cmd = [sys.executable, "-m", "rsc_policy.cli.train", "--start", "2014-01-01", "--end",
           "2014-12-31", "--val-start", "2015-01-01", "--val-end", "2015-06-30",
           "--num-env-runners", "1", "--envs-per-runner", "2", "--env-steps", "300",
           "--out", str(tmp_path / "run")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "RSC_PROGRESS": "0"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert NOTICE not in proc.stderr + proc.stdout, proc.stderr
    assert "core_worker.cc" not in proc.stderr and "Traceback" not in proc.stderr


def test_the_notice_is_rllibs_and_only_it_is_filtered(ray_local, capfd):
    import ray.cloudpickle as cloudpickle

    from rsc_env import TradingEnv
    from rsc_policy import StrategyAgentConfig
    from rsc_policy.common import FilteredStderr

    env_config = {"data": "sp500", "start": "2015-01-01", "end": "2015-12-31"}
    config = (StrategyAgentConfig().environment(TradingEnv, env_config=env_config)
              .env_runners(num_env_runners=1))
    # rsc's share of the runner's constructor arguments is small (no table travels)
    assert len(cloudpickle.dumps(config.env_config)) < 2_000
    with FilteredStderr() as quiet:
        os.write(2, b"an unrelated line\n")
        algo = config.build_algo()  # RLlib ray.put()s the config for its runner actors
    try:
        assert algo.env_runner_group.num_healthy_remote_workers() == 1
    finally:
        algo.stop()
    err = capfd.readouterr().err
    assert quiet.dropped <= 1 and NOTICE not in err and "an unrelated line" in err
