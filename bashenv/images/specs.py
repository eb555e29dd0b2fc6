"""The sandbox a task asks for: its image, limits and policy as a back-end-neutral spec.

It lives with the images (which know tasks and their images), so that the sandbox room
knows nothing of tasks.
"""

from __future__ import annotations

from typing import Any

from bashenv.sandbox.spec import PROCESS_RUN_ID, SEED_DIR, SandboxSpec
from bashenv.task.model import Task


def spec_for_task(task: Task, image: str, role: str, run_id: str = PROCESS_RUN_ID,
                  **overrides: Any) -> SandboxSpec:
    """The sandbox a task's limits and policy ask for; `role` is agent or grader."""
    limits, policy = task.limits, task.sandbox
    fields: dict[str, Any] = {
        "image": image, "workdir": task.workdir, "memory": limits.memory, "cpus": limits.cpus,
        "pids": limits.pids, "file_size_mb": limits.file_size_mb, "run_id": run_id,
        "disk_mb": limits.disk_mb, "seed": SEED_DIR,
        "network": policy.network, "runtime": policy.runtime,
        "user": "" if policy.user == "root" else policy.user,
        "labels": {"bashenv.role": role, "bashenv.task": task.id},
    }
    return SandboxSpec(**{**fields, **{k: v for k, v in overrides.items() if v is not None}})
