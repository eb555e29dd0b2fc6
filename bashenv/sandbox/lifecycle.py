"""Containers that die with their owner, whatever kills it: a dead-man's switch.

A container's init (Docker's, which reaps zombies) runs one child, DEADMAN_COMMAND,
which reads its stdin until end-of-file and then exits; init follows it and the
container stops. That stdin is an attach stream which the owning process opens before
it starts the container and holds for the container's life (one socket per container).
The container is created with StdinOnce, so the engine closes the container's stdin when
that stream ends, and with auto-remove, so the engine deletes it, anonymous tmpfs volumes
included, once it stops. An exiting, crashing, SIGTERMed or SIGKILLed owner needs to run
nothing: the kernel closes its sockets. Hence a running bashenv container always has a
live owner, which is what `bashenv gc` relies on (gc.py).

Forked children (vector-env workers) inherit the sockets' file descriptors. A child
closes its copies at fork, without shutting the connections down: the parent's
containers then live exactly as long as the parent, and a child's exit never ends them.

This module also holds the other per-process bookkeeping of containers: the registry of
containers to remove at exit and the background remover.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
import weakref
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bashenv.sandbox.engine import ENGINE_ERRORS, LABEL, client
from bashenv.sandbox.runtime import runtime

if TYPE_CHECKING:
    from bashenv.sandbox.container import Container

# Reads stdin to its end; in every Debian-based image (coreutils is essential).
DEADMAN_COMMAND = ["dd", "of=/dev/null", "status=none"]
DEADMAN_LABEL = "bashenv.deadman"  # value "stdin": this container dies with its owner
OWNER_LABEL = "bashenv.owner"  # a random token per process: which process owns a container


def owner_token() -> str:
    """This process's owner token; a forked child gets a new one (its runtime is new), so
    it never mistakes its parent's containers for its own (pids and host names can repeat
    across pid namespaces; the token cannot)."""
    return runtime().part("owner-token", lambda: uuid.uuid4().hex)


def owner_labels(run_id: str) -> dict[str, str]:
    """Labels of a container this process owns. Pid and host are for people reading
    `docker ps`; nothing decides on them."""
    return {LABEL: run_id, OWNER_LABEL: owner_token(), DEADMAN_LABEL: "stdin",
            "bashenv.pid": str(os.getpid()), "bashenv.host": socket.gethostname()}


def deadman_options() -> dict[str, Any]:
    """Options for `containers.create`: the switch's half inside the container."""
    return {"command": DEADMAN_COMMAND, "init": True, "stdin_open": True, "auto_remove": True}


class _Switches:
    """The switches this process holds (a runtime part): a forked child closes its copies."""

    def __init__(self) -> None:
        self.live: weakref.WeakSet[DeadmanSwitch] = weakref.WeakSet()
        self.lock = threading.Lock()

    def forget_in_child(self) -> None:
        with contextlib.suppress(RuntimeError):  # a set changing under us: forget what we can
            for switch in list(self.live):
                switch._forget_in_child()


def _switches() -> _Switches:
    return runtime().part("deadman-switches", _Switches)


class DeadmanSwitch:
    """The owner's end of a container's stdin: while this process holds it, the container
    runs; when it closes, for any reason, the container stops and the engine removes it.
    Open it before starting the container, so that it never runs unheld."""

    def __init__(self, container_id: str) -> None:
        # The socket object must stay referenced: dropping it would close the stream.
        self._stream: Any = client().api.attach_socket(
            container_id, params={"stdin": 1, "stream": 1})
        switches = _switches()
        with switches.lock:
            switches.live.add(self)

    def _raw(self) -> socket.socket | None:
        raw = getattr(self._stream, "_sock", self._stream)
        return raw if isinstance(raw, socket.socket) else None

    def release(self) -> None:
        """End the stream (idempotent): the container exits and removes itself."""
        stream, raw = self._stream, self._raw()
        self._stream = None
        if stream is None:
            return
        with contextlib.suppress(OSError):
            if raw is not None:  # an explicit end, whatever else still refers to the socket
                raw.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            stream.close()
        with contextlib.suppress(OSError):
            if raw is not None:
                raw.close()

    def _forget_in_child(self) -> None:
        """In a forked child: close this process's copy of the descriptor only. No
        shutdown, which would end the parent's stream too; detached first, so that no
        object in the child later closes a descriptor number that was reused."""
        raw = self._raw()
        self._stream = None
        if raw is not None:
            with contextlib.suppress(OSError):
                os.close(raw.detach())


def exit_note(container_id: str, since: float) -> str:
    """How a container that no longer exists ended, from the engine's recent events
    (best effort: the engine keeps a bounded backlog), e.g. " (exit code 137, out of
    memory)"; "" when unknown."""
    try:
        events = client().api.events(
            since=f"{since - 1:.9f}", until=f"{time.time():.9f}", decode=True,
            filters={"container": container_id, "event": ["die", "oom"]})
        actions = [(e.get("Action"), e.get("Actor", {}).get("Attributes", {})) for e in events]
    except ENGINE_ERRORS:
        return ""
    codes = [attrs.get("exitCode") for action, attrs in actions if action == "die"]
    parts = [f"exit code {codes[-1]}"] if codes and codes[-1] is not None else []
    if any(action == "oom" for action, _ in actions):
        parts.append("out of memory")
    return f" ({', '.join(parts)})" if parts else ""


def deadman_pid(init: int, pids: list[int]) -> int | None:
    """The host pid of the switch's process among a container's `pids`: the oldest child of
    `init` running DEADMAN_COMMAND (a process the agent starts under the same name later is
    younger, so it cannot take the switch's place)."""
    wanted = ("\0".join(DEADMAN_COMMAND) + "\0").encode()
    found: list[tuple[int, int]] = []
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == init and cmdline == wanted:
            found.append((int(fields[19]), pid))  # field 22 of stat: start time
    return min(found)[1] if found else None


class _Registry:
    """Containers this process started and has not removed yet; removed at exit (a normal
    exit, Ctrl-C); the switch covers every other way to die."""

    def __init__(self) -> None:
        self._live: dict[str, Container] = {}
        self._lock = threading.Lock()

    def add(self, box: Container) -> None:
        with self._lock:
            self._live[box.id] = box

    def discard(self, box: Container) -> None:
        with self._lock:
            self._live.pop(box.id, None)

    def remove_all(self) -> None:
        with self._lock:
            boxes = list(self._live.values())
        for box in boxes:
            box.remove()

    def at_exit(self) -> None:
        self.remove_all()
        # A container whose creation answer was lost (engine restarting) is not registered:
        # find what this process made by its owner token.
        with contextlib.suppress(Exception):
            from bashenv.sandbox.gc import collect_garbage

            collect_garbage(owner=owner_token())

    def remove_stragglers(self) -> None:
        """Retry removals that failed (e.g. while the engine was restarting)."""
        with self._lock:
            boxes = [box for box in self._live.values() if box.removal_failed]
        for box in boxes:
            box.remove()



def registry() -> _Registry:
    """This process's containers still to be removed (a runtime part, emptied at exit)."""
    return runtime().part("registry", _Registry)


class _Remover:
    """Background removals, off the hot path; `flush` waits for them."""

    def __init__(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bashenv-remove")
        self.pending: set[Future[None]] = set()
        self.lock = threading.Lock()

    def submit(self, box: Container) -> None:
        future = self.executor.submit(box.remove)
        with self.lock:
            self.pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self.lock:
            self.pending.discard(future)

    def flush(self) -> None:
        with self.lock:
            pending = list(self.pending)
        wait(pending)


def remove_later(box: Container) -> None:
    runtime().part("remover", _Remover).submit(box)


def flush_removals() -> None:
    """Wait for background removals (a process about to exit without atexit, e.g. a
    multiprocessing worker, must not leave them half done)."""
    remover = runtime().peek("remover")
    if remover is not None:
        remover.flush()
