"""One locked-down container per episode: limits, labels, file transfer, and cleanup.

Every container carries the label `bashenv=<run id>` plus the owning host pid, so
`bashenv gc` can find leftovers of dead runs without touching live ones.
"""

from __future__ import annotations

import atexit
import io
import os
import socket
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import docker.errors
from docker.models.containers import Container as DockerContainer

from bashenv.errors import SandboxError
from bashenv.images.engine import LABEL, client

PROCESS_RUN_ID = f"run-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class SandboxSpec:
    """Where and how a sandbox runs: image and resource limits. Network is off unless asked."""

    image: str
    workdir: str = "/repo"
    memory: str = "2g"
    cpus: float = 1.0
    pids: int = 512
    network: bool = False
    runtime: str | None = None
    run_id: str = PROCESS_RUN_ID
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: bytes

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", errors="replace")


class _Registry:
    """Containers this process started and has not removed yet; removed at exit."""

    def __init__(self) -> None:
        self._live: dict[str, Container] = {}
        self._lock = threading.Lock()
        atexit.register(self.remove_all)

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


REGISTRY = _Registry()


class Container:
    """A started container running `sleep infinity`; everything else happens through exec."""

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec
        labels = {
            LABEL: spec.run_id,
            "bashenv.pid": str(os.getpid()),
            "bashenv.host": socket.gethostname(),
            **spec.labels,
        }
        try:
            self._container: DockerContainer = client().containers.run(
                spec.image,
                command=["sleep", "infinity"],
                detach=True,
                init=True,
                labels=labels,
                network_mode="bridge" if spec.network else "none",
                mem_limit=spec.memory,
                memswap_limit=spec.memory,
                nano_cpus=int(spec.cpus * 1e9),
                pids_limit=spec.pids,
                security_opt=["no-new-privileges"],
                runtime=spec.runtime,
                working_dir=spec.workdir,
            )
        except docker.errors.ImageNotFound:
            raise SandboxError(f"image {spec.image} does not exist; run `bashenv images build`") from None
        except docker.errors.APIError as exc:
            raise SandboxError(f"cannot start a container from {spec.image}: {exc.explanation}") from None
        self.id: str = self._container.id
        self._removed = False
        REGISTRY.add(self)

    def exec(self, cmd: list[str], *, timeout: float | None = None, user: str = "",
             workdir: str | None = None, environment: dict[str, str] | None = None) -> ExecResult:
        """Run a command to completion (killed after `timeout` seconds, exit code 137)."""
        if timeout is not None:
            cmd = ["timeout", "-s", "KILL", str(max(1, int(timeout + 0.999))), *cmd]
        try:
            code, out = self._container.exec_run(
                cmd, user=user, workdir=workdir or self.spec.workdir, environment=environment,
                demux=False,
            )
        except docker.errors.APIError as exc:
            reason = self.why_dead() or exc.explanation
            raise SandboxError(f"container {self.id[:12]}: exec failed: {reason}") from None
        return ExecResult(code if code is not None else -1, out or b"")

    def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write one file (parent directories are created) through the Docker API."""
        target = PurePosixPath(path)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as archive:
            info = tarfile.TarInfo(target.name)
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            archive.addfile(info, io.BytesIO(data))
        self.exec(["mkdir", "-p", str(target.parent)], user="root")
        try:
            self._container.put_archive(str(target.parent), buf.getvalue())
        except docker.errors.APIError as exc:
            raise SandboxError(f"cannot write {path} into {self.id[:12]}: {exc.explanation}") from None

    def get_file(self, path: str) -> bytes | None:
        """A file's bytes, or None when it does not exist."""
        try:
            stream, _ = self._container.get_archive(path)
        except docker.errors.NotFound:
            return None
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.next()
            handle = archive.extractfile(member) if member else None
            return handle.read() if handle else None

    def why_dead(self) -> str | None:
        """None while running; otherwise a short human reason (exit code, OOM kill, removed)."""
        try:
            self._container.reload()
        except docker.errors.NotFound:
            return f"container {self.id[:12]} no longer exists"
        except docker.errors.APIError as exc:
            return f"container {self.id[:12]} cannot be inspected: {exc.explanation}"
        state = self._container.attrs.get("State", {})
        if state.get("Running"):
            return None
        oom = " (killed: out of memory)" if state.get("OOMKilled") else ""
        return f"container {self.id[:12]} is {state.get('Status')}, exit code {state.get('ExitCode')}{oom}"

    def remove(self) -> None:
        """Idempotent: kill and delete the container."""
        if self._removed:
            return
        self._removed = True
        REGISTRY.discard(self)
        try:
            self._container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *_: object) -> None:
        self.remove()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def collect_garbage(*, everything: bool = False, run_id: str | None = None) -> list[str]:
    """Remove bashenv containers of dead runs on this host (or all, or one run's); their ids."""
    host = socket.gethostname()
    removed = []
    for box in client().containers.list(all=True, filters={"label": LABEL}):
        labels = box.labels
        if run_id is not None:
            doomed = labels.get(LABEL) == run_id
        elif everything:
            doomed = True
        else:
            pid = int(labels.get("bashenv.pid", "0") or 0)
            doomed = labels.get("bashenv.host") == host and (pid == 0 or not _pid_alive(pid))
        if doomed:
            try:
                box.remove(force=True)
                removed.append(box.id)
            except docker.errors.NotFound:
                pass
    return removed
