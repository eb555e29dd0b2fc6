"""Tools bashenv puts into every agent box (the in-box `trace` command), without a step per box.

A `ToolSet` (a directory path and its files) is kept once per engine in a named volume,
`bashenv-tools-<content hash>`, which every box of a spec that asks for it mounts
read-only at the set's path: a box starts with the tools in place, at the cost of a bind
mount, and neither the agent nor anything else in a box can change them. New contents
make a new volume (a new hash), so a box never sees a half-changed set.

The volume is filled through a container that is created and never started (an archive
upload into it), and checked once per process by reading back its hash file, written
last; one process per host fills it (a file lock; processes on other hosts sharing the
engine would write the same bytes). The volume carries the label `bashenv.tools=<hash>`
and not `bashenv`, so the per-run cleanup of anonymous volumes never removes it; `bashenv
gc` keeps it, `gc --all` removes it when unused (gc.py). A volume of that name without
the label is not ours: it is refused, never filled or removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import tarfile
import threading
from dataclasses import dataclass, field

import docker.errors
import docker.types

from bashenv.cache import file_lock
from bashenv.errors import SandboxError
from bashenv.sandbox.engine import ENGINE_ERRORS, client, explain
from bashenv.sandbox.lifecycle import owner_labels
from bashenv.sandbox.runtime import runtime

TOOLS_LABEL = "bashenv.tools"  # value: the content hash of the set the volume holds
DIGEST_FILE = ".bashenv-tools"  # in the volume, written last: the set's hash
# A box whose tools volume is gone (removed by `gc --all` or by hand since this process
# made it) must not start with an empty one, which the engine would make on the fly: the
# mount says how to make it, as a bind of a path that does not exist, so that start fails
# loudly; the engine keeps such a volume under this label value, and the next ensure
# replaces it. (For an existing volume the engine ignores these options.)
MISSING = "missing"
_NOWHERE = "/nonexistent/bashenv-tools-volume-was-removed"


@dataclass(frozen=True)
class ToolSet:
    """Executable files (name -> bytes) that boxes find at `path`, which their shell puts
    first on PATH."""

    path: str
    files: tuple[tuple[str, bytes], ...]
    digest: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        hashed = hashlib.sha256()
        for name, data in sorted(self.files):
            if "/" in name or name in ("", ".", "..", DIGEST_FILE):
                raise SandboxError(f"tool name {name!r} must be a plain file name")
            hashed.update(f"{name}\0{len(data)}\0".encode())
            hashed.update(data)
        object.__setattr__(self, "digest", hashed.hexdigest()[:16])

    @property
    def volume(self) -> str:
        return f"bashenv-tools-{self.digest}"

    def mount(self) -> docker.types.Mount:
        """The read-only mount of the set's volume (no_copy: an image's files never go in)."""
        return docker.types.Mount(
            self.path, self.volume, type="volume", read_only=True, no_copy=True,
            labels={TOOLS_LABEL: MISSING}, driver_config=docker.types.DriverConfig(
                "local", {"type": "none", "o": "bind", "device": _NOWHERE}))


class _Ready:
    """Hashes of the sets whose volumes this process has checked (a runtime part)."""

    def __init__(self) -> None:
        self.digests: set[str] = set()
        self.lock = threading.Lock()


def forget_volume(tools: ToolSet) -> None:
    """After a box of `tools` failed to start: check (and make) the volume again next time."""
    runtime().part("tools-volumes", _Ready).digests.discard(tools.digest)


def ensure_volume(tools: ToolSet, image: str, run_id: str) -> None:
    """Make sure the engine holds `tools`' volume, filled (once per process: a set lookup
    after the first call). `image`: any image present, for the never-started helper
    container (labelled with `run_id`) that fills or reads the volume. Raises SandboxError."""
    ready = runtime().part("tools-volumes", _Ready)
    if tools.digest in ready.digests:
        return
    with ready.lock:
        if tools.digest in ready.digests:
            return
        with file_lock(tools.volume):  # other processes of this host fill it only once
            _fill(tools, image, run_id)
        ready.digests.add(tools.digest)


def _fill(tools: ToolSet, image: str, run_id: str) -> None:
    api = client().api
    try:
        try:
            found = api.inspect_volume(tools.volume)
            if (found.get("Labels") or {}).get(TOOLS_LABEL) == MISSING:  # see MISSING
                api.remove_volume(tools.volume)
                raise docker.errors.NotFound("replaced")
        except docker.errors.NotFound:
            found = api.create_volume(tools.volume, labels={TOOLS_LABEL: tools.digest})
    except ENGINE_ERRORS as exc:
        raise SandboxError(f"cannot make volume {tools.volume}: {explain(exc)}") from None
    if (found.get("Labels") or {}).get(TOOLS_LABEL) != tools.digest:
        raise SandboxError(f"volume {tools.volume} exists on this engine without the label "
                           f"{TOOLS_LABEL}={tools.digest}: it is not bashenv's; remove or "
                           "rename it")
    try:
        helper = api.create_container(
            image, command=["true"], network_disabled=True, labels=owner_labels(run_id),
            host_config=api.create_host_config(network_mode="none", mounts=[
                docker.types.Mount("/tools", tools.volume, type="volume", no_copy=True)]))["Id"]
    except ENGINE_ERRORS as exc:
        raise SandboxError(f"cannot fill volume {tools.volume} from {image}: {explain(exc)}") from None
    try:
        if _read_digest(helper) != tools.digest:
            api.put_archive(helper, "/tools", _archive(tools))
            if _read_digest(helper) != tools.digest:
                raise SandboxError(f"volume {tools.volume} does not hold what was written into it")
    except ENGINE_ERRORS as exc:
        raise SandboxError(f"cannot fill volume {tools.volume}: {explain(exc)}") from None
    finally:
        with contextlib.suppress(*ENGINE_ERRORS):
            api.remove_container(helper, force=True)


def _read_digest(helper: str) -> str | None:
    try:
        chunks, _ = client().api.get_archive(helper, f"/tools/{DIGEST_FILE}")
    except docker.errors.NotFound:
        return None
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
        member = archive.extractfile(DIGEST_FILE)
        return member.read().decode().strip() if member is not None else None


def _archive(tools: ToolSet) -> bytes:
    """The set as a tar: root-owned files a box may run but not change, the hash last."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as archive:
        for name, data, mode in [*((n, d, 0o755) for n, d in tools.files),
                                 (DIGEST_FILE, tools.digest.encode(), 0o644)]:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(data), mode, 0, 0
            archive.addfile(info, io.BytesIO(data))
    return buf.getvalue()


