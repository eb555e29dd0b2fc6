"""bashenv's cache directory on this host, and locks between processes taken on files there."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_dir() -> Path:
    """$BASHENV_CACHE, else ~/.cache/bashenv (made when missing)."""
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
