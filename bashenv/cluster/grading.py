"""Gradings as Ray tasks: many diffs (e.g. a predictions file) graded on the nodes, each in
a fresh grading box there, one sandbox slot per grading."""

from __future__ import annotations

from typing import Any

from bashenv.cluster.images import ensure_image
from bashenv.cluster.nodes import SLOT_RESOURCE, connect, node_here, survey
from bashenv.cluster.ship import pack_repo, unpack_repo
from bashenv.errors import BashenvError
from bashenv.grading import Rewarder
from bashenv.sandbox import PROCESS_RUN_ID
from bashenv.task import Task


def grade_on_node(task: Task, shipped: tuple[str, bytes], diff: str, run_id: str,
                  registry: str | None) -> dict[str, Any]:
    """Runs on a node: the task's image pulled or built there, the diff graded; the
    verdict as a dict, with the node it ran on."""
    local = unpack_repo(task, *shipped)
    image, _ = ensure_image(local, registry)
    verdict = Rewarder(local, image, run_id).grade(diff).to_dict()
    return {**verdict, "node": node_here()}


def grade_on_ray(diffs: list[tuple[Task, str]], *, address: str | None = "auto",
                 run_id: str = PROCESS_RUN_ID, registry: str | None = None) -> list[dict[str, Any]]:
    """Verdicts for (task, diff) pairs, in order, graded over the healthy nodes of the
    cluster (Ray queues what exceeds the slots; a grading whose node dies is retried)."""
    ray = connect(address)
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    slots = {n.id: n.slots for n in survey(ray) if n.ok}
    if not slots:
        raise BashenvError(f"no node of the Ray cluster at {address!r} can run sandboxes")
    shipped = {task.id: ray.put(pack_repo(task)) for task, _ in diffs}
    grade = ray.remote(num_cpus=0, resources={SLOT_RESOURCE: 1}, max_retries=2)(grade_on_node)
    nodes = sorted(slots, key=slots.__getitem__, reverse=True)
    weighted = [n for n in nodes for _ in range(slots[n])]  # round robin, by slots
    refs = [grade.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
                weighted[i % len(weighted)], soft=True)).remote(
                task, shipped[task.id], diff, run_id, registry)
            for i, (task, diff) in enumerate(diffs)]
    verdicts: list[dict[str, Any]] = ray.get(refs)
    return verdicts
