"""A warm pool: containers (with or without a running shell) started ahead of need,
each handed out once.

Containers are keyed by their SandboxSpec; `acquire` returns a ready one at once (or
starts one when none is ready) and asks for a replacement in the background. A handed-out
container belongs to its taker, who destroys it: nothing is ever reused across episodes.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bashenv.errors import BashenvError
from bashenv.sandbox.backend import Backend, Sandbox, get_backend
from bashenv.sandbox.runtime import runtime
from bashenv.sandbox.shell import BashSession
from bashenv.sandbox.spec import SandboxSpec

log = logging.getLogger("bashenv.pool")
_Entry = tuple[Sandbox, Any]  # the sandbox, and its shell or what its opener gave (or None)
# Work done on a sandbox (and its shell) before it is handed out, e.g. tools put into it:
# in the background for warm ones, so the taker does not wait for it.
Prepare = Callable[[Sandbox, BashSession], None]
# A process started on a sandbox (no shell) before it is handed out, e.g. the grading
# script's bootstrap on its stream: an exec costs the engine 50-100 ms to start.
Opener = Callable[[Sandbox], Any]


class _Pools:
    """Every pool of this process (a runtime part): closed first at exit, and emptied in a
    forked child, which must not hand out its parent's sandboxes."""

    exit_order = -1

    def __init__(self) -> None:
        self.live: weakref.WeakSet[WarmPool] = weakref.WeakSet()

    def at_exit(self) -> None:
        for pool in list(self.live):
            pool.close()

    def forget_in_child(self) -> None:
        for pool in list(self.live):
            pool._forget_after_fork()


def _pools() -> _Pools:
    return runtime().part("pools", _Pools)


class WarmPool:
    def __init__(self, size: int = 2, workers: int = 2,
                 backend: str | Backend | None = None) -> None:
        """`size`: ready sandboxes kept per spec; `workers`: parallel starts; `backend`:
        where they run (default Docker)."""
        self.size = size
        self.backend = get_backend(backend)
        self._ready: dict[tuple[object, bool], deque[_Entry]] = {}
        self._starting: dict[tuple[object, bool], int] = {}
        self._prepare: dict[tuple[object, bool], Prepare] = {}
        self._openers: dict[tuple[object, bool], Opener] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._workers = workers
        self._starter = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bashenv-pool")
        _pools().live.add(self)

    def _forget_after_fork(self) -> None:
        self._ready, self._starting, self._lock = {}, {}, threading.Lock()
        _pools().live.add(self)  # the child's runtime is new
        self._starter = ThreadPoolExecutor(max_workers=self._workers,
                                           thread_name_prefix="bashenv-pool")

    def acquire(self, spec: SandboxSpec) -> Sandbox:
        """A started container for `spec`: warm when one is ready, else started now."""
        return self._take(spec, with_shell=False)[0]

    def acquire_opened(self, spec: SandboxSpec, opener: Opener) -> tuple[Sandbox, Any]:
        """A started container (no shell) with what `opener(box)` returned, which warm ones
        ran in the background before they were ready. One opener per spec: the first given
        is kept for the refills of that spec."""
        key = (spec.key(), False)
        with self._lock:
            self._openers.setdefault(key, opener)
        box, opened = self._take(spec, with_shell=False)
        return box, opened if opened is not None else opener(box)

    def acquire_with_shell(self, spec: SandboxSpec,
                           prepare: Prepare | None = None) -> tuple[Sandbox, BashSession]:
        """A started container with its shell already running (the agent's sandbox), on
        which `prepare` has run (warm ones: in the background, before they were ready)."""
        box, shell = self._take(spec, with_shell=True, prepare=prepare)
        if shell is None:  # started now, not warm
            shell = BashSession(box)
            if prepare is not None:
                prepare(box, shell)
        return box, shell

    def prefill(self, spec: SandboxSpec, with_shell: bool = False,
                prepare: Prepare | None = None, opener: Opener | None = None) -> None:
        """Start sandboxes in the background until `size` are ready or starting; with a
        shell, `prepare` runs on each before it counts as ready; without, `opener` (see
        acquire_opened)."""
        key = (spec.key(), with_shell)
        with self._lock:
            if opener is not None and not with_shell:
                self._openers.setdefault(key, opener)
            if prepare is not None:
                if self._prepare.get(key, prepare) is not prepare:  # ready ones had another
                    self._discard_ready(key)
                self._prepare[key] = prepare
            if self._closed:
                return
            missing = self.size - len(self._ready.get(key, ())) - self._starting.get(key, 0)
            self._starting[key] = self._starting.get(key, 0) + max(0, missing)
        for _ in range(max(0, missing)):
            self._starter.submit(self._start_one, spec, with_shell)

    def ready(self, spec: SandboxSpec, with_shell: bool = False) -> int:
        with self._lock:
            return len(self._ready.get((spec.key(), with_shell), ()))

    def _take(self, spec: SandboxSpec, with_shell: bool, prepare: Prepare | None = None) -> _Entry:
        key = (spec.key(), with_shell)
        with self._lock:
            if prepare is not None and self._prepare.get(key) is not prepare:
                self._discard_ready(key)  # prepared otherwise (or not at all)
            queue = self._ready.get(key)
            entry = queue.popleft() if queue else None
        self.prefill(spec, with_shell, prepare)
        return entry if entry is not None else (self.backend.start(spec), None)

    def _discard_ready(self, key: tuple[object, bool]) -> None:
        """Under the lock: ready sandboxes of `key` go (removed in the background)."""
        for box, _ in self._ready.pop(key, ()):
            self._starter.submit(box.remove)

    def _start_one(self, spec: SandboxSpec, with_shell: bool) -> None:
        key = (spec.key(), with_shell)
        entry: _Entry | None = None
        try:
            box = self.backend.start(spec)
            try:
                shell = BashSession(box) if with_shell else None
                prepare = self._prepare.get(key)
                if shell is not None and prepare is not None:
                    prepare(box, shell)
                opener = self._openers.get(key) if shell is None else None
                entry = (box, shell if opener is None else opener(box))
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
            entries = [entry for queue in self._ready.values() for entry in queue]
            self._ready.clear()
        self._starter.shutdown(wait=True, cancel_futures=True)
        for box, opened in entries:
            box.remove()
            close = None if isinstance(opened, BashSession) else getattr(opened, "close", None)
            if close is not None:
                close()  # what an opener gave (a stream): its socket too


class _SharedPool:
    def __init__(self) -> None:
        self.pool: WarmPool | None = None
        self.lock = threading.Lock()


def shared_pool(size: int) -> WarmPool | None:
    """The process-wide pool (None when `size` is 0); grows to the largest size asked for."""
    if size <= 0:
        return None
    shared = runtime().part("shared-pool", _SharedPool)
    with shared.lock:
        if shared.pool is None or shared.pool._closed:
            shared.pool = WarmPool(size)
        shared.pool.size = max(shared.pool.size, size)
        return shared.pool


def close_all_pools() -> None:
    """Close every pool of this process (as at exit), e.g. before checking for leftovers."""
    _pools().at_exit()
