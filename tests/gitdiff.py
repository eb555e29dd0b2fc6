"""Real `git` for tests: diffs made by git itself, not written by hand."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path


def git(repo: Path, *args: str) -> bytes:
    """Run git in `repo` with a fixed identity and no user or system configuration."""
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": str(repo),
           "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=repo, check=True, env=env,
                          capture_output=True).stdout


def committed_copy(source: Path, repo: Path) -> Path:
    """`source` copied to `repo` and committed as one base commit."""
    shutil.copytree(source, repo)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    return repo


def git_diff(repo: Path, write: Callable[[Path], object]) -> str:
    """The `git diff --binary` of what `write(repo)` does (new files included); the
    repository is back at its base commit afterwards."""
    write(repo)
    git(repo, "add", "-A")
    diff = git(repo, "diff", "--cached", "--binary").decode("utf-8", "surrogateescape")
    git(repo, "reset", "-q", "--hard")
    git(repo, "clean", "-qfdx")
    return diff
