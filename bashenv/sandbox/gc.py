"""Leftover containers and volumes: found by their labels and removed (`bashenv gc`).

Containers die with their owner (lifecycle.py), so gc is rarely needed, and it never
guesses who is alive from host names and pids: those repeat across pid namespaces (two
CI jobs in containers on one engine), where such a guess removes another job's live
containers. By default it removes only what it can prove abandoned:

- a container with a dead-man's switch that is running has a live owner: the switch's
  process exits when its owner's stream closes. Never touched;
- one that has exited (or is `dead`) ran its course: the engine was to remove it itself
  (auto-remove) and did not finish, e.g. it stopped mid-way;
- one created but never started, longer ago than CREATED_GRACE: a live owner starts its
  container two API calls after creating it, each bounded by the client's timeout, and
  removes it when that fails; so its owner died in between (or is stopped, and its start
  will fail with an error);
- volumes with the bashenv label that no container uses: each is an anonymous volume made
  for one container, never attached again;
- never the shared tools volumes (`bashenv.tools`, tools.py): one per bashenv version and
  engine, a few KB, mounted by every agent box of every process using that version, so
  "unused right now" does not prove "abandoned". `everything` removes the unused ones
  (a process that still counts on one then fails its next box start, loudly, and the
  following start makes the volume again).

Containers without a switch (made by older versions of bashenv) have no provable owner
state and are kept. `everything=True` (`--all`) removes every container in scope, live
ones too, whoever owns them: explicit, and dangerous on a shared engine.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field, replace
from typing import Any

import docker.errors

from bashenv.sandbox.engine import ENGINE_ERRORS, LABEL, client, explain
from bashenv.sandbox.lifecycle import DEADMAN_LABEL, OWNER_LABEL
from bashenv.sandbox.tools import TOOLS_LABEL

CREATED_GRACE = 600.0  # seconds; well beyond two API calls at the client's 120 s timeout


@dataclass(frozen=True)
class Leftover:
    id: str
    run_id: str
    state: str
    reason: str


@dataclass
class Garbage:
    """What gc removed (or, in a dry run, would remove), and what it kept and why."""

    containers: list[Leftover] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    kept: list[Leftover] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [box.id for box in self.containers]


def _verdict(box: dict[str, Any], everything: bool, owner: str | None,
             created_grace: float, now: float) -> str | None:
    """Why `box` (a sparse listing entry) may be removed; None to keep it."""
    labels = box.get("Labels") or {}
    state = box.get("State", "")
    if owner is not None:
        return "made by this process" if labels.get(OWNER_LABEL) == owner else None
    if everything:
        return f"--all ({state})"
    if DEADMAN_LABEL not in labels:
        return None
    if state in ("exited", "dead"):
        return "stopped; the engine's own removal did not finish"
    if state == "created" and now - float(box.get("Created", now)) > created_grace:
        return f"never started, created over {created_grace:g}s ago"
    return None


def collect_garbage(*, everything: bool = False, run_id: str | None = None,
                    owner: str | None = None, dry_run: bool = False,
                    created_grace: float = CREATED_GRACE) -> Garbage:
    """Remove provably abandoned bashenv containers (of one run when `run_id` is given) and
    unused bashenv volumes; `everything`: every container in scope, live ones too; `owner`:
    every container of that owner token (a process cleaning up after itself).
    `dry_run` removes nothing and reports the same lists."""
    label = f"{LABEL}={run_id}" if run_id is not None else LABEL
    wanted = [label] if owner is None else [label, f"{OWNER_LABEL}={owner}"]
    api = client().api
    garbage = Garbage()
    now = time.time()
    # Sparse listing: nothing is inspected, so a container removed meanwhile cannot fail it.
    for box in api.containers(all=True, filters={"label": wanted}):
        labels = box.get("Labels") or {}
        found = Leftover(box["Id"], labels.get(LABEL, ""), box.get("State", ""), "")
        reason = _verdict(box, everything, owner, created_grace, now)
        if reason is None:
            if owner is None:
                garbage.kept.append(replace(found, reason=_why_kept(found.state, labels)))
            continue
        if not dry_run:
            try:
                api.remove_container(found.id, force=True, v=True)
            except docker.errors.NotFound:
                continue  # gone meanwhile (removed by the engine or its owner)
            except ENGINE_ERRORS as exc:
                if "already in progress" not in str(exc):
                    garbage.kept.append(replace(found, reason=f"cannot remove: {explain(exc)}"))
                    continue
        garbage.containers.append(replace(found, reason=reason))
    if owner is None:
        garbage.volumes = _unused_volumes(label, dry_run)
    if everything and owner is None and run_id is None:
        garbage.volumes += _unused_tool_volumes(dry_run)
    return garbage


def _why_kept(state: str, labels: dict[str, str]) -> str:
    if DEADMAN_LABEL not in labels:
        return "no dead-man's switch (older bashenv): whether its owner lives cannot be known"
    if state == "created":
        return "created recently: its owner may be starting it"
    if state == "running":
        return "its owner holds its switch"
    return f"{state}: whether its owner lives cannot be known"  # paused: the switch waits


def _unused_volumes(label: str, dry_run: bool) -> list[str]:
    """Names of bashenv volumes no container uses (removed unless `dry_run`)."""
    api = client().api
    with contextlib.suppress(*ENGINE_ERRORS):
        if dry_run:
            found = api.volumes(filters={"label": label, "dangling": True}).get("Volumes") or []
            return [volume["Name"] for volume in found]
        return list(api.prune_volumes(filters={"label": label}).get("VolumesDeleted") or [])
    return []


def _unused_tool_volumes(dry_run: bool) -> list[str]:
    """Names of tools volumes no container uses (removed unless `dry_run`). Named volumes,
    so removed one by one (newer engines' prune leaves named volumes alone)."""
    api = client().api
    try:
        found = api.volumes(filters={"label": TOOLS_LABEL, "dangling": True}).get("Volumes") or []
    except ENGINE_ERRORS:
        return []
    removed = []
    for volume in found:
        try:
            if not dry_run:
                api.remove_volume(volume["Name"])
        except ENGINE_ERRORS:
            continue  # taken into use meanwhile, or removed by someone else
        removed.append(volume["Name"])
    return removed
