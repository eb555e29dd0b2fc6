"""This process's shared machinery, in one object: created on first use, renewed in a
forked child, closed at exit.

bashenv keeps per-process state: the Docker client, the registry of containers to remove
at exit, the background remover, the dead-man's-switch streams, warm pools, the thread
pool async calls run in. Each lives here as a named *part*, made by its owner module's
factory the first time it is asked for. One fork hook serves them all: a forked child
(an AsyncVectorEnv worker) gets a new, empty runtime after each part with a
`forget_in_child()` has dropped what the child must not use (sockets, threads); one exit
hook calls each part's `at_exit()`, warm pools first.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Runtime:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._parts: dict[str, Any] = {}

    def part(self, name: str, factory: Callable[[], T]) -> T:
        """The part called `name`, made by `factory` on first use (a factory that raises
        leaves nothing behind: the next call tries again)."""
        with self._lock:
            if name not in self._parts:
                self._parts[name] = factory()
            part: T = self._parts[name]
            return part

    def peek(self, name: str) -> Any:
        """The part if it was made, else None (e.g. the Docker client: was the engine used?)."""
        return self._parts.get(name)

    def drop(self, name: str) -> None:
        """Forget a part (made again on next use)."""
        with self._lock:
            self._parts.pop(name, None)

    def at_exit(self) -> None:
        with self._lock:
            parts = sorted(self._parts.values(), key=lambda p: getattr(p, "exit_order", 0))
        for part in parts:
            hook = getattr(part, "at_exit", None)
            if hook is not None:
                with contextlib.suppress(Exception):  # exit goes on whatever one part does
                    hook()

    def _forget_in_child(self) -> None:
        for part in list(self._parts.values()):
            hook = getattr(part, "forget_in_child", None)
            if hook is not None:
                with contextlib.suppress(Exception):
                    hook()


_current: Runtime | None = None
_current_lock = threading.Lock()


def runtime() -> Runtime:
    """This process's runtime (made on first use)."""
    global _current
    with _current_lock:
        if _current is None:
            _current = Runtime()
        return _current


def _at_exit() -> None:
    if _current is not None:
        _current.at_exit()


def _after_fork_in_child() -> None:
    global _current, _current_lock
    old, _current, _current_lock = _current, None, threading.Lock()
    if old is not None:
        old._forget_in_child()


atexit.register(_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
