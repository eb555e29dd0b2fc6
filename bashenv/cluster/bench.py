"""Throughput with one simulated node against two, on this machine:

    unshare --net python -m bashenv.cluster.bench [--slots 2] [--episodes 12] [--think 1.0]

Each "node" is a `ray start` with `--slots` sandbox slots, all on one Docker engine.
Episodes are the gold agent on the bundled tasks with `--think` seconds before each
action, standing in for a model's latency (agents mostly wait), so more slots in flight
mean more episodes per minute until the machine's cores run out; the figure shows the
scheduling spreads work, not that two nodes on one machine have twice the hardware.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from bashenv.agents import GoldAgent
from bashenv.cluster.jobs import episode_on_node
from bashenv.cluster.local import LocalCluster
from bashenv.cluster.nodes import SLOT_RESOURCE, connect
from bashenv.cluster.ship import pack_repo


class ThinkingGold(GoldAgent):
    """The gold agent, waiting `think` seconds before each action (a model's latency)."""

    name = "thinking-gold"

    def __init__(self, think: float) -> None:
        super().__init__()
        self.think = think

    def act(self, observation: dict[str, Any]) -> str:
        time.sleep(self.think)
        return super().act(observation)


def _throughput(nodes: int, slots: int, episodes: int, think: float, port: int) -> dict[str, Any]:
    from bashenv.bundled import bundled_dir
    from bashenv.task import load_tasks

    tasks = load_tasks(bundled_dir("tasks"))
    with tempfile.TemporaryDirectory(prefix="bashenv-raybench-") as tmp, \
            LocalCluster(Path(tmp, "ray"), port) as cluster:
        cluster.start_head(slots)
        for _ in range(nodes - 1):
            cluster.add_worker(slots)
        ray = connect(cluster.address)
        shipped = {t.id: ray.put(pack_repo(t)) for t in tasks}
        episode = ray.remote(num_cpus=0, resources={SLOT_RESOURCE: 1}, max_retries=0)(
            episode_on_node)
        started = time.monotonic()
        refs = [episode.remote(task, shipped[task.id], partial(ThinkingGold, think),
                               f"raybench-{nodes}", None, None)
                for task in (tasks[i % len(tasks)] for i in range(episodes))]
        records = [record for record, _ in ray.get(refs)]
        seconds = time.monotonic() - started
        ray.shutdown()
    return {"nodes": nodes, "slots_per_node": slots, "episodes": len(records),
            "resolved": sum(r["resolved"] for r in records), "seconds": round(seconds, 1),
            "episodes_per_minute": round(60 * len(records) / seconds, 2),
            "nodes_used": len({r["node"]["node_id"] for r in records})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", type=int, default=2, help="sandbox slots per node")
    parser.add_argument("--episodes", type=int, default=12)
    parser.add_argument("--think", type=float, default=1.0, help="seconds before each action")
    args = parser.parse_args()
    one = _throughput(1, args.slots, args.episodes, args.think, 6411)
    two = _throughput(2, args.slots, args.episodes, args.think, 6412)
    print(json.dumps({"one_node": one, "two_nodes": two,
                      "speedup": round(two["episodes_per_minute"] / one["episodes_per_minute"], 2)}))


if __name__ == "__main__":
    main()
