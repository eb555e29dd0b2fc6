"""Repository sources: any git URL, a path to a git repository, or a plain directory.

Every kind goes through one path: a bare cache repository per source (what a GitHub URL
gets too) into which only the commits tasks name are fetched (depth 1 by sha, so bare,
shallow and partial clones all serve), then the tree at the base commit is exported into
a fresh one-commit repo.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

import git

from bashenv.cache import cache_dir, file_lock
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


def _is_url(repo: str) -> bool:
    return "://" in repo or re.match(r"^[\w.-]+@[\w.-]+:", repo) is not None


def _is_git_repo(path: Path) -> bool:
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def _snapshot_files(directory: Path) -> list[Path]:
    files: list[Path] = []
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
    if not _is_git_repo(path):
        return snapshot(path).as_uri()
    return (_shadow(path) if _lacks_refs(path) else path).as_uri()


def _lacks_refs(path: Path) -> bool:
    """A bare repository copied without its empty directories (refs/): git will not open it,
    though its objects, packed-refs and shallow file are all there."""
    return not (path / ".git").exists() and not (path / "refs").is_dir()


def _shadow(path: Path) -> Path:
    """A repository git will open: `path`'s small files copied, its object store linked,
    plus an empty refs/ (for a read-only copy, which cannot be repaired in place)."""
    target = cache_dir() / "shadows" / (hashlib.sha256(str(path).encode()).hexdigest()[:20] + ".git")
    with file_lock(f"shadow-{target.name}"):
        if not target.exists():
            target.parent.mkdir(exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                work = Path(tmp, "s.git")
                work.mkdir()
                for entry in path.iterdir():  # HEAD must be a file: git rejects a link
                    if entry.is_file():
                        shutil.copyfile(entry, work / entry.name)
                    else:
                        (work / entry.name).symlink_to(entry)
                (work / "refs" / "heads").mkdir(parents=True)
                (work / "refs" / "tags").mkdir()
                work.rename(target)
    return target


# Lets a local or ssh source hand out any commit by sha, not only those its refs reach
# (GitHub's servers allow that by themselves; the option is ignored over https).
UPLOAD_PACK = "git -c uploadpack.allowAnySHA1InWant=true upload-pack"


def _cache_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:20]


def _cache_repo(url: str) -> git.Repo:
    """The bare repository caching what was fetched from `url`, one per source: every task of
    that source shares it. It is created empty and only ever fetched into (a mirror clone
    would copy the whole history, and fails on a partial clone)."""
    target = cache_dir() / "git" / (_cache_key(url) + ".git")
    if target.exists():
        return git.Repo(target)
    target.parent.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        git.Repo.init(Path(tmp, "c.git"), bare=True)
        Path(tmp, "c.git").rename(target)
    return git.Repo(target)


def _has_commit(repo: git.Repo, sha: str) -> bool:
    try:
        repo.git.cat_file("-e", f"{sha}^{{commit}}")
        return True
    except git.GitCommandError:
        return False


def _fetch_all(repo: git.Repo, url: str) -> None:
    """Every branch and tag of `url`, and its HEAD as refs/bashenv/HEAD (refs may move)."""
    repo.git.fetch("--quiet", "--force", f"--upload-pack={UPLOAD_PACK}", url,
                   "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*",
                   "+HEAD:refs/bashenv/HEAD")


def _fetch_sha(repo: git.Repo, url: str, sha: str) -> None:
    """Just that commit and its tree (depth 1): from a bare, shallow or partial clone, a
    local path or GitHub. A source that refuses to hand out a sha gets a full fetch."""
    try:
        repo.git.fetch("--quiet", "--depth=1", f"--upload-pack={UPLOAD_PACK}", url, sha)
    except git.GitCommandError:
        _fetch_all(repo, url)


def _rev(commit_ish: str) -> str:
    """A commit-ish as the cache names it: the source's HEAD is kept as refs/bashenv/HEAD."""
    return "refs/bashenv/HEAD" + commit_ish[4:] if re.match(r"^HEAD(?![\w/.-])", commit_ish) \
        else commit_ish


def resolve_commit(task: Task) -> tuple[str, str]:
    """(source URL, full sha of base_commit). A full sha fetches only that commit, once per
    cache; any other commit-ish (a branch, a tag, HEAD~1) fetches the refs, which may move."""
    url = repo_url(task)
    with file_lock("mirror-" + _cache_key(url)):
        cache = _cache_repo(url)
        sha = task.base_commit if FULL_SHA.match(task.base_commit) else None
        try:
            if sha is None:
                _fetch_all(cache, url)
            elif not _has_commit(cache, sha):
                _fetch_sha(cache, url, sha)
        except git.GitCommandError as exc:
            raise TaskError(f"{task.source_file}: field 'repo': cannot fetch from {url}: "
                            f"{exc.stderr.strip()}") from None
        try:
            if sha is None:
                return url, cache.commit(_rev(task.base_commit)).hexsha
            if _has_commit(cache, sha):
                return url, sha
        except (ValueError, git.BadName, git.GitCommandError):
            pass
        raise TaskError(
            f"{task.source_file}: field 'base_commit': {task.base_commit!r} "
            f"is not a commit in {url}"
        )


def read_at(repo: str, sha: str, path: str) -> str | None:
    """The text of `path` at commit `sha` of `repo` (a URL or a local repository path),
    through the same per-source cache as tasks (fetching only that commit); None when the
    commit has no such file."""
    url = repo if _is_url(repo) else (_shadow(Path(repo)) if _lacks_refs(Path(repo))
                                      else Path(repo)).as_uri()
    with file_lock("mirror-" + _cache_key(url)):
        cache = _cache_repo(url)
        try:
            if not _has_commit(cache, sha):
                _fetch_sha(cache, url, sha)
            return str(cache.git.show(f"{sha}:{path}"))
        except git.GitCommandError:
            return None


def export_base_repo(task: Task, dest: Path) -> str:
    """Write the tree at base_commit into `dest` as a fresh repository with that one commit.

    No remotes, no other refs, no history: the agent cannot dig for future fixes.
    Returns the new commit's sha.
    """
    url, sha = resolve_commit(task)
    buffer = io.BytesIO()
    _cache_repo(url).archive(buffer, treeish=sha, format="tar")
    buffer.seek(0)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=buffer) as archive:
        archive.extractall(dest, filter="tar")
    return _commit_tree(dest)
