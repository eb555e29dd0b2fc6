"""RL-trainer adapters and asynchronous rollout collection over BashSWE episodes.

`RolloutCollector` (rollouts.py) runs episodes concurrently and streams trajectories to a
learner that may swap the policy while they run. The adapters (skyrl.py, openenv.py)
expose BashSWE episodes through trainers' environment interfaces; their frameworks are
optional dependencies, imported only by those modules.
"""

from bashenv.rl.rollouts import Act, Policy, RolloutCollector, Step, Trajectory, collect

__all__ = ["Act", "Policy", "RolloutCollector", "Step", "Trajectory", "collect"]
