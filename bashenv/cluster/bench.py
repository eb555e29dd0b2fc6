"""Throughput with one simulated node against two, on this machine: `bashenv bench --ray`
(add --no-local for this figure alone), or

    unshare --net python -m bashenv.cluster.bench [--slots 2] [--episodes 8] [--think 5]

One local cluster: a head with `--slots` sandbox slots runs the episodes alone, then a
worker with as many slots joins and the same episodes run again over both, all on one
Docker engine. Episodes are the gold agent on the bundled tasks with `--think` seconds
before each action, standing in for a model's latency (agents mostly wait), so more slots
in flight mean more episodes per minute until the machine's cores run out; the figure
shows the scheduling spreads work, not that two nodes on one machine have twice the
hardware. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bashenv.agents import GoldAgent
from bashenv.cluster.jobs import episode_on_node
from bashenv.cluster.local import LocalCluster, in_private_netns
from bashenv.cluster.nodes import SLOT_RESOURCE, connect
from bashenv.cluster.ship import pack_repo
from bashenv.errors import BashenvError
from bashenv.sandbox import PROCESS_RUN_ID

PORT = 6411  # inside the cluster's own network namespace: collides with nothing outside
FULL: dict[str, Any] = {"slots": 2, "episodes": 8, "think": 5.0}
QUICK: dict[str, Any] = {"slots": 2, "episodes": 4, "think": 1.0}


class ThinkingGold(GoldAgent):
    """The gold agent, waiting `think` seconds before each action (a model's latency)."""

    name = "thinking-gold"

    def __init__(self, think: float) -> None:
        super().__init__()
        self.think = think

    def act(self, observation: dict[str, Any]) -> str:
        time.sleep(self.think)
        return super().act(observation)


def _episodes(ray: Any, tasks: list[Any], shipped: dict[str, Any], nodes: int, slots: int,
              episodes: int, think: float, run_id: str) -> dict[str, Any]:
    episode = ray.remote(num_cpus=0, resources={SLOT_RESOURCE: 1}, max_retries=0)(
        episode_on_node)
    started = time.monotonic()
    refs = [episode.remote(task, shipped[task.id], partial(ThinkingGold, think), run_id, None, None)
            for task in (tasks[i % len(tasks)] for i in range(episodes))]
    records = [record for record, _ in ray.get(refs)]
    seconds = time.monotonic() - started
    return {"nodes": nodes, "slots_per_node": slots, "episodes": len(records),
            "resolved": sum(r["resolved"] for r in records), "seconds": round(seconds, 1),
            "episodes_per_minute": round(60 * len(records) / seconds, 2),
            "nodes_used": len({r["node"]["node_id"] for r in records})}


def _wait_for_slots(ray: Any, total: int) -> None:
    deadline = time.monotonic() + 60
    while ray.cluster_resources().get(SLOT_RESOURCE, 0) < total:
        if time.monotonic() > deadline:
            raise BashenvError(f"the second node's {SLOT_RESOURCE} slots never appeared")
        time.sleep(0.2)


def throughput(slots: int, episodes: int, think: float, run_id: str = PROCESS_RUN_ID,
               progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Both measurements on one local cluster (needs a private network namespace)."""
    from bashenv.bundled import bundled_dir
    from bashenv.task import load_tasks

    tasks = load_tasks(bundled_dir("tasks"))
    with tempfile.TemporaryDirectory(prefix="bashenv-raybench-") as tmp, \
            LocalCluster(Path(tmp, "ray"), PORT) as cluster:
        progress("ray: starting a one-node cluster")
        cluster.start_head(slots)
        ray = connect(cluster.address)
        try:
            shipped = {t.id: ray.put(pack_repo(t)) for t in tasks}
            progress(f"ray: {episodes} episodes on 1 node")
            one = _episodes(ray, tasks, shipped, 1, slots, episodes, think, run_id)
            progress("ray: a second node joins")
            cluster.add_worker(slots)
            _wait_for_slots(ray, 2 * slots)
            progress(f"ray: {episodes} episodes on 2 nodes")
            two = _episodes(ray, tasks, shipped, 2, slots, episodes, think, run_id)
        finally:
            ray.shutdown()
    return {"one_node": one, "two_nodes": two, "think_s": think,
            "speedup": round(two["episodes_per_minute"] / one["episodes_per_minute"], 2)}


def _in_own_namespace(settings: dict[str, Any], run_id: str) -> dict[str, Any]:
    """throughput() in a child under `unshare --net` (Ray binds the machine's address
    otherwise; see bashenv/cluster/local.py)."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        raise BashenvError("the Ray throughput figure starts a local cluster in a network "
                           "namespace of its own: run it as root with unshare(1) available")
    args = [f"--{k}={v}" for k, v in settings.items()]
    proc = subprocess.run(["unshare", "--net", sys.executable, "-m", "bashenv.cluster.bench",
                           *args, f"--run-id={run_id}"], stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:  # its progress and traceback went to stderr, shown above
        raise BashenvError(f"the Ray throughput bench failed (exit {proc.returncode})")
    found: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


def figures(quick: bool = False, run_id: str | None = None,
            progress: Callable[[str], None] = print) -> dict[str, float]:
    """The `bashenv bench --ray` figures: episodes per minute on 1 and 2 simulated nodes."""
    settings = QUICK if quick else FULL
    run_id = run_id or f"{PROCESS_RUN_ID}-raybench"
    if in_private_netns():
        found = throughput(**settings, run_id=run_id, progress=progress)
    else:
        progress(f"ray: 1 node, then 2, {settings['episodes']} episodes each, "
                 f"{settings['think']:g} s per action (in a network namespace of its own)")
        found = _in_own_namespace(settings, run_id)
    one, two = found["one_node"], found["two_nodes"]
    return {"ray_1node_episodes_per_min": one["episodes_per_minute"],
            "ray_2nodes_episodes_per_min": two["episodes_per_minute"],
            "ray_2v1_speedup": found["speedup"],
            "ray_2nodes_nodes_used": two["nodes_used"],
            "ray_resolved_fraction": round((one["resolved"] + two["resolved"])
                                           / (one["episodes"] + two["episodes"]), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", type=int, default=FULL["slots"], help="sandbox slots per node")
    parser.add_argument("--episodes", type=int, default=FULL["episodes"])
    parser.add_argument("--think", type=float, default=FULL["think"],
                        help="seconds before each action")
    parser.add_argument("--run-id", default=f"{PROCESS_RUN_ID}-raybench",
                        help="the label of the containers")
    args = parser.parse_args()
    found = throughput(args.slots, args.episodes, args.think, args.run_id,
                       progress=lambda m: print(m, file=sys.stderr))
    print(json.dumps(found))


if __name__ == "__main__":
    main()
