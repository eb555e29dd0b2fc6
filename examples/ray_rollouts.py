"""RL rollouts at scale on a Ray cluster: keep N episodes in flight across the nodes and
hand each finished trajectory to the learner while the others still run.

    python examples/ray_rollouts.py --address HEAD:PORT --in-flight 8 --episodes 32 [tasks/]

Each episode is one Ray task holding one sandbox slot (`bashenv_sandbox`) on a node whose
Docker engine builds or pulls the task's image itself; the policy here is a stand-in
(a fixed exploration then the gold patch): put your model's sampling behind `Policy.act`
(e.g. a call to your inference server). The pattern is `ray.wait(..., num_returns=1)`:
whichever episode ends first is consumed first, and one new episode replaces it, so the
cluster stays full and the learner never waits for the slowest episode of a batch.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path
from typing import Any


class Policy:
    """A stand-in policy: look around, then apply the gold patch and submit."""

    name = "example-policy"

    def __init__(self) -> None:
        from bashenv.agents import GoldAgent

        self._gold = GoldAgent()
        self._queue: list[str] = []

    def reset(self, task: Any, observation: dict[str, Any]) -> None:
        self._gold.reset(task, observation)
        self._queue = ["git status --short", "ls"]

    def act(self, observation: dict[str, Any]) -> str:
        return self._queue.pop(0) if self._queue else self._gold.act(observation)


def rollout(task: Any, shipped: tuple[str, bytes], run_id: str) -> dict[str, Any]:
    """Runs on a node: one episode, returned as a trajectory (observations, actions,
    reward) with the node it ran on."""
    from bashenv.cluster.images import ensure_image
    from bashenv.cluster.nodes import node_here
    from bashenv.cluster.ship import unpack_repo
    from bashenv.env import BashSWEEnv

    task = unpack_repo(task, *shipped)
    ensure_image(task)
    env, policy = BashSWEEnv(task, run_id=run_id), Policy()
    steps: list[dict[str, Any]] = []
    try:
        obs, _ = env.reset()
        policy.reset(task, obs)
        done, reward = False, 0.0
        info: dict[str, Any] = {}
        while not done:
            action = policy.act(obs)
            obs, reward, terminated, truncated, info = env.step(action)
            steps.append({"action": action, "output": obs["output"][-2000:],
                          "exit_code": int(obs["exit_code"])})
            done = terminated or truncated
    finally:
        env.close()
    return {"task_id": task.id, "reward": reward, "steps": steps, "node": node_here(),
            "outcome": (info.get("verdict") or {}).get("outcome"), "error": info.get("error")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tasks", nargs="?", default=None, help="task directory (default: bundled)")
    parser.add_argument("--address", default="auto", help="Ray cluster (HEAD:PORT or auto)")
    parser.add_argument("--in-flight", type=int, default=8, help="episodes running at once")
    parser.add_argument("--episodes", type=int, default=16, help="episodes in all")
    parser.add_argument("--run-id", default="ray-rollouts")
    args = parser.parse_args()

    from ray.exceptions import RayError, RayTaskError
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from bashenv.cluster.nodes import SLOT_RESOURCE, connect, survey
    from bashenv.cluster.ship import pack_repo
    from bashenv.env.bash_swe import default_tasks_dir
    from bashenv.task import load_tasks

    ray = connect(args.address)
    tasks = load_tasks(Path(args.tasks) if args.tasks else default_tasks_dir())
    shipped = {t.id: ray.put(pack_repo(t)) for t in tasks}  # repositories travel once
    # Only nodes whose Docker engine answers; each gets episodes in proportion to its slots.
    slots = {n.id: n.slots for n in survey(ray) if n.ok}
    load = dict.fromkeys(slots, 0)
    remote = ray.remote(num_cpus=0, resources={SLOT_RESOURCE: 1}, max_retries=0)(rollout)
    schedule = itertools.islice(itertools.cycle(tasks), args.episodes)
    placed: dict[Any, tuple[Any, str]] = {}

    def launch(task: Any | None = None) -> None:
        task = task or next(schedule, None)
        if task is None:
            return
        node = min(load, key=lambda n: load[n] / slots[n])
        load[node] += 1
        ref = remote.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)
                             ).remote(task, shipped[task.id], args.run_id)
        placed[ref] = (task, node)

    for _ in range(args.in_flight):
        launch()
    started, done = time.monotonic(), 0
    while placed:
        [ready], _ = ray.wait(list(placed), num_returns=1)
        task, node = placed.pop(ready)
        load[node] -= 1
        try:
            trajectory = ray.get(ready)  # the learner's step goes here: no waiting for a batch
        except RayTaskError:  # the episode's own code failed: a bug, not a lost node
            raise
        except RayError as exc:  # its node or worker died: run it again elsewhere
            print(f"lost {task.id} on node {node[:8]} ({type(exc).__name__}); again", flush=True)
            if not any(n.id == node and n.ok for n in survey(ray)):
                slots.pop(node, None)
                load.pop(node, None)
            launch(task)
            continue
        done += 1
        print(f"{done:4d} {trajectory['task_id']:28s} reward={trajectory['reward']:.1f} "
              f"steps={len(trajectory['steps'])} node={trajectory['node']['node_id'][:8]} "
              f"({time.monotonic() - started:.1f}s)", flush=True)
        launch()

if __name__ == "__main__":
    main()
