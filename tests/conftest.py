"""Shared fixtures. Everything that touches containers uses the real Docker engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from bashenv.images import client, ensure_task_image
from bashenv.images.engine import LABEL
from bashenv.task import Task, load_tasks

ROOT = Path(__file__).resolve().parents[1]
TASKS_DIR = ROOT / "tasks"


@pytest.fixture(scope="session", autouse=True)
def no_leaked_containers():
    """After the whole suite, no container (or container volume) labelled bashenv may exist."""
    yield
    left = client().containers.list(all=True, filters={"label": LABEL})
    for box in left:
        box.remove(force=True)
    assert not left, f"{len(left)} bashenv container(s) leaked: {[b.name for b in left]}"
    volumes = client().volumes.list(filters={"label": LABEL})
    for volume in volumes:
        volume.remove(force=True)
    assert not volumes, f"{len(volumes)} bashenv volume(s) leaked"


@pytest.fixture(scope="session")
def tasks() -> dict[str, Task]:
    return {t.id: t for t in load_tasks(TASKS_DIR)}


@pytest.fixture(scope="session")
def textkit(tasks: dict[str, Task]) -> Task:
    return tasks["textkit-truncate-width"]


@pytest.fixture(scope="session")
def textkit_image(textkit: Task):
    return ensure_task_image(textkit)


@pytest.fixture(scope="session")
def base_image(textkit_image) -> str:
    """The task image doubles as a plain Debian+Python box for shell tests."""
    return textkit_image.tag
