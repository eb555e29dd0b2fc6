"""Leftover containers: found by their labels and removed (`bashenv gc`)."""

from __future__ import annotations

import contextlib
import os
import socket

import docker.errors

from bashenv.images.engine import ENGINE_ERRORS, LABEL, client


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def collect_garbage(*, everything: bool = False, run_id: str | None = None,
                    pid: int | None = None) -> list[str]:
    """Remove bashenv containers of dead runs on this host (or all, one run's, or one
    process's); returns their ids."""
    host = socket.gethostname()
    removed = []
    for box in client().containers.list(all=True, filters={"label": LABEL}):
        labels = box.labels
        if run_id is not None:
            doomed = labels.get(LABEL) == run_id
        elif pid is not None:
            doomed = labels.get("bashenv.host") == host and labels.get("bashenv.pid") == str(pid)
        elif everything:
            doomed = True
        else:
            owner = int(labels.get("bashenv.pid", "0") or 0)
            doomed = labels.get("bashenv.host") == host and (owner == 0 or not _pid_alive(owner))
        if doomed:
            try:
                box.remove(force=True)
                removed.append(box.id)
            except docker.errors.NotFound:
                pass
    with contextlib.suppress(*ENGINE_ERRORS):  # volumes of containers removed elsewhere
        client().volumes.prune(filters={"label": LABEL})
    return removed
