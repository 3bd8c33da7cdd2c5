"""Run by test_multinode.py in its own process: a 2-node ``ray.cluster_utils.Cluster``
(1 CPU each, so the two env runners must land on different nodes), throughput mode, one
training iteration. Prints one JSON line."""

from __future__ import annotations

import json
import sys

import ray
from ray.cluster_utils import Cluster


def main(env_config_json: str) -> None:
    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        import rsc_policy
        from rsc_policy import StrategyAgentConfig

        config = (StrategyAgentConfig()
                  .environment(rsc_policy.register_env(), env_config=json.loads(env_config_json))
                  .training(exact=False)
                  .env_runners(num_env_runners=2, num_envs_per_env_runner=2,
                               rollout_fragment_length=8)
                  .reporting(min_sample_timesteps_per_iteration=300)
                  .debugging(seed=1))
        algo = config.build_algo()
        algo.train()
        nodes = algo.env_runner_group.foreach_env_runner(
            lambda r: ray.get_runtime_context().get_node_id(), local_env_runner=False)
        print(json.dumps({"runner_nodes": nodes, "cluster_nodes": len(ray.nodes()),
                          "env_steps": algo.global_env_steps,
                          "learning_steps": algo.num_learning_steps}))
        algo.stop()
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
