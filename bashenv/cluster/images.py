"""Images on many nodes: each node builds what it lacks from the same recipes (tags are
content hashes, so two nodes building the same task agree and a second build is a cache
hit), or, with a registry, pulls what another node already pushed.

With a registry HOST:PORT a node first pulls the task's base, environment and task images
(all three: the env would otherwise rebuild a base it does not see), builds only what is
still missing, and pushes what it built, so the next node pulls instead of building.
"""

from __future__ import annotations

import contextlib

from bashenv.errors import ImageBuildError
from bashenv.images import TaskImage
from bashenv.images.build import build_task_image, image_tags
from bashenv.sandbox.engine import ENGINE_ERRORS, client, explain
from bashenv.task import Task


def _remote(registry: str, tag: str) -> tuple[str, str]:
    repository, _, version = tag.rpartition(":")
    return f"{registry}/{repository}", version


def _present(tag: str) -> bool:
    try:
        client().images.get(tag)
        return True
    except ENGINE_ERRORS:
        return False


def pull(registry: str, tag: str) -> bool:
    """`tag` from `registry`, tagged locally under its own name; False when it is not there."""
    repository, version = _remote(registry, tag)
    try:
        image = client().images.pull(repository, tag=version)
    except ENGINE_ERRORS:
        return False
    local_repository, _, local_version = tag.rpartition(":")
    image.tag(local_repository, local_version)
    with contextlib.suppress(*ENGINE_ERRORS):  # the registry's name is not needed locally
        client().images.remove(f"{repository}:{version}", noprune=True)
    return True


def push(registry: str, tag: str) -> None:
    repository, version = _remote(registry, tag)
    api = client().api
    try:
        api.tag(tag, repository, version)
        for event in api.push(repository, tag=version, stream=True, decode=True):
            if "error" in event:
                raise ImageBuildError(f"pushing {tag} to {registry} failed: {event['error']}")
    except ENGINE_ERRORS as exc:
        raise ImageBuildError(f"pushing {tag} to {registry} failed: {explain(exc)}") from None
    finally:
        with contextlib.suppress(*ENGINE_ERRORS):
            api.remove_image(f"{repository}:{version}", noprune=True)


def ensure_image(task: Task, registry: str | None = None) -> tuple[TaskImage, dict[str, int]]:
    """The task's image on this node; returns it and counts of images pulled, built, pushed."""
    counts = {"pulled": 0, "built": 0, "pushed": 0}
    tags = image_tags(task)
    if registry:
        for tag in tags:
            if not _present(tag) and pull(registry, tag):
                counts["pulled"] += 1
    missing = [tag for tag in tags if not _present(tag)]
    image, built = build_task_image(task)
    counts["built"] = built
    if registry:
        for tag in missing:
            push(registry, tag)
            counts["pushed"] += 1
    return image, counts
