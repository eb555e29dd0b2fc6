"""The Ray sandbox back-end: `BashSWEEnv(backend="ray")` (registered in the sandbox room's
BACKENDS as a "module:Class" string, so Ray is imported only when it is used).

Each sandbox is a container on some node of the cluster, held by an actor there
(`SandboxHost`, one SLOT_RESOURCE): the actor's worker process is the container's owner,
so the dead-man's switch ends the container when that worker dies, with its node or when
the driver that created the actor goes (Ray kills an owner's actors). Calls on the
sandbox are actor calls; the shell's stream is relayed through a local socket pair, so
the persistent shell (BashSession) runs on the driver unchanged.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
from collections.abc import Iterator
from typing import IO, Any

from bashenv.cluster.nodes import SLOT_RESOURCE, connect, node_here, survey
from bashenv.errors import SandboxError
from bashenv.sandbox.spec import ExecResult, SandboxSpec

READ_WAIT = 0.5  # seconds one relay read waits on the node for output (a long poll)
REGISTRY_ENV = "BASHENV_REGISTRY"  # HOST:PORT a node pulls a missing image from


class SandboxHost:
    """Runs on a node (a Ray actor): one container and the streams opened in it."""

    def __init__(self, spec: SandboxSpec) -> None:
        from bashenv.sandbox import get_backend

        self._ensure_image(spec.image)
        self.box = get_backend("docker").start(spec)
        self.streams: dict[int, Any] = {}

    @staticmethod
    def _ensure_image(tag: str) -> None:
        from bashenv.sandbox.engine import ENGINE_ERRORS, client

        try:
            client().images.get(tag)
            return
        except ENGINE_ERRORS:
            pass
        registry = os.environ.get(REGISTRY_ENV)
        if registry:
            from bashenv.cluster.images import pull

            if pull(registry, tag):
                return
        raise SandboxError(f"image {tag} is not on node {node_here()['node_id'][:12]} "
                           f"({node_here()['host']}) and no registry has it (set {REGISTRY_ENV}"
                           " on the nodes, or build it there: bashenv images build)")

    def where(self) -> dict[str, str]:
        return {**node_here(), "container": self.box.id}

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.box, method)(*args, **kwargs)

    def read_archive(self, directory: str) -> bytes:
        return b"".join(self.box.read_archive(directory))

    def open_stream(self, cmd: list[str], kwargs: dict[str, Any]) -> int:
        stream = self.box.open_stream(cmd, **kwargs)
        self.streams[stream.fileno()] = stream
        return int(stream.fileno())

    def read(self, sid: int, wait: float) -> bytes | None:
        """Output that arrived within `wait` seconds (b"" for none); None at its end."""
        stream = self.streams.get(sid)
        if stream is None:
            return None
        readable, _, _ = select.select([sid], [], [], wait)
        if not readable:
            return b""
        try:
            data = os.read(sid, 1 << 16)
        except BlockingIOError:
            return b""
        except OSError:
            return None
        return stream.decode(data) if data else None

    def write(self, sid: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(sid, view):]
            except BlockingIOError:
                select.select([], [sid], [], 5)

    def close_stream(self, sid: int) -> None:
        stream = self.streams.pop(sid, None)
        if stream is not None:
            stream.close()

    def exit_code(self, sid: int) -> int:
        stream = self.streams.get(sid)
        return stream.exit_code() if stream is not None else -1


class RelayStream:
    """The driver's end of a stream in a remote sandbox: a local socket the shell reads and
    writes, pumped to and from the actor by two threads."""

    def __init__(self, host: Any, sid: int, ray: Any) -> None:
        self._host, self._sid, self._ray = host, sid, ray
        self._local, self._remote = socket.socketpair()
        self._closed = threading.Event()
        threading.Thread(target=self._pump_out, daemon=True, name="bashenv-relay-out").start()
        threading.Thread(target=self._pump_in, daemon=True, name="bashenv-relay-in").start()

    def _pump_out(self) -> None:  # node → shell
        try:
            while not self._closed.is_set():
                data = self._ray.get(self._host.read.remote(self._sid, READ_WAIT))
                if data is None:
                    break
                if data:
                    self._remote.sendall(data)
        except Exception:  # the actor or its node died: the shell sees the end of its stream
            pass
        with contextlib.suppress(OSError):
            self._remote.shutdown(socket.SHUT_WR)

    def _pump_in(self) -> None:  # shell → node, in order (each write waits for the last)
        try:
            while not self._closed.is_set():
                data = self._remote.recv(1 << 16)
                if not data:
                    break
                self._ray.get(self._host.write.remote(self._sid, data))
        except Exception:
            pass

    def fileno(self) -> int:
        return self._local.fileno()

    def decode(self, data: bytes) -> bytes:
        return data  # the node decoded the engine's frames already

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(Exception):
            self._host.close_stream.remote(self._sid)
        for sock in (self._local, self._remote):
            with contextlib.suppress(OSError):
                sock.close()

    def exit_code(self) -> int:
        try:
            return int(self._ray.get(self._host.exit_code.remote(self._sid), timeout=30))
        except Exception:
            return -1


class RaySandbox:
    """A sandbox on some node: the Sandbox protocol as calls on its actor."""

    def __init__(self, host: Any, spec: SandboxSpec, ray: Any) -> None:
        self._host, self._ray, self.spec = host, ray, spec
        self.node: dict[str, str] = self._get(host.where.remote())
        self.id = self.node["container"]
        self.removal_failed = False

    def _get(self, ref: Any) -> Any:
        from ray.exceptions import RayError, RayTaskError

        try:
            return self._ray.get(ref)
        except RayTaskError as exc:
            cause = exc.cause if isinstance(getattr(exc, "cause", None), Exception) else None
            if isinstance(cause, SandboxError):
                raise cause from None
            raise SandboxError(f"sandbox on node {self.node_name}: {cause or exc}") from None
        except RayError as exc:  # the actor, its worker or its node died
            raise SandboxError(f"sandbox on node {self.node_name} is gone: "
                               f"{type(exc).__name__}") from None

    @property
    def node_name(self) -> str:
        node = getattr(self, "node", None) or {}
        return f"{node.get('node_id', '?')[:12]} ({node.get('host', '?')})"

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._get(self._host.call.remote(method, *args, **kwargs))

    def exec(self, cmd: list[str], *, timeout: float | None = None, user: str = "",
             workdir: str | None = None, environment: dict[str, str] | None = None) -> ExecResult:
        result: ExecResult = self._call("exec", cmd, timeout=timeout, user=user,
                                        workdir=workdir, environment=environment)
        return result

    def open_stream(self, cmd: list[str], *, user: str = "", workdir: str | None = None,
                    environment: dict[str, str] | None = None) -> RelayStream:
        sid = self._get(self._host.open_stream.remote(
            cmd, {"user": user, "workdir": workdir, "environment": environment}))
        return RelayStream(self._host, sid, self._ray)

    def put_files(self, files: dict[str, bytes], root: str = "/", mode: int = 0o644) -> None:
        self._call("put_files", files, root, mode)

    def get_files(self, directory: str) -> dict[str, bytes]:
        files: dict[str, bytes] = self._call("get_files", directory)
        return files

    def read_archive(self, directory: str) -> Iterator[bytes]:
        yield self._get(self._host.read_archive.remote(directory))

    def write_archive(self, directory: str, archive: IO[bytes] | bytes) -> None:
        data = archive if isinstance(archive, bytes) else archive.read()
        self._call("write_archive", directory, data)

    def get_file(self, path: str) -> bytes | None:
        data: bytes | None = self._call("get_file", path)
        return data

    def kill_all_but_init(self) -> bool:
        return bool(self._call("kill_all_but_init"))

    def kill_all_but_root(self) -> bool:  # a grading's tests, while its script waits
        return bool(self._call("kill_all_but_root"))

    def freeze(self) -> None:
        self._call("freeze")

    def thaw(self) -> None:
        self._call("thaw")

    def why_dead(self) -> str | None:
        try:
            reason: str | None = self._call("why_dead")
            return reason
        except SandboxError as exc:
            return str(exc)

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            self._ray.get(self._host.call.remote("remove"), timeout=60)
        with contextlib.suppress(Exception):  # the worker goes: its switch too
            self._ray.kill(self._host)
        _hosts().discard(self)

    def remove_later(self) -> None:
        threading.Thread(target=self.remove, daemon=True, name="bashenv-ray-remove").start()


class _Hosts:
    def __init__(self) -> None:
        self.live: set[RaySandbox] = set()
        self.lock = threading.Lock()

    def add(self, box: RaySandbox) -> None:
        with self.lock:
            self.live.add(box)

    def discard(self, box: RaySandbox) -> None:
        with self.lock:
            self.live.discard(box)


_HOSTS = _Hosts()


def _hosts() -> _Hosts:
    return _HOSTS


class RayBackend:
    """Sandboxes on the Ray cluster at $BASHENV_RAY_ADDRESS (default: auto), each on a
    node whose Docker engine answered the survey (the one with the fewest of ours)."""

    name = "ray"

    def __init__(self) -> None:
        self._ray = connect()
        self._actor = self._ray.remote(num_cpus=0, max_concurrency=8,
                                       resources={SLOT_RESOURCE: 1})(SandboxHost)
        self._lock = threading.Lock()
        self._placed: dict[str, int] | None = None  # healthy node → sandboxes we put there

    def _node(self) -> str:
        with self._lock:
            if not self._placed:
                healthy = [n.id for n in survey(self._ray) if n.ok]
                if not healthy:
                    raise SandboxError("no node of the Ray cluster has sandbox slots and a "
                                       "Docker engine that answers")
                self._placed = dict.fromkeys(healthy, 0)
            node = min(self._placed, key=lambda n: self._placed[n] if self._placed else 0)
            self._placed[node] += 1
            return node

    def start(self, spec: SandboxSpec) -> RaySandbox:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        registry = os.environ.get(REGISTRY_ENV)  # the nodes pull a missing image from it
        options: dict[str, Any] = {"runtime_env": {"env_vars": {REGISTRY_ENV: registry}}} \
            if registry else {}
        for attempt in range(2):
            node = self._node()
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=False)
            host = self._actor.options(**options).remote(spec)
            try:
                box = RaySandbox(host, spec, self._ray)
            except SandboxError:
                with self._lock:  # the node may be gone: ask again which ones are healthy
                    self._placed = None
                if attempt:
                    raise
                continue
            _hosts().add(box)
            return box
        raise AssertionError("unreachable")

    def wait_until_ready(self, timeout: float) -> bool:
        return bool(self._ray.is_initialized())

    def retry_removals(self) -> None:
        pass  # a node removes what its actors' workers leave (their switches)

    def remove_all(self) -> None:
        with _hosts().lock:
            boxes = list(_hosts().live)
        for box in boxes:
            box.remove()

    def collect(self, run_id: str) -> list[str]:
        return []  # nothing outlives its actor's worker on the node

    def flush(self) -> None:
        pass
