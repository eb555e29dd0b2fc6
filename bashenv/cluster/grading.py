"""Gradings as Ray tasks: many diffs (e.g. a predictions file) graded on the nodes, each in
a fresh grading box there, one sandbox slot per grading.

The driver keeps the queue: a grading goes to the healthy node with the most free slots
(hard affinity plus one SLOT_RESOURCE), at most as many at once as the nodes have slots,
and each task's repository is packed when its first grading leaves and let go after its
last. A grading whose worker or node dies returns nothing; the driver sends it again (to
another node when its node is gone), so each diff yields exactly one verdict, and the
verdict says where it was graded and what was retried on the way.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterator
from typing import Any

from bashenv.cluster.images import ensure_image
from bashenv.cluster.jobs import LOST_NODE_RETRIES, Placement
from bashenv.cluster.nodes import SLOT_RESOURCE, connect, node_here
from bashenv.cluster.ship import pack_repo, unpack_repo
from bashenv.errors import BashenvError
from bashenv.grading import Rewarder
from bashenv.sandbox import PROCESS_RUN_ID
from bashenv.task import Task


def grade_on_node(task: Task, shipped: tuple[str, bytes], diff: str, run_id: str,
                  registry: str | None) -> dict[str, Any]:
    """Runs on a node: the task's image pulled or built there, the diff graded; the
    verdict as a dict, with the node it ran on. An image the node cannot get is this
    diff's error verdict (as `bashenv eval` records it locally), not an exception."""
    local = unpack_repo(task, *shipped)
    try:
        image, _ = ensure_image(local, registry)
    except BashenvError as exc:
        return {"task_id": task.id, "outcome": "error", "error": f"image build: {exc}",
                "node": node_here()}
    verdict = Rewarder(local, image, run_id).grade(diff).to_dict()
    return {**verdict, "node": node_here()}


def _lost(task: Task, why: str, history: list[str]) -> dict[str, Any]:
    """The verdict of a grading that never came back: an infrastructure error (never
    cached, so a re-run grades it again)."""
    return {"task_id": task.id, "outcome": "error", "error": why, "infra": True,
            "resolved": False, "reward": 0.0, "node": None, "infra_errors": history}


def graded_on_ray(diffs: list[tuple[Task, str]], *, address: str | None = "auto",
                  run_id: str = PROCESS_RUN_ID, registry: str | None = None,
                  say: Callable[[str], None] = print) -> Iterator[tuple[int, dict[str, Any]]]:
    """(index into `diffs`, verdict) for every diff, in the order they finish, graded over
    the healthy nodes of the cluster at `address`."""
    ray = connect(address)
    from ray.exceptions import RayError, RayTaskError
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    placement = Placement.surveyed(ray, address, bool(diffs), say)
    grade = ray.remote(num_cpus=0, max_retries=0)(grade_on_node)
    todo: deque[tuple[int, list[str]]] = deque((i, []) for i in range(len(diffs)))
    shipped: dict[str, Any] = {}  # task id → its packed repository in Ray's object store
    unfinished = Counter(task.id for task, _ in diffs)  # gradings per task still to come
    running: dict[Any, tuple[int, list[str], str]] = {}

    def submit() -> None:
        while todo and (node := placement.pick()) is not None:
            index, history = todo.popleft()
            task, diff = diffs[index]
            if task.id not in shipped:
                shipped[task.id] = ray.put(pack_repo(task))
            ref = grade.options(
                resources={SLOT_RESOURCE: 1},
                scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
            ).remote(task, shipped[task.id], diff, run_id, registry)
            placement.free[node] -= 1
            running[ref] = (index, history, node)

    try:
        submit()
        while running:
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in ready:
                index, history, node = running.pop(ref)
                task = diffs[index][0]
                if node in placement.free:
                    placement.free[node] += 1
                try:
                    verdict: dict[str, Any] = ray.get(ref)
                except RayTaskError as exc:  # bashenv's own code failed on the node
                    verdict = _lost(task, str(exc).splitlines()[-1], history)
                except RayError as exc:  # the worker or its node died: nothing came back
                    history = [*history, placement.lost(ray, node, exc, "gradings", say)]
                    if len(history) <= LOST_NODE_RETRIES:
                        todo.appendleft((index, history))
                        continue
                    verdict = _lost(task, history[-1], history)
                unfinished[task.id] -= 1
                if not unfinished[task.id]:
                    shipped.pop(task.id, None)
                yield index, {**verdict, "infra_errors": history}
            if todo and not placement.free:
                raise BashenvError("every node of the Ray cluster was lost; re-run to resume")
            submit()
    except BaseException:  # includes the consumer closing the generator early
        for ref in running:  # their workers die, and their switches remove the containers
            ray.cancel(ref, force=True)
        raise


def grade_on_ray(diffs: list[tuple[Task, str]], *, address: str | None = "auto",
                 run_id: str = PROCESS_RUN_ID, registry: str | None = None,
                 say: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Verdicts for (task, diff) pairs, in order, graded over the healthy nodes of the
    cluster (see graded_on_ray)."""
    verdicts: dict[int, dict[str, Any]] = dict(
        graded_on_ray(diffs, address=address, run_id=run_id, registry=registry, say=say))
    return [verdicts[i] for i in range(len(diffs))]
