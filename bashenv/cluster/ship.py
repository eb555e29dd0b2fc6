"""Tasks travel to nodes with their repository: no node clones from the internet.

The driver packs the one commit a task needs (its tree, depth 1) into a small bare
repository and ships it with the task; the node unpacks it into its cache and points the
task at it, with base_commit as the full sha. The task image's tag hashes that same sha,
so every node, and a registry, agree on the tag.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from pathlib import Path

from bashenv.cache import cache_dir, file_lock
from bashenv.task import Task
from bashenv.task.source import UPLOAD_PACK, resolve_commit


def pack_repo(task: Task) -> tuple[str, bytes]:
    """(sha, a tar of a bare repository holding just that commit) for `task`."""
    url, sha = resolve_commit(task)
    with tempfile.TemporaryDirectory(prefix="bashenv-ship-") as tmp:
        bare = Path(tmp, "repo.git")
        subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
        subprocess.run(["git", "-C", str(bare), "fetch", "-q", "--depth=1",
                        f"--upload-pack={UPLOAD_PACK}", url, sha], check=True,
                       capture_output=True)
        # A branch pointing at the commit keeps it reachable for later fetches.
        subprocess.run(["git", "-C", str(bare), "update-ref", "refs/heads/main", sha], check=True)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            archive.add(bare, arcname="repo.git")
        return sha, buffer.getvalue()


def unpack_repo(task: Task, sha: str, packed: bytes) -> Task:
    """`task` pointing at its shipped repository, unpacked once per node and commit."""
    target = cache_dir() / "shipped" / f"{sha}.git"
    with file_lock(f"shipped-{sha}"):
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                with tarfile.open(fileobj=io.BytesIO(packed)) as archive:
                    archive.extractall(tmp, filter="tar")
                Path(tmp, "repo.git").rename(target)
    moved = task.model_copy(update={"repo": str(target), "base_commit": sha})
    moved._source_file = task.source_file  # {file:} texts are loaded; kept for messages
    return moved
