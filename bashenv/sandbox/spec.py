"""What a sandbox is asked to be (plain data, whatever back-end runs it)."""

from __future__ import annotations

import os
import shlex
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bashenv.sandbox.tools import ToolSet

# BASHENV_RUN_ID names a job (a CI run, a training job) across its processes.
PROCESS_RUN_ID = os.environ.get("BASHENV_RUN_ID") or f"run-{uuid.uuid4().hex[:10]}"
AGENT_USER, AGENT_UID = "agent", 1000  # the unprivileged user agents (and tests) run as
SEED_DIR = "/opt/bashenv/repo"  # in task images: the repository at its base commit


def copy_seed_command(seed: str, dest: str, git_only: bool = False) -> str:
    """A POSIX shell command that copies the directory `seed` (absolute) into the existing
    directory `dest` as `cp -a` would, but for a git object store: `dest/.git/objects` is
    made new and names the seed's as its alternate (git reads every base object from there
    and writes new ones locally). The seed's objects (hundreds of small files) were most of
    a cold start's copy and of the bytes a grading reads back from the agent's box.
    `git_only`: only the `.git` part. Exit status non-zero when a copy fails."""
    if not seed.startswith("/"):
        raise ValueError(f"the seed must be an absolute path: {seed}")
    s, d, g = shlex.quote(seed), shlex.quote(dest), shlex.quote(f"{seed}/.git")
    objects = shlex.quote(f"{seed}/.git/objects")
    git = (f"if [ -d {objects} ] && [ ! -L {g} ] && [ ! -L {objects} ] && "
           f"[ ! -e {objects}/info/alternates ]; then mkdir {d}/.git && "
           f"find {g} -mindepth 1 -maxdepth 1 ! -name objects -exec cp -a -t {d}/.git {{}} + && "
           f"mkdir -p {d}/.git/objects/info && echo {objects} >{d}/.git/objects/info/alternates; "
           f"elif [ -e {g} ] || [ -L {g} ]; then cp -a {g} {d}/; fi")
    if git_only:
        return f"{{ {git}; }}"
    return f"{{ find {s} -mindepth 1 -maxdepth 1 ! -name .git -exec cp -a -t {d} {{}} + && {git}; }}"


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
    cap_add: tuple[str, ...] = ()  # every capability is dropped; these are given back
    user: str = ""  # who the shell runs as ("" = the image's user)
    file_size_mb: int = 1024  # RLIMIT_FSIZE for every process in the box
    disk_mb: int | None = None  # writable space of workdir (tmpfs); None: writable rootfs
    seed: str | None = None  # a directory in the image copied into workdir at start
    scratch: str | None = None  # a host-reachable writable directory (for put/get_files)
    tools: ToolSet | None = None  # mounted read-only at tools.path, first on the shell's PATH

    def key(self) -> tuple[object, ...]:
        """A hashable identity: specs with equal keys make interchangeable sandboxes."""
        return (self.image, self.workdir, self.memory, self.cpus, self.pids, self.network,
                self.runtime, self.run_id, tuple(sorted(self.labels.items())), self.cap_add,
                self.user, self.file_size_mb, self.disk_mb, self.seed, self.scratch,
                self.tools.digest if self.tools else None)


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: bytes

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", errors="replace")
