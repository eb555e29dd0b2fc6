"""Which bashenv images `bashenv images prune` may remove, and removing them.

An engine is often shared (CI runners, a lab server): other checkouts and other suites
keep their own bashenv images there. So, for a tasks PATH, only images this tool can
prove stale for PATH are removed:

- a task image of one of PATH's task ids whose tag is not the one that task needs now and
  that was built before the image it needs now: an older version of the same task. (An
  image of the same id built later may be another checkout's newer version: kept.)
- an environment image that such a removed image was built on, when no other image builds
  on it any more and no task of PATH needs it.

Base images are never removed that way. `everything` (`--all`) removes every bashenv
image nothing builds on any more, whoever built it. Either way an image a container uses
(in any state) stays, and so does every image something still builds on: removing the tag
of such a parent would leave it on disk untagged and only break the build cache.
The decisions are taken on a model of the engine's image graph, so that a dry run lists
exactly what a real run removes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import docker.errors

from bashenv.sandbox.engine import ENGINE_ERRORS, LABEL, client, explain

_NONE = "<none>:<none>"


@dataclass(frozen=True)
class PrunedImage:
    tag: str
    size: int  # bytes of its own, beyond the tagged image it builds on
    reason: str


@dataclass
class Pruning:
    removed: list[PrunedImage] = field(default_factory=list)  # or, in a dry run, would be
    kept: list[PrunedImage] = field(default_factory=list)  # candidates that stay, and why

    @property
    def tags(self) -> list[str]:
        return [image.tag for image in self.removed]


class _Graph:
    """The engine's images (intermediate ones included) with parents, children, tags and
    the images containers use; `remove` does what the engine's removal of a tag does."""

    def __init__(self) -> None:
        api = client().api
        self.images: dict[str, dict[str, Any]] = {i["Id"]: i for i in api.images(all=True)}
        self.tags: dict[str, list[str]] = {
            image_id: [t for t in (i.get("RepoTags") or []) if t != _NONE]
            for image_id, i in self.images.items()}
        self.by_tag = {tag: image_id for image_id, tags in self.tags.items() for tag in tags}
        self.children: dict[str, set[str]] = {image_id: set() for image_id in self.images}
        for image_id, image in self.images.items():
            if image.get("ParentId") in self.children:
                self.children[image["ParentId"]].add(image_id)
        self.in_use = {c.get("ImageID") for c in api.containers(all=True)}

    def labels(self, image_id: str) -> dict[str, str]:
        return self.images[image_id].get("Labels") or {}

    def tagged_base(self, image_id: str) -> str | None:
        """The nearest tagged ancestor: the image this one was built FROM."""
        parent = self.images[image_id].get("ParentId")
        while parent in self.images and not self.tags[parent]:
            parent = self.images[parent].get("ParentId")
        return parent if parent in self.images else None

    def own_size(self, image_id: str) -> int:
        base = self.tagged_base(image_id)
        size = int(self.images[image_id].get("Size") or 0)
        return size - int(self.images[base].get("Size") or 0) if base else size

    def blocker(self, tag: str) -> str | None:
        """Why removing `tag` must not happen (None: it may)."""
        image_id = self.by_tag[tag]
        if image_id in self.in_use:
            return "in use by a container"
        if self.children[image_id] and len(self.tags[image_id]) == 1:
            return "other images build on it"
        return None

    def remove(self, tag: str) -> None:
        """Untag; an image left without tags goes, with the untagged parents only it used."""
        image_id = self.by_tag.pop(tag)
        self.tags[image_id].remove(tag)
        while not self.tags[image_id] and not self.children[image_id] \
                and image_id not in self.in_use:
            parent: str = self.images.pop(image_id).get("ParentId") or ""
            if parent not in self.images:
                break
            self.children[parent].discard(image_id)
            image_id = parent


def prune(wanted: Mapping[str, tuple[str, ...]], everything: bool = False,
          dry_run: bool = False) -> Pruning:
    """`wanted`: task id → the image tags that task needs now (base, environment, task)."""
    graph, result = _Graph(), Pruning()
    if everything:
        candidates = [(tag, "--all") for tag, image_id in graph.by_tag.items()
                      if graph.labels(image_id).get(LABEL) == "image"]
        _remove_until_done(graph, candidates, dry_run, result)
        return result
    needed = {tag for tags in wanted.values() for tag in tags}
    stale, bases = _stale_task_images(graph, wanted, result)
    _remove_until_done(graph, stale, dry_run, result)
    # The blocker check (nothing builds on it any more) is what makes these provable.
    envs = [(tag, "the environment only older versions of PATH's tasks built on")
            for base_id in bases if base_id in graph.images for tag in graph.tags[base_id]
            if tag.startswith("bashenv/env:") and tag not in needed
            and graph.labels(base_id).get(LABEL) == "image"]
    _remove_until_done(graph, envs, dry_run, result)
    return result


def _stale_task_images(graph: _Graph, wanted: Mapping[str, tuple[str, ...]], result: Pruning
                       ) -> tuple[list[tuple[str, str]], set[str]]:
    """Older images of the same task ids, and the images they were built on."""
    stale: list[tuple[str, str]] = []
    bases: set[str] = set()
    for task_id, tags in wanted.items():
        current = graph.by_tag.get(tags[-1])
        if current is None:
            result.kept.append(PrunedImage(tags[-1], 0, f"task {task_id}: its current image is "
                                           "not built, so no older one can be told apart"))
            continue
        built = _created(current)
        if built is None:  # removed while we looked
            continue
        repository = tags[-1].rsplit(":", 1)[0]
        for tag, image_id in list(graph.by_tag.items()):
            labels = graph.labels(image_id)
            if (tag.rsplit(":", 1)[0] != repository or image_id == current
                    or labels.get(LABEL) != "image" or labels.get("bashenv.task") != task_id):
                continue
            created = _created(image_id)
            if created is None:
                continue
            if created >= built:
                result.kept.append(PrunedImage(tag, graph.own_size(image_id), "built after the "
                                               "current image (another checkout's version?)"))
                continue
            stale.append((tag, f"an older version of task {task_id}"))
            base = graph.tagged_base(image_id)
            if base is not None:
                bases.add(base)
    return stale, bases


def _remove_until_done(graph: _Graph, candidates: Iterable[tuple[str, str]], dry_run: bool,
                       result: Pruning) -> None:
    """Remove what may go, children before the images they build on (passes until none
    more can go); the rest is reported as kept, with the reason."""
    pending = dict(candidates)
    while True:
        removable = [tag for tag in pending if tag in graph.by_tag and graph.blocker(tag) is None]
        if not removable:
            break
        for tag in removable:
            size = graph.own_size(graph.by_tag[tag])
            if not dry_run:
                try:
                    client().api.remove_image(tag)
                except docker.errors.ImageNotFound:  # removed by someone else meanwhile
                    graph.remove(tag)
                    del pending[tag]
                    continue
                except ENGINE_ERRORS as exc:  # e.g. a container started on it meanwhile
                    result.kept.append(PrunedImage(tag, size, f"cannot remove: {explain(exc)}"))
                    del pending[tag]
                    continue
            graph.remove(tag)
            result.removed.append(PrunedImage(tag, size, pending.pop(tag)))
    for tag in pending:
        if tag in graph.by_tag:
            why = graph.blocker(tag) or "kept"
            result.kept.append(PrunedImage(tag, graph.own_size(graph.by_tag[tag]), why))


def _created(image_id: str) -> tuple[str, int] | None:
    """When an image was built, to the nanosecond (the listing's whole seconds cannot order
    two builds of one task in the same second); None when it no longer exists."""
    try:
        raw = client().api.inspect_image(image_id)["Created"]  # 2026-11-26T10:11:12.123456789Z
    except docker.errors.ImageNotFound:
        return None
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?", raw)
    if match is None:
        return raw, 0
    return match.group(1), int(((match.group(2) or "") + "0" * 9)[:9])
