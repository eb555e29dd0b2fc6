"""The seam between bashenv and where sandboxes run.

A *back-end* starts sandboxes from a `SandboxSpec`; a *sandbox* runs commands, opens
an attached stream for a long-lived process (the shell), moves files, stops what runs
in it, and dies. The shell, the grader and the env only speak these protocols, so a new
back-end (another engine, a cluster) is one module that implements them, chosen by name
or by a "package.module:Class" string.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import IO, Any, Protocol, runtime_checkable

from bashenv.errors import BashenvError
from bashenv.sandbox.spec import ExecResult, SandboxSpec


@runtime_checkable
class Stream(Protocol):
    """A bidirectional byte stream to one process in a sandbox (its stdin, and its stdout
    with stderr). Read by waiting on `fileno()` and passing what arrives to `decode`."""

    def fileno(self) -> int: ...

    def decode(self, data: bytes) -> bytes:
        """The process's output in `data` as read from the descriptor (framing removed)."""
        ...

    def close(self) -> None: ...

    def exit_code(self) -> int:
        """The process's exit status once it has ended, else -1."""
        ...


@runtime_checkable
class Sandbox(Protocol):
    id: str
    spec: SandboxSpec
    removal_failed: bool

    def exec(self, cmd: list[str], *, timeout: float | None = None, user: str = "",
             workdir: str | None = None,
             environment: dict[str, str] | None = None) -> ExecResult: ...

    def open_stream(self, cmd: list[str], *, user: str = "", workdir: str | None = None,
                    environment: dict[str, str] | None = None) -> Stream: ...

    def put_files(self, files: dict[str, bytes], root: str = "/", mode: int = 0o644) -> None: ...

    def get_files(self, directory: str) -> dict[str, bytes]: ...

    def read_archive(self, directory: str) -> Iterator[bytes]:
        """`directory` as a tar stream, read without running anything in the sandbox."""
        ...

    def write_archive(self, directory: str, archive: IO[bytes] | bytes) -> None: ...

    def get_file(self, path: str) -> bytes | None: ...

    def kill_all_but_init(self) -> bool:
        """Kill every process but the sandbox's own; False when this back-end cannot see
        them (the caller then falls back to an exec)."""
        ...

    def freeze(self) -> None:
        """Stop every process in place (nothing runs until `thaw`)."""
        ...

    def thaw(self) -> None: ...

    def why_dead(self) -> str | None:
        """None while the sandbox runs; else a short reason."""
        ...

    def remove(self) -> None: ...

    def remove_later(self) -> None: ...


class Backend(Protocol):
    name: str

    def start(self, spec: SandboxSpec) -> Sandbox:
        """A started sandbox for `spec` (raises SandboxError)."""
        ...

    def wait_until_ready(self, timeout: float) -> bool:
        """True once the back-end can start sandboxes (False after `timeout` seconds)."""
        ...

    def retry_removals(self) -> None:
        """Remove sandboxes whose removal failed earlier (e.g. while an engine restarted)."""
        ...

    def remove_all(self) -> None:
        """Remove every sandbox this process started and still holds."""
        ...

    def collect(self, run_id: str) -> list[str]:
        """Remove what is left of run `run_id` (e.g. sandboxes whose start answer was lost)."""
        ...

    def flush(self) -> None:
        """Wait for background removals."""
        ...


BACKENDS = {"docker": "bashenv.sandbox.docker_backend:DockerBackend",
            "ray": "bashenv.cluster.backend:RayBackend"}  # a string: Ray loads only when used
_instances: dict[str, Backend] = {}


def get_backend(backend: str | Backend | None = None) -> Backend:
    """A back-end by name ("docker"), by "package.module:Class", or as given."""
    if backend is None:
        backend = "docker"
    if not isinstance(backend, str):
        return backend
    if backend not in _instances:
        target = BACKENDS.get(backend, backend)
        module_name, _, class_name = target.partition(":")
        if not class_name:
            raise BashenvError(f"unknown sandbox back-end {backend!r}: give one of "
                               f"{sorted(BACKENDS)} or 'package.module:Class'")
        try:
            cls: Any = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as exc:
            raise BashenvError(f"cannot load sandbox back-end {backend!r}: {exc}") from None
        _instances[backend] = cls()
    return _instances[backend]
