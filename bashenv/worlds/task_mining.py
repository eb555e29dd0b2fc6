"""Functions mined from tasks' repositories at their base commits, remembered per git blob.

Parsing is most of the cost (20 s for the 26 commits of the SWE-bench sample), and tasks
of one repository share most files, so what each blob gave (often nothing) is kept on
disk per source, under $BASHENV_CACHE/halt-mined-v{CACHE_VERSION}/: another env, process
or run reads only the trees. A blob's content never changes; CACHE_VERSION changes when
what is mined does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from bashenv.task.model import Task
from bashenv.worlds.mining import Mined, Param, blob_text, mine, python_blobs, tree_at

CACHE_VERSION = 2  # bumped whenever what is mined changes
Cache = dict[str, list[dict[str, Any]]]  # blob sha -> what mining it gave


def mine_tasks(tasks: Iterable[Task]) -> list[Mined]:
    """Every minable function of the tasks' repositories at their base commits, each
    distinct source once (the first task that has it names its origin)."""
    from bashenv.task.source import resolve_commit

    seen: set[str] = set()
    found: dict[str, Mined] = {}
    caches: dict[str, Cache] = {}
    changed: set[str] = set()
    for task in tasks:
        url, sha = resolve_commit(task)
        cache = caches.setdefault(url, _load(url))
        origin = f"{task.id}@{sha[:12]}"
        with _repository(task, url, sha) as (git_dir, commit):
            for blob in python_blobs(tree_at(git_dir, commit)):
                if blob.hexsha in seen:
                    continue
                seen.add(blob.hexsha)
                if blob.hexsha not in cache:
                    text = blob_text(blob)
                    cache[blob.hexsha] = [] if text is None else \
                        [dataclasses.asdict(m) for m in mine([(str(blob.path), text)])]
                    changed.add(url)
                for entry in cache[blob.hexsha]:
                    mined = _mined(entry, str(blob.path), origin)
                    found.setdefault(mined.source, mined)
    for url in changed:
        _save(url, caches[url])
    return list(found.values())


@contextmanager
def _repository(task: Task, url: str, sha: str) -> Iterator[tuple[str, str]]:
    """A git directory holding the commit: the local source itself, else an export."""
    if url.startswith("file://"):
        yield unquote(urlparse(url).path), sha
        return
    from bashenv.task.source import export_base_repo

    with tempfile.TemporaryDirectory(prefix="bashenv-halt-") as tmp:
        export_base_repo(task, Path(tmp, "repo"))
        yield str(Path(tmp, "repo")), "HEAD"


def _mined(entry: dict[str, Any], path: str, origin: str) -> Mined:
    return Mined(**{**entry, "path": path, "origin": origin,
                    "params": tuple(Param(**p) for p in entry["params"])})


def cache_file(url: str) -> Path:
    from bashenv.cache import cache_dir

    return cache_dir() / f"halt-mined-v{CACHE_VERSION}" / \
        (hashlib.sha256(url.encode()).hexdigest()[:20] + ".json")


def _load(url: str) -> Cache:
    try:
        data = json.loads(cache_file(url).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: mined again


def _save(url: str, cache: Cache) -> None:
    """Atomically; a writer racing another loses only what it added (mined again later)."""
    path = cache_file(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as out:
        json.dump({**_load(url), **cache}, out)
    os.replace(out.name, path)
