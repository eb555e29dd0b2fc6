"""Nodes of a Ray cluster as bashenv sees them: how many sandboxes each may hold, and
whether its Docker engine answers.

Each node advertises its sandbox slots as a Ray custom resource (SLOT_RESOURCE); every
episode or sandbox holds one slot, so Ray never puts more on a node than it has. A node
starts with `ray start ... --resources "$(bashenv cluster resources)"`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

from bashenv.errors import BashenvError

SLOT_RESOURCE = "bashenv_sandbox"
# One slot: a share of half a core and 2 GiB of memory. Episodes mostly wait (on an LLM,
# on tests), and a task's cpus/memory limits are caps, not reservations, so a core carries
# two; memory is what runs out first on a big node.
CPU_PER_SLOT = 0.5
GIB_PER_SLOT = 2.0
ADDRESS_ENV = "BASHENV_RAY_ADDRESS"  # where `backend="ray"` connects (default: auto)


def default_slots(cores: int | None = None, memory_gib: float | None = None) -> int:
    """Sandbox slots for a node of `cores` and `memory_gib` (this machine's when None);
    BASHENV_SLOTS overrides."""
    if os.environ.get("BASHENV_SLOTS"):
        try:
            return max(0, int(os.environ["BASHENV_SLOTS"]))
        except ValueError:
            raise BashenvError(f"BASHENV_SLOTS={os.environ['BASHENV_SLOTS']!r} is not a "
                               "whole number of sandbox slots") from None
    cores = cores or os.cpu_count() or 1
    if memory_gib is None:
        memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return max(1, int(min(cores / CPU_PER_SLOT, memory_gib / GIB_PER_SLOT)))


def resources_json(slots: int | None = None) -> str:
    """The `--resources` value for `ray start` on this node."""
    return json.dumps({SLOT_RESOURCE: default_slots() if slots is None else slots})


def connect(address: str | None = None) -> Any:
    """Ray, connected to the cluster at `address` ("auto": the one this machine belongs
    to); imported here so that bashenv runs without Ray installed."""
    try:
        import ray
    except ImportError:
        raise BashenvError("the Ray back-end needs Ray: pip install 'bashenv[ray]'") from None
    if not ray.is_initialized():
        address = address or os.environ.get(ADDRESS_ENV) or "auto"
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise BashenvError(f"cannot connect to a Ray cluster at {address!r}: {exc}") from None
    return ray


@dataclass
class Node:
    id: str
    host: str
    slots: int
    ok: bool
    reason: str = ""


def _probe() -> dict[str, Any]:
    """Runs on a node: does its Docker engine answer?"""
    import ray

    from bashenv.errors import DockerUnavailable
    from bashenv.sandbox.engine import client

    found = {"id": ray.get_runtime_context().get_node_id(), "host": socket.gethostname()}
    try:
        client().ping()
        return {**found, "ok": True, "reason": ""}
    except DockerUnavailable as exc:
        return {**found, "ok": False, "reason": str(exc)}
    except Exception as exc:
        return {**found, "ok": False, "reason": f"{type(exc).__name__}: {exc}"}


def survey(ray: Any, timeout: float = 60.0) -> list[Node]:
    """Every live node with sandbox slots, each probed on the node itself (a task pinned
    there). A node without the slot resource, or whose engine does not answer, is listed
    with ok=False and the reason."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0, max_retries=0)(_probe)
    nodes: list[Node] = []
    pending = {}
    for info in ray.nodes():
        if not info.get("Alive"):
            continue
        node_id, slots = info["NodeID"], int(info.get("Resources", {}).get(SLOT_RESOURCE, 0))
        if slots < 1:
            nodes.append(Node(node_id, info.get("NodeManagerHostname", "?"), 0, False,
                              f"no {SLOT_RESOURCE} resource (start it with "
                              f"ray start ... --resources '{resources_json()}')"))
            continue
        strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
        ref = probe.options(scheduling_strategy=strategy,
                            resources={SLOT_RESOURCE: 0.001}).remote()
        pending[ref] = (node_id, info.get("NodeManagerHostname", "?"), slots)
    ready, late = ray.wait(list(pending), num_returns=len(pending), timeout=timeout)
    for ref in ready:
        node_id, host, slots = pending[ref]
        try:
            answer = ray.get(ref)
            nodes.append(Node(node_id, host, slots, answer["ok"], answer["reason"]))
        except Exception as exc:  # the node died while probed
            nodes.append(Node(node_id, host, slots, False, f"probe failed: {exc}"))
    for ref in late:
        node_id, host, slots = pending[ref]
        ray.cancel(ref, force=True)
        nodes.append(Node(node_id, host, slots, False, f"no answer to the probe in {timeout:g}s"))
    return nodes


def node_here() -> dict[str, str]:
    """Which node this code runs on (for records: a result says where it ran)."""
    import ray

    context = ray.get_runtime_context()
    return {"node_id": context.get_node_id(), "host": socket.gethostname(),
            "worker_pid": str(os.getpid())}
