"""Repository sources: any git URL, a path to a git repository, or a plain directory.

Every kind goes through one path: a bare mirror clone in the cache (what a GitHub URL
gets too), then the tree at the base commit is exported into a fresh one-commit repo.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import git

from bashenv.errors import TaskError
from bashenv.task.model import Task

SKIP_IN_SNAPSHOT = {".git", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
# Fixed identity and date: the same tree always gives the same commit id.
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "bashenv",
    "GIT_AUTHOR_EMAIL": "bashenv@localhost",
    "GIT_COMMITTER_NAME": "bashenv",
    "GIT_COMMITTER_EMAIL": "bashenv@localhost",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000",
}


def cache_dir() -> Path:
    root = Path(os.environ.get("BASHENV_CACHE", Path.home() / ".cache" / "bashenv"))
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextmanager
def file_lock(name: str) -> Iterator[None]:
    """A lock shared by threads and processes on this host (flock on a cache file)."""
    lock_dir = cache_dir() / "locks"
    lock_dir.mkdir(exist_ok=True)
    with open(lock_dir / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _is_url(repo: str) -> bool:
    return "://" in repo or re.match(r"^[\w.-]+@[\w.-]+:", repo) is not None


def _is_git_repo(path: Path) -> bool:
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def _snapshot_files(directory: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_IN_SNAPSHOT)
        files.extend(Path(root, n) for n in sorted(names) if not n.endswith((".pyc", ".pyo")))
    return files


def snapshot(directory: Path) -> Path:
    """A plain directory as a one-commit git repository in the cache (content-addressed)."""
    digest = hashlib.sha256()
    files = _snapshot_files(directory)
    for path in files:
        digest.update(str(path.relative_to(directory)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    target = cache_dir() / "snapshots" / digest.hexdigest()[:20]
    with file_lock(f"snapshot-{target.name}"):
        if not target.exists():
            target.parent.mkdir(exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                work = Path(tmp, "repo")
                for path in files:
                    dest = work / path.relative_to(directory)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, dest)
                _commit_tree(work)
                work.rename(target)
    return target


def _commit_tree(work: Path) -> str:
    work.mkdir(parents=True, exist_ok=True)
    repo = git.Repo.init(work, initial_branch="main")
    repo.git.add("-A", "--force")
    repo.git.commit("-q", "--allow-empty", "--no-verify", "-m", "base", env=GIT_IDENTITY)
    return repo.head.commit.hexsha


def repo_url(task: Task) -> str:
    """The URL to clone for a task: its own URL, or file:// for local paths."""
    if _is_url(task.repo):
        return task.repo
    path = (task.base_dir / task.repo).resolve()
    if not path.is_dir():
        raise TaskError(f"{task.source_file}: field 'repo': directory {path} does not exist")
    return (path if _is_git_repo(path) else snapshot(path)).as_uri()


def _mirror(url: str) -> git.Repo:
    target = cache_dir() / "git" / (hashlib.sha256(url.encode()).hexdigest()[:20] + ".git")
    if target.exists():
        return git.Repo(target)
    target.parent.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        try:
            git.Repo.clone_from(url, Path(tmp, "m.git"), mirror=True)
        except git.GitCommandError as exc:
            raise TaskError(f"cannot clone {url}: {exc.stderr.strip()}") from None
        Path(tmp, "m.git").rename(target)
    return git.Repo(target)


def resolve_commit(task: Task) -> tuple[str, str]:
    """(clone URL, full sha of base_commit); fetches when the commit is not yet known."""
    url = repo_url(task)
    with file_lock("mirror-" + hashlib.sha256(url.encode()).hexdigest()[:20]):
        mirror = _mirror(url)
        if not FULL_SHA.match(task.base_commit):
            mirror.git.fetch("--quiet", "--prune", "origin")  # refs may have moved
        try:
            return url, mirror.commit(task.base_commit).hexsha
        except (ValueError, git.BadName):
            pass
        try:
            mirror.git.fetch("--quiet", "origin")
            return url, mirror.commit(task.base_commit).hexsha
        except (ValueError, git.BadName, git.GitCommandError):
            raise TaskError(
                f"{task.source_file}: field 'base_commit': {task.base_commit!r} "
                f"is not a commit in {url}"
            ) from None


def export_base_repo(task: Task, dest: Path) -> str:
    """Write the tree at base_commit into `dest` as a fresh repository with that one commit.

    No remotes, no other refs, no history: the agent cannot dig for future fixes.
    Returns the new commit's sha.
    """
    url, sha = resolve_commit(task)
    mirror = _mirror(url)
    buffer = io.BytesIO()
    mirror.archive(buffer, treeish=sha, format="tar")
    buffer.seek(0)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=buffer) as archive:
        archive.extractall(dest, filter="tar")
    return _commit_tree(dest)
