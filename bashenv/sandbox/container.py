"""One locked-down container per episode: limits, labels, file transfer, and cleanup.

Every container carries the label `bashenv=<run id>` and its owner's token, and dies with
its owning process whatever kills it (a dead-man's switch, lifecycle.py).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

import docker.errors
import docker.types
from docker.models.containers import Container as DockerContainer
from docker.utils.socket import frames_iter

from bashenv.errors import SandboxError
from bashenv.sandbox.engine import ENGINE_ERRORS, LABEL, client, explain
from bashenv.sandbox.lifecycle import (
    DeadmanSwitch,
    deadman_options,
    deadman_pid,
    exit_note,
    owner_labels,
    registry,
    remove_later,
)
from bashenv.sandbox.lifecycle import flush_removals as flush_removals
from bashenv.sandbox.output import CappedBuffer, ExecFrames
from bashenv.sandbox.spec import AGENT_UID, AGENT_USER, ExecResult, SandboxSpec, copy_seed_command
from bashenv.sandbox.tools import ensure_volume, forget_volume

log = logging.getLogger("bashenv.sandbox")
EXEC_OUTPUT_CAP = 1 << 20  # bytes of an exec's output kept (head + tail)
GET_FILES_CAP = 128 << 20  # bytes of an archive get_files reads


class Container:
    """A started container whose only process of its own is the dead-man's switch;
    everything else happens through exec."""

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec
        labels = {**owner_labels(spec.run_id), **spec.labels}
        self._since = time.time()
        if spec.tools is not None:
            ensure_volume(spec.tools, spec.image, spec.run_id)  # once per process
        try:
            self._container: DockerContainer = client().containers.create(
                spec.image,
                **deadman_options(),
                labels=labels,
                network_mode="bridge" if spec.network else "none",
                mem_limit=spec.memory,
                memswap_limit=spec.memory,
                nano_cpus=int(spec.cpus * 1e9),
                pids_limit=spec.pids,
                security_opt=["no-new-privileges"],
                cap_drop=["ALL"],
                ulimits=[docker.types.Ulimit(name="fsize", soft=spec.file_size_mb << 20,
                                             hard=spec.file_size_mb << 20)],
                cap_add=list(spec.cap_add) or None,
                runtime=spec.runtime,
                shm_size="64m",  # /dev/shm is writable: bounded (and counted in memory)
                working_dir=spec.workdir,
                **_disk_options(spec),
            )
        except docker.errors.ImageNotFound:
            raise SandboxError(f"image {spec.image} does not exist; run `bashenv images build`") from None
        except ENGINE_ERRORS as exc:
            raise SandboxError(f"cannot create a container from {spec.image}: {explain(exc)}") from None
        self.id: str = self._container.id
        self._removed = False
        self.removal_failed = False
        self._switch: DeadmanSwitch | None = None
        registry().add(self)  # from here on, it is removed whatever happens
        try:
            # Held before the start: there is no moment in which it runs without an owner.
            self._switch = DeadmanSwitch(self.id)
            self._container.start()
        except ENGINE_ERRORS as exc:
            self.remove()
            if spec.tools is not None:  # its volume may be gone (tools.MISSING): made anew next time
                forget_volume(spec.tools)
            raise SandboxError(f"cannot start a container from {spec.image}: {explain(exc)}") from None
        if spec.seed:
            seeded = self.exec(["sh", "-c", copy_seed_command(spec.seed, spec.workdir)],
                               user=str(AGENT_UID))
            if seeded.exit_code != 0:
                self.remove()
                raise SandboxError(f"cannot copy {spec.seed} into {spec.workdir} of a container "
                                   f"from {spec.image}: {seeded.text[-500:]}")

    def exec(self, cmd: list[str], *, timeout: float | None = None, user: str = "",
             workdir: str | None = None, environment: dict[str, str] | None = None) -> ExecResult:
        """Run a command to completion (killed after `timeout` seconds, exit code 137). Its
        output (stdout and stderr) is kept as head + tail while it is read, at most
        EXEC_OUTPUT_CAP bytes, with a line saying how much was cut: a box that prints
        without end costs the host no more."""
        if timeout is not None:
            cmd = ["timeout", "-s", "KILL", str(max(1, int(timeout + 0.999))), *cmd]
        api = client().api
        try:
            exec_id = api.exec_create(self.id, cmd, user=user, environment=environment,
                                      workdir=workdir or self.spec.workdir)["Id"]
            output = _read_capped(api.exec_start(exec_id, socket=True), EXEC_OUTPUT_CAP)
            code = api.exec_inspect(exec_id)["ExitCode"]
        except ENGINE_ERRORS as exc:
            reason = self.why_dead() or explain(exc)
            raise SandboxError(f"container {self.id[:12]}: exec failed: {reason}") from None
        return ExecResult(code if code is not None else -1, output)

    def open_stream(self, cmd: list[str], *, user: str = "", workdir: str | None = None,
                    environment: dict[str, str] | None = None) -> DockerStream:
        """A process attached through the API socket, on pipes (no tty): its stdin, and its
        stdout and stderr as Docker's multiplexed frames, which `DockerStream.decode` undoes."""
        api = client().api
        try:
            exec_id = api.exec_create(self.id, cmd, stdin=True, tty=False, environment=environment,
                                      workdir=workdir or self.spec.workdir, user=user)["Id"]
            sock = api.exec_start(exec_id, tty=False, socket=True)
        except ENGINE_ERRORS as exc:
            raise SandboxError(f"cannot start a process in {self.id[:12]}: "
                               f"{self.why_dead() or explain(exc)}") from None
        return DockerStream(exec_id, sock)

    def freeze(self) -> None:
        """Pause every process (the cgroup freezer): nothing runs until `thaw`. The freezer
        can fail on a busy host ("unable to freeze"): tried a few times, and a box left
        half-frozen is thawed again, so that it can still be removed."""
        for attempt in range(3):
            try:
                client().api.pause(self.id)
                return
            except ENGINE_ERRORS as exc:
                reason = self.why_dead() or explain(exc)
                with contextlib.suppress(*ENGINE_ERRORS):
                    client().api.unpause(self.id)
                if attempt == 2 or self.why_dead():
                    raise SandboxError(f"cannot freeze {self.id[:12]}: {reason}") from None
                time.sleep(0.1 * (attempt + 1))

    def thaw(self) -> None:
        try:
            client().api.unpause(self.id)
        except ENGINE_ERRORS as exc:
            raise SandboxError(f"cannot thaw {self.id[:12]}: {self.why_dead() or explain(exc)}") from None

    def put_files(self, files: dict[str, bytes], root: str = "/", mode: int = 0o644) -> None:
        """Write files at absolute paths below `root` (parents created) in one API call.
        `root` must be writable from the host: the rootfs, or a volume such as `scratch`."""
        base = PurePosixPath(root)
        buf = io.BytesIO()
        now = int(time.time())
        with tarfile.open(fileobj=buf, mode="w") as archive:
            relative = {str(PurePosixPath(p).relative_to(base)): data for p, data in files.items()}
            dirs: set[PurePosixPath] = set()
            for path in relative:
                dirs.update(p for p in PurePosixPath(path).parents if str(p) != ".")
            for directory in sorted(dirs, key=lambda p: len(p.parts)):
                info = tarfile.TarInfo(str(directory))
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
                archive.addfile(info)
            for path, data in relative.items():
                info = tarfile.TarInfo(path)
                info.size, info.mode, info.mtime = len(data), mode, now
                archive.addfile(info, io.BytesIO(data))
        try:
            self._container.put_archive(str(base), buf.getvalue())
        except ENGINE_ERRORS as exc:
            raise SandboxError(f"cannot write files into {self.id[:12]}: {explain(exc)}") from None

    def read_archive(self, directory: str) -> Iterator[bytes]:
        """`directory` as a tar stream, read from the host side (nothing runs in the box),
        in chunks as they arrive; engine failures, also mid-stream, are SandboxErrors."""
        try:
            chunks, _ = client().api.get_archive(self.id, directory, chunk_size=1 << 20)
        except ENGINE_ERRORS as exc:
            raise SandboxError(f"cannot read {directory} of {self.id[:12]}: "
                               f"{self.why_dead() or explain(exc)}") from None

        def stream() -> Iterator[bytes]:
            try:
                yield from chunks
            except ENGINE_ERRORS as exc:
                raise SandboxError(f"reading {directory} of {self.id[:12]} broke off: "
                                   f"{self.why_dead() or explain(exc)}") from None
            finally:  # closed early (a reader stopped at a cap): the connection goes now,
                chunks.close()  # not at some garbage collection: the engine holds the box
        return stream()

    def write_archive(self, directory: str, archive: IO[bytes] | bytes) -> None:
        """Extract a tar into `directory` (which must be writable from the host)."""
        try:
            ok = client().api.put_archive(self.id, directory, archive)
        except ENGINE_ERRORS as exc:
            raise SandboxError(f"cannot write into {directory} of {self.id[:12]}: "
                               f"{self.why_dead() or explain(exc)}") from None
        if not ok:
            raise SandboxError(f"the engine refused to write into {directory} of {self.id[:12]}")

    def get_files(self, directory: str) -> dict[str, bytes]:
        """Regular files under `directory` (one API call), by path relative to it. The
        archive is capped while it is read (GET_FILES_CAP; over it: SandboxError)."""
        try:
            stream, _ = self._container.get_archive(directory, chunk_size=1 << 20)
            data = bytearray()
            for chunk in stream:
                data += chunk
                if len(data) > GET_FILES_CAP:
                    raise SandboxError(f"{directory} of {self.id[:12]} holds over "
                                       f"{GET_FILES_CAP >> 20} MiB")
        except docker.errors.NotFound:
            return {}
        except ENGINE_ERRORS as exc:
            raise SandboxError(f"cannot read {directory} of {self.id[:12]}: "
                               f"{self.why_dead() or explain(exc)}") from None
        files = {}
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            for member in archive:
                handle = archive.extractfile(member) if member.isfile() else None
                if handle is not None:
                    files[member.name.partition("/")[2] or member.name] = handle.read()
        return files

    def get_file(self, path: str) -> bytes | None:
        """A file's bytes, or None when it does not exist."""
        return self.get_files(path).get(PurePosixPath(path).name)

    def kill_all_but_init(self) -> bool:
        """SIGKILL every process but the container's init and its dead-man's switch: the
        sandbox is back to idle. Done from the host through the container's cgroup, pass after pass
        until none is left, so even a fork bomb cannot outrun it (no exec is needed inside
        a box that may have no pids left). False when the cgroup is not visible from here
        (a remote engine, gVisor): the caller must fall back to an exec."""
        if self.spec.runtime not in (None, "runc"):  # e.g. gVisor: its processes are not ours
            return False
        procs_file = next((p for p in _cgroup_procs_candidates(self.id) if p.exists()), None)
        if procs_file is None:
            return False
        try:
            init = int(client().api.inspect_container(self.id)["State"]["Pid"])
        except ENGINE_ERRORS as exc:
            raise SandboxError(f"cannot stop the processes in {self.id[:12]}: "
                               f"{self.why_dead() or explain(exc)}") from None
        switch: int | None = None

        def doomed(pids: list[int]) -> list[int]:
            nonlocal switch
            switch = switch or deadman_pid(init, pids)  # killing it would end the container
            return [pid for pid in pids if pid not in (init, switch)]
        return self._sweep(procs_file, doomed)

    def kill_all_but_root(self) -> bool:
        """SIGKILL every process that does not run as the container's root (its init's user),
        from the host through the cgroup, pass after pass, as kill_all_but_init does; root's
        own (e.g. a grading script waiting for this) live on. Without capabilities and with
        no-new-privileges, no other user's process can become root. False when the cgroup is
        not visible from here (a remote engine, gVisor)."""
        if self.spec.runtime not in (None, "runc"):
            return False
        procs_file = next((p for p in _cgroup_procs_candidates(self.id) if p.exists()), None)
        if procs_file is None:
            return False
        try:
            root = _uids(int(client().api.inspect_container(self.id)["State"]["Pid"]))
        except ENGINE_ERRORS as exc:
            raise SandboxError(f"cannot stop the processes in {self.id[:12]}: "
                               f"{self.why_dead() or explain(exc)}") from None
        if root is None:
            return False
        return self._sweep(procs_file, lambda pids: [p for p in pids if _uids(p) not in (root, None)])

    def _sweep(self, procs_file: Path, doomed: Callable[[list[int]], list[int]]) -> bool:
        """SIGKILL what `doomed` picks among the cgroup's processes, pass after pass, until
        it picks none (a process that keeps re-forking cannot outrun it)."""
        for _ in range(200):
            try:
                pids = [int(p) for p in procs_file.read_text().split()]
            except OSError:  # the container is gone
                return True
            targets = doomed(pids)
            if not targets:
                return True
            for pid in targets:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)
        raise SandboxError(f"processes in {self.id[:12]} keep coming back after SIGKILL")

    def why_dead(self) -> str | None:
        """None while running; otherwise a short human reason (exit code, OOM kill, removed)."""
        try:
            self._container.reload()
        except docker.errors.NotFound:  # it stopped and the engine removed it (auto-remove)
            how = exit_note(self.id, self._since)
            return f"container {self.id[:12]} exited{how} and no longer exists"
        except ENGINE_ERRORS as exc:
            return f"container {self.id[:12]} cannot be inspected: {explain(exc)}"
        state = self._container.attrs.get("State", {})
        if state.get("Running"):
            return None
        oom = " (killed: out of memory)" if state.get("OOMKilled") else ""
        if state.get("Status") == "removing":  # it stopped; the engine is removing it
            return (f"container {self.id[:12]} exited, exit code {state.get('ExitCode')}{oom}, "
                    "and is being removed")
        return f"container {self.id[:12]} is {state.get('Status')}, exit code {state.get('ExitCode')}{oom}"

    def remove_later(self) -> None:
        """Remove in the background (off the hot path); `flush_removals` waits for it."""
        remove_later(self)

    def remove(self) -> None:
        """Idempotent: kill and delete the container, then let go of its switch. If the
        engine cannot be reached, the container stays registered, so the exit handler tries
        again (with its switch released it also stops and removes itself)."""
        if self._removed:
            return
        failed = False
        try:
            # Removed through the API first, so that it is gone when this returns.
            self._container.remove(force=True, v=True)  # v: its tmpfs volumes too
        except docker.errors.NotFound:
            pass
        except ENGINE_ERRORS as exc:
            if "already in progress" not in str(exc):
                log.warning("cannot remove container %s: %s", self.id[:12], explain(exc))
                failed = True
        self.removal_failed = failed
        if self._switch is not None:
            self._switch.release()
        if self.removal_failed:
            return
        self._removed = True
        registry().discard(self)

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *_: object) -> None:
        self.remove()


class DockerStream:
    """The Docker end of `Stream`: a non-blocking exec socket carrying framed output."""

    def __init__(self, exec_id: str, sock: Any) -> None:
        self._exec_id = exec_id
        self._sock = sock  # must stay referenced: dropping it closes the connection
        raw = getattr(sock, "_sock", sock)
        raw.setblocking(False)  # readers wait with select or the event loop, never in read()
        self._fd = raw.fileno()
        self._frames = ExecFrames()

    def fileno(self) -> int:
        return self._fd

    def decode(self, data: bytes) -> bytes:
        return self._frames.feed(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()

    def exit_code(self) -> int:
        # The engine records the exit a moment after the stream ends: right after EOF the
        # exec may still show as running, without a code. Wait for it (bounded).
        deadline = time.monotonic() + 5
        while True:
            try:
                state = client().api.exec_inspect(self._exec_id)
            except ENGINE_ERRORS:
                return -1
            if state.get("ExitCode") is not None and not state.get("Running"):
                return int(state["ExitCode"])
            if time.monotonic() > deadline:
                return -1
            time.sleep(0.01)


def _read_capped(sock: Any, cap: int) -> bytes:
    """An exec's output from its attached socket, as Docker's frames arrive, kept as
    head + tail (CappedBuffer). No read timeout: a command may be silent for long (the
    tests of a grading run write to a file)."""
    for part in (sock, getattr(sock, "_sock", None)):
        setter = getattr(part, "settimeout", None)
        if setter is not None:
            setter(None)
    kept = CappedBuffer(cap)
    try:
        for _, data in frames_iter(sock, tty=False):
            kept.add(data)
    finally:
        for part in (getattr(sock, "_response", None), sock):  # the HTTP response, then its socket
            with contextlib.suppress(OSError, ValueError):
                if part is not None:
                    part.close()
    return kept.data()


def _tmpfs_volume(target: str, size_mb: int, uid: int, run_id: str) -> docker.types.Mount:
    """An anonymous volume on tmpfs: size-bounded, and reachable by put/get_archive (a plain
    tmpfs mount is not). Removed with its container."""
    options = {"type": "tmpfs", "device": "tmpfs", "o": f"size={size_mb}m,uid={uid},gid={uid}"}
    return docker.types.Mount(target, None, type="volume", labels={LABEL: run_id},
                              driver_config=docker.types.DriverConfig("local", options))


def _disk_options(spec: SandboxSpec) -> dict[str, Any]:
    """A read-only root filesystem whose writable places are all size-bounded (and the
    shared tools volume, read-only, whatever the root)."""
    tools = [spec.tools.mount()] if spec.tools is not None else []
    if spec.disk_mb is None:
        return {"mounts": tools} if tools else {}
    mounts = [_tmpfs_volume(spec.workdir, spec.disk_mb, AGENT_UID, spec.run_id), *tools]
    if spec.scratch:
        mounts.append(_tmpfs_volume(spec.scratch, max(64, spec.disk_mb // 4), 0, spec.run_id))
    small = f"size={max(16, spec.disk_mb // 4)}m"
    return {"read_only": True, "mounts": mounts, "tmpfs": {
        "/tmp": f"{small},mode=1777", "/var/tmp": "size=64m,mode=1777", "/run": "size=16m",
        f"/home/{AGENT_USER}": f"size=64m,uid={AGENT_UID},gid={AGENT_UID}"}}


def _cgroup_procs_candidates(container_id: str) -> list[Path]:
    root = Path("/sys/fs/cgroup")
    return [root / "pids/docker" / container_id / "cgroup.procs",  # v1, cgroupfs
            root / "system.slice" / f"docker-{container_id}.scope" / "cgroup.procs",  # v2, systemd
            root / "docker" / container_id / "cgroup.procs"]  # v2, cgroupfs


def _uids(pid: int) -> str | None:
    """A process's real, effective, saved and file-system uids as /proc shows them (None:
    it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return next((line.split(":", 1)[1].strip() for line in status
                         if line.startswith("Uid:")), None)
    except OSError:
        return None
