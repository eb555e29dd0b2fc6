"""`bashenv run --ray`: whole episodes as Ray tasks, one sandbox slot each, on the nodes
whose Docker engine answers; the driver alone writes the results file.

The driver places each episode on the healthy node with the most free slots (a hard node
affinity, plus one SLOT_RESOURCE so Ray itself never oversubscribes a node shared with
other jobs). An episode whose node or worker dies returns nothing: the driver puts it back
in the queue for another node, so a result is written once, when it arrives, and never
twice. The worker that ran it held its containers' dead-man's switches, so they went
with it.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bashenv.agents import Agent, agent_config, config_hash
from bashenv.cluster.images import ensure_image
from bashenv.cluster.nodes import SLOT_RESOURCE, Node, connect, node_here, survey
from bashenv.cluster.ship import pack_repo, unpack_repo
from bashenv.errors import BashenvError
from bashenv.runner import INFRA_ERROR, Plan, ResultsFile, run_episode, run_paths, task_hash
from bashenv.sandbox import PROCESS_RUN_ID
from bashenv.task import Task

LOST_NODE_RETRIES = 3  # times an episode is rescheduled after its node or worker died


def episode_on_node(task: Task, shipped: tuple[str, bytes], make_agent: Callable[[], Agent],
                    run_id: str, registry: str | None,
                    settings: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Runs on a node: the task's repository unpacked, its image pulled or built, one
    episode. Returns the record (saying where it ran and what the images cost) and the
    episode's trajectory files, which the driver stores beside the results."""
    started = time.monotonic()
    commit, packed = shipped
    local = unpack_repo(task, commit, packed)
    images: dict[str, Any]
    try:
        _, images = ensure_image(local, registry)
    except BashenvError as exc:  # recorded as this task's error (run_episode would say so too)
        images = {"error": str(exc)}
    image_seconds = round(time.monotonic() - started, 3)
    with tempfile.TemporaryDirectory(prefix="bashenv-traj-") as tmp:
        record = run_episode(local, make_agent(), run_id, trajectories=Path(tmp),
                             relative_to=Path(tmp), agent_settings=settings, commit=commit)
        files = {str(f.relative_to(tmp)): f.read_bytes()
                 for f in Path(tmp).rglob("*") if f.is_file()}
    record.update(task_hash=task_hash(task), node=node_here(), images=images,
                  image_seconds=image_seconds)
    return record, files


def _store_files(record: dict[str, Any], files: dict[str, bytes], run_dir: Path,
                 results: Path) -> None:
    """The episode's trajectory and cast under <run dir>/trajectories, as locally."""
    for name, data in files.items():
        target = run_dir / "trajectories" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    for key in ("trajectory", "cast"):
        if record.get(key):
            record[key] = os.path.relpath(run_dir / "trajectories" / record[key], results.parent)


class Placement:
    """Free slots per healthy node; the driver's view, refreshed when a node is lost."""

    def __init__(self, nodes: list[Node]) -> None:
        self.free = {n.id: n.slots for n in nodes if n.ok}
        self.hosts = {n.id: n.host for n in nodes}

    def pick(self) -> str | None:
        node = max(self.free, key=lambda n: self.free[n], default=None)
        return node if node is not None and self.free[node] > 0 else None

    def drop(self, node: str) -> None:
        self.free.pop(node, None)

    def lost(self, ray: Any, node: str, exc: Exception, what: str,
             say: Callable[[str], None]) -> str:
        """A Ray error that brought nothing back from `node`: the node is dropped when it
        is gone (said, with where its `what` go now); returns the line for the history."""
        from ray.exceptions import NodeDiedError, TaskUnschedulableError

        if isinstance(exc, NodeDiedError | TaskUnschedulableError) or not node_alive(ray, node):
            self.drop(node)
            say(f"node {node[:12]} ({self.hosts.get(node, '?')}) lost; its {what} go to other nodes")
        return f"{type(exc).__name__} on node {node[:12]}"

    @classmethod
    def surveyed(cls, ray: Any, address: str | None, needed: bool,
                 say: Callable[[str], None]) -> Placement:
        """The cluster's healthy nodes (each excluded one said, with why); an error when
        work is `needed` and no node can run sandboxes."""
        nodes = survey(ray)
        for seen in nodes:
            if not seen.ok:
                say(f"node {seen.id[:12]} ({seen.host}) excluded: {seen.reason}")
        placement = cls(nodes)
        if needed and not placement.free:
            raise BashenvError(f"no node of the Ray cluster at {address!r} can run sandboxes "
                               f"({len(nodes)} node(s) seen; reasons above)")
        return placement


def node_alive(ray: Any, node: str) -> bool:
    return any(n["NodeID"] == node and n.get("Alive") for n in ray.nodes())


def run_on_ray(tasks: list[Task], make_agent: Callable[[], Agent], results: Path, *,
               address: str | None = "auto", run_id: str | None = None,
               registry: str | None = None, infra_retries: int = 1,
               on_done: Callable[[dict[str, Any]], None] | None = None,
               on_plan: Callable[[Plan], None] | None = None,
               say: Callable[[str], None] = print, **_: Any) -> list[dict[str, Any]]:
    """Run every task without a matching record in `results` (a .jsonl file or a run
    directory) on the cluster at `address`; returns the current record of every task, as
    `run_benchmark` does (`workers` and the like are ignored: the slots decide)."""
    ray = connect(address)
    from ray.exceptions import RayError, RayTaskError
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    run_id = run_id or f"{PROCESS_RUN_ID}-{uuid.uuid4().hex[:6]}"
    results, run_dir = run_paths(results)
    store = ResultsFile(results)
    settings = getattr(make_agent, "config", None)
    first = make_agent()
    agent_name = first.name
    config = agent_config(first, settings)
    config_key = config_hash(first.name, config)
    identity = {"agent_config": config, "agent_config_hash": config_key}
    hashes = {t.id: task_hash(t) for t in tasks}
    plan = store.plan(agent_name, config_key, hashes)
    if on_plan is not None:
        on_plan(plan)
    # (task, infrastructure retries, reschedules after a lost node, what went wrong)
    todo: deque[tuple[Task, int, int, list[str]]] = deque(
        (task, 0, 0, []) for task in tasks if task.id in set(plan.todo))
    placement = Placement.surveyed(ray, address, bool(todo), say)
    say(f"{len(todo)} episode(s) on {len(placement.free)} node(s), "
        f"{sum(placement.free.values())} sandbox slot(s)")
    episode = ray.remote(num_cpus=0, max_retries=0)(episode_on_node)
    shipped: dict[str, Any] = {}  # task id → its packed repository, from first send to result
    running: dict[Any, tuple[Task, int, int, list[str], str]] = {}

    def submit() -> None:
        while todo and (node := placement.pick()) is not None:
            task, infra_tries, lost_tries, history = todo.popleft()
            if task.id not in shipped:
                shipped[task.id] = ray.put(pack_repo(task))
            ref = episode.options(
                resources={SLOT_RESOURCE: 1},
                scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
            ).remote(task, shipped[task.id], make_agent, run_id, registry, settings)
            placement.free[node] -= 1
            running[ref] = (task, infra_tries, lost_tries, history, node)

    try:
        submit()
        while running:
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in ready:
                task, infra_tries, lost_tries, history, node = running.pop(ref)
                if node in placement.free:
                    placement.free[node] += 1
                try:
                    record, files = ray.get(ref)
                    _store_files(record, files, run_dir, results)
                except RayTaskError as exc:  # bashenv's own code failed on the node
                    record = {"task_id": task.id, "agent": agent_name, "outcome": "error",
                              "reward": 0.0, "resolved": False, "steps": 0, "verdict": None,
                              "seconds": 0.0, "task_hash": hashes[task.id], **identity,
                              "error": str(exc).splitlines()[-1]}
                except RayError as exc:  # the node or its worker died: nothing was recorded
                    history = [*history, placement.lost(ray, node, exc, "episodes", say)]
                    if lost_tries < LOST_NODE_RETRIES:
                        todo.appendleft((task, infra_tries, lost_tries + 1, history))
                        continue
                    record = {"task_id": task.id, "agent": agent_name, "outcome": INFRA_ERROR,
                              "reward": 0.0, "resolved": False, "steps": 0, "verdict": None,
                              "seconds": 0.0, "task_hash": hashes[task.id], **identity,
                              "error": history[-1]}
                if record["outcome"] == INFRA_ERROR and infra_tries < infra_retries:
                    todo.append((task, infra_tries + 1, lost_tries, [*history, record["error"]]))
                    continue
                record.update(attempts=1 + infra_tries + lost_tries, infra_errors=history,
                              driver=socket.gethostname())
                shipped.pop(task.id, None)  # its last attempt: Ray may free the repository
                store.append(record)
                if on_done is not None:
                    on_done(record)
            if todo and not placement.free:
                raise BashenvError("every node of the Ray cluster was lost; re-run to resume")
            submit()
    except BaseException:
        for ref in running:  # their workers die, and their switches remove the containers
            ray.cancel(ref, force=True)
        raise
    current = store.matching(agent_name, config_key, hashes)
    return [current[t] for t in sorted(current)]
