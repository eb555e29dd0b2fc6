"""Shared fixtures. Everything that touches containers uses the real Docker engine.

The suite stays in its own lane on a shared engine: every container it starts carries a
run id that begins with this session's SUITE_RUN_ID (child processes inherit it through
BASHENV_RUN_ID), and the leak check looks at, and cleans, only those.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

SUITE_RUN_ID = os.environ.setdefault("BASHENV_RUN_ID", f"pytest-{uuid.uuid4().hex[:8]}")

# A suite started in the background by a shell without job control (`nohup ... &`) begins
# with SIGINT ignored, and every process it starts inherits that: the Ctrl-C tests
# (tests/test_interrupt.py, the shell's interrupt) would then test nothing and hang. Ctrl-C
# is Python's default again here, so children start with SIGINT at its default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import pytest  # noqa: E402  (BASHENV_RUN_ID must be set before bashenv is imported)

from bashenv.sandbox import engine  # noqa: E402
from bashenv.task import Task, load_tasks  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TASKS_DIR = ROOT / "tasks"


def rid(name: str) -> str:
    """A run id of this test session (what the leak check looks for)."""
    return f"{SUITE_RUN_ID}-{name}"


def ours(labels: dict[str, str] | None) -> bool:
    return (labels or {}).get(engine.LABEL, "").startswith(SUITE_RUN_ID)


def suite_leftovers() -> tuple[list[str], list[str]]:
    """Ids of this session's containers and names of its volumes that still exist.
    Sparse listing: a container removed while we look is simply not there."""
    api = engine.client().api
    boxes = [c["Id"] for c in api.containers(all=True, filters={"label": engine.LABEL})
             if ours(c.get("Labels"))]
    volumes = [v["Name"] for v in api.volumes(filters={"label": engine.LABEL}).get("Volumes") or []
               if ours(v.get("Labels"))]
    return boxes, volumes


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests in modules that use the engine carry the `docker` marker (see pyproject)."""
    for item in items:
        if getattr(item.module, "USES_ENGINE", True):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session", autouse=True)
def no_leaked_containers():
    """After the suite, none of the containers or volumes it started may exist. Only checked
    when the engine was used; never touches what other jobs on the engine own."""
    yield
    if not engine.engine_used():
        return
    from bashenv.sandbox.container import flush_removals
    from bashenv.sandbox.pool import close_all_pools

    close_all_pools()
    flush_removals()
    boxes, volumes = suite_leftovers()
    api = engine.client().api
    for box in boxes:
        api.remove_container(box, force=True, v=True)
    for volume in suite_leftovers()[1]:
        api.remove_volume(volume, force=True)
    assert not boxes, f"{len(boxes)} container(s) of this test session leaked: {boxes}"
    assert not volumes, f"{len(volumes)} volume(s) of this test session leaked: {volumes}"


@pytest.fixture(scope="session")
def tasks() -> dict[str, Task]:
    return {t.id: t for t in load_tasks(TASKS_DIR)}


@pytest.fixture(scope="session")
def textkit(tasks: dict[str, Task]) -> Task:
    return tasks["textkit-truncate-width"]


@pytest.fixture(scope="session")
def textkit_image(textkit: Task):
    from bashenv.images import ensure_task_image

    return ensure_task_image(textkit)


@pytest.fixture(scope="session")
def base_image(textkit_image) -> str:
    """The task image doubles as a plain Debian+Python box for shell tests."""
    return textkit_image.tag
