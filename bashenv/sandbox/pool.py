"""A warm pool: containers (with or without a running shell) started ahead of need,
each handed out once.

Containers are keyed by their SandboxSpec; `acquire` returns a ready one at once (or
starts one when none is ready) and asks for a replacement in the background. A handed-out
container belongs to its taker, who destroys it: nothing is ever reused across episodes.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from bashenv.errors import BashenvError
from bashenv.sandbox.container import Container, SandboxSpec
from bashenv.sandbox.shell import BashSession

log = logging.getLogger("bashenv.pool")
_POOLS: weakref.WeakSet[WarmPool] = weakref.WeakSet()
_Entry = tuple[Container, BashSession | None]


class WarmPool:
    def __init__(self, size: int = 2, workers: int = 2) -> None:
        """`size`: ready containers kept per spec; `workers`: parallel container starts."""
        self.size = size
        self._ready: dict[tuple[object, bool], deque[_Entry]] = {}
        self._starting: dict[tuple[object, bool], int] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._workers = workers
        self._starter = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bashenv-pool")
        atexit.register(self.close)
        _POOLS.add(self)

    def _forget_after_fork(self) -> None:
        # A forked child (a vector-env worker) must not hand out its parent's containers.
        self._ready, self._starting, self._lock = {}, {}, threading.Lock()
        self._starter = ThreadPoolExecutor(max_workers=self._workers,
                                           thread_name_prefix="bashenv-pool")

    def acquire(self, spec: SandboxSpec) -> Container:
        """A started container for `spec`: warm when one is ready, else started now."""
        return self._take(spec, with_shell=False)[0]

    def acquire_with_shell(self, spec: SandboxSpec) -> tuple[Container, BashSession]:
        """A started container with its shell already running (the agent's sandbox)."""
        box, shell = self._take(spec, with_shell=True)
        return box, shell or BashSession(box)

    def prefill(self, spec: SandboxSpec, with_shell: bool = False) -> None:
        """Start sandboxes in the background until `size` are ready or starting."""
        key = (spec.key(), with_shell)
        with self._lock:
            if self._closed:
                return
            missing = self.size - len(self._ready.get(key, ())) - self._starting.get(key, 0)
            self._starting[key] = self._starting.get(key, 0) + max(0, missing)
        for _ in range(max(0, missing)):
            self._starter.submit(self._start_one, spec, with_shell)

    def ready(self, spec: SandboxSpec, with_shell: bool = False) -> int:
        with self._lock:
            return len(self._ready.get((spec.key(), with_shell), ()))

    def _take(self, spec: SandboxSpec, with_shell: bool) -> _Entry:
        with self._lock:
            queue = self._ready.get((spec.key(), with_shell))
            entry = queue.popleft() if queue else None
        self.prefill(spec, with_shell)
        return entry if entry is not None else (Container(spec), None)

    def _start_one(self, spec: SandboxSpec, with_shell: bool) -> None:
        key = (spec.key(), with_shell)
        entry: _Entry | None = None
        try:
            box = Container(spec)
            try:
                entry = (box, BashSession(box) if with_shell else None)
            except BashenvError:
                box.remove()
                raise
        except BashenvError as exc:
            log.warning("warm pool: cannot start a sandbox: %s", exc)
        with self._lock:
            self._starting[key] -= 1
            if entry is not None and not self._closed:
                self._ready.setdefault(key, deque()).append(entry)
                entry = None
        if entry is not None:  # closed while starting
            entry[0].remove()

    def close(self) -> None:
        """Stop refilling and remove every ready container. Idempotent."""
        with self._lock:
            self._closed = True
            boxes = [box for queue in self._ready.values() for box, _ in queue]
            self._ready.clear()
        self._starter.shutdown(wait=True, cancel_futures=True)
        for box in boxes:
            box.remove()


_SHARED: WarmPool | None = None
_SHARED_LOCK = threading.Lock()


def shared_pool(size: int) -> WarmPool | None:
    """The process-wide pool (None when `size` is 0); grows to the largest size asked for."""
    global _SHARED
    if size <= 0:
        return None
    with _SHARED_LOCK:
        if _SHARED is None or _SHARED._closed:
            _SHARED = WarmPool(size)
        _SHARED.size = max(_SHARED.size, size)
        return _SHARED


def close_all_pools() -> None:
    """Close every pool of this process (as at exit), e.g. before checking for leftovers."""
    for pool in list(_POOLS):
        pool.close()


def _after_fork_in_child() -> None:
    global _SHARED
    _SHARED = None
    for pool in list(_POOLS):
        pool._forget_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
