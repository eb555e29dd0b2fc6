"""A second sandbox back-end, for tests: host processes in a scratch directory.

It isolates nothing (commands run as the test's own user, on the host); it exists to
show that the shell, the warm pool and anything else written against the `Sandbox`
protocol work unchanged on another back-end, and to test the shell's protocol (markers,
timeouts, interrupts, restarts) without a Docker engine. Chosen like any back-end:
`get_backend("tests.local_backend:LocalBackend")`.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO

from bashenv.errors import SandboxError
from bashenv.sandbox.spec import ExecResult, SandboxSpec

BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


class LocalStream:
    """A process on a socketpair (no framing: what is read is what it wrote)."""

    def __init__(self, process: subprocess.Popen[bytes], sock: socket.socket) -> None:
        self.process = process
        self._sock = sock
        sock.setblocking(False)

    def fileno(self) -> int:
        return self._sock.fileno()

    def decode(self, data: bytes) -> bytes:
        return data

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()

    def exit_code(self) -> int:
        try:  # asked once the stream ended: the process is exiting, if not gone yet
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return -1
        return 128 - code if code < 0 else code  # killed by a signal: as a shell reports it


class LocalSandbox:
    def __init__(self, spec: SandboxSpec) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bashenv-local-"))
        (self.root / "work").mkdir()
        self.spec = replace(spec, workdir=str(self.root / "work"))  # a real path on the host
        self.id = f"local-{uuid.uuid4().hex[:12]}"
        self.removal_failed = False
        self._streams: list[LocalStream] = []
        self._removed = False

    def _env(self, environment: dict[str, str] | None) -> dict[str, str]:
        return {**BASE_ENV, "HOME": str(self.root), **(environment or {})}

    def exec(self, cmd: list[str], *, timeout: float | None = None, user: str = "",
             workdir: str | None = None, environment: dict[str, str] | None = None) -> ExecResult:
        self._alive()
        try:
            done = subprocess.run(cmd, cwd=workdir or self.spec.workdir, env=self._env(environment),
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            return ExecResult(137, exc.output or b"")
        return ExecResult(done.returncode, done.stdout)

    def open_stream(self, cmd: list[str], *, user: str = "", workdir: str | None = None,
                    environment: dict[str, str] | None = None) -> LocalStream:
        self._alive()
        ours, theirs = socket.socketpair()
        process = subprocess.Popen(cmd, stdin=theirs, stdout=theirs, stderr=subprocess.STDOUT,
                                   cwd=workdir or self.spec.workdir, env=self._env(environment),
                                   start_new_session=True)  # its own group: signals stay in it
        theirs.close()
        stream = LocalStream(process, ours)
        self._streams.append(stream)
        return stream

    def put_files(self, files: dict[str, bytes], root: str = "/", mode: int = 0o644) -> None:
        for path, data in files.items():
            target = self.root / "fs" / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            target.chmod(mode)

    def get_files(self, directory: str) -> dict[str, bytes]:
        base = self.root / "fs" / directory.lstrip("/")
        if base.is_file():
            return {base.name: base.read_bytes()}
        return {str(p.relative_to(base)): p.read_bytes() for p in base.rglob("*") if p.is_file()}

    def get_file(self, path: str) -> bytes | None:
        return self.get_files(path).get(Path(path).name)

    def read_archive(self, directory: str) -> Iterator[bytes]:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            archive.add(self.root / "fs" / directory.lstrip("/"), arcname=Path(directory).name)
        yield buffer.getvalue()

    def write_archive(self, directory: str, archive: IO[bytes] | bytes) -> None:
        data = io.BytesIO(archive) if isinstance(archive, bytes) else archive
        with tarfile.open(fileobj=data) as tar:
            tar.extractall(self.root / "fs" / directory.lstrip("/"), filter="data")

    def kill_all_but_init(self) -> bool:
        return False  # no host-side view of "the box": the shell falls back to an exec

    def _signal_all(self, sig: int) -> None:
        for stream in self._streams:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(stream.process.pid, sig)

    def freeze(self) -> None:
        self._signal_all(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal_all(signal.SIGCONT)

    def why_dead(self) -> str | None:
        return f"local sandbox {self.id} was removed" if self._removed else None

    def _alive(self) -> None:
        if self._removed:
            raise SandboxError(f"local sandbox {self.id} was removed")

    def remove(self) -> None:
        if self._removed:
            return
        self._removed = True
        self._signal_all(signal.SIGKILL)
        for stream in self._streams:
            stream.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                stream.process.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)

    def remove_later(self) -> None:
        self.remove()


class LocalBackend:
    name = "local"

    def __init__(self) -> None:
        self.started: list[LocalSandbox] = []

    def start(self, spec: SandboxSpec) -> LocalSandbox:
        box = LocalSandbox(spec)
        self.started.append(box)
        return box

    def wait_until_ready(self, timeout: float) -> bool:
        return True

    def retry_removals(self) -> None:
        pass

    def remove_all(self) -> None:
        for box in self.started:
            box.remove()

    def collect(self, run_id: str) -> list[str]:
        return []

    def flush(self) -> None:
        pass
