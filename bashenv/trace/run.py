"""Tracing a task's code in its sandbox: the box, the tracer put into it, the trace read back.

The tracer (tracer.py, standard library only) is copied at run time into a root-owned
directory outside the repository, so no image recipe changes. The traced program runs
as the unprivileged user with the trace written to a descriptor opened by root onto a
file in a root-only directory: its code neither knows the path nor can reopen it.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bashenv.errors import BashenvError
from bashenv.images.build import AGENT_USER, TaskImage, ensure_task_image
from bashenv.images.specs import spec_for_task
from bashenv.sandbox import PROCESS_RUN_ID, Backend, Sandbox, SandboxSpec, get_backend
from bashenv.sandbox.spec import AGENT_UID
from bashenv.task.model import Task
from bashenv.trace import tracer as _tracer

TRACE_DIR = "/bashenv_trace"  # outside the repository, a volume the host can write
IN_DIR, OUT_DIR = f"{TRACE_DIR}/in", f"{TRACE_DIR}/out"
TRACER_SOURCE = Path(_tracer.__file__).read_bytes()
TRACER_CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "KILL")
LOG_CAP = 16 << 10  # the traced program's own output kept (head)
SIDES = ("before", "after")


@dataclass(frozen=True)
class Bounds:
    """Stop tracing after `events` events or `seconds` of wall time; reprs cut at
    `repr_chars`; frames deeper than `depth` are not traced. Each hit is stated."""

    events: int = 10000
    repr_chars: int = 120
    seconds: float = 20.0
    depth: int = 64

    def args(self) -> list[str]:
        return ["--max-events", str(self.events), "--max-repr", str(self.repr_chars),
                "--max-seconds", str(self.seconds), "--max-depth", str(self.depth)]


@dataclass(frozen=True)
class Target:
    """What to run: a script path (relative to the repository), a module, or a test id."""

    kind: str  # script | module | test
    value: str
    args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("script", "module", "test"):
            raise BashenvError(f"trace target kind must be script, module or test, "
                               f"not {self.kind!r}")
        if not self.value:
            raise BashenvError(f"trace target: an empty {self.kind}")

    def argv(self) -> list[str]:
        head = {"script": [self.value], "module": ["-m", self.value],
                "test": ["--test", self.value]}[self.kind]
        return [*head, *self.args]

    def __str__(self) -> str:
        return self.value if self.kind != "module" else f"-m {self.value}"


@dataclass
class Trace:
    """One traced run: its events (JSON objects), the run's summary and its output."""

    events: list[dict[str, Any]]
    end: dict[str, Any]
    log: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        return str(self.end.get("outcome", "error"))

    @property
    def bounds_hit(self) -> dict[str, str]:
        return dict(self.end.get("bounds_hit") or {})

    def text(self) -> str:
        return _tracer.to_text([*self.events, self.end])

    def jsonl(self) -> str:
        return "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in [*self.events, self.end])


def parse_trace(data: bytes, log: str = "") -> Trace:
    """The tracer's output; a run that ended without its summary (killed) says so."""
    events, end = [], None
    for line in data.decode("utf-8", errors="replace").split("\n"):  # not at U+2028
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill
        if record.get("event") == "end":
            end = record
        else:
            events.append(record)
    if end is None:
        end = {"event": "end", "events": len(events), "outcome": "killed",
               "bounds_hit": {"seconds": "the run was killed before the tracer finished"}}
    return Trace(events, end, log)


def tracer_command(target: Target, bounds: Bounds, include: list[str] | None = None,
                   exclude: list[str] | None = None, fd: int | None = None,
                   fmt: str = "jsonl", path: str = f"{IN_DIR}/tracer.py") -> list[str]:
    argv = ["python3", "-s", path, *bounds.args()]
    if fd is not None:
        argv += ["--fd", str(fd)]
    argv += ["--format", fmt]
    for pattern in include or []:
        argv += ["--include", pattern]
    for pattern in exclude or []:
        argv += ["--exclude", pattern]
    return [*argv, *target.argv()]


def box_files(task: Task, side: str) -> dict[str, bytes]:
    files = {f"{IN_DIR}/tracer.py": TRACER_SOURCE}
    if task.tests.patch:
        files[f"{IN_DIR}/tests.patch"] = task.tests.patch.encode()
    for i, (_, content) in enumerate(sorted(task.tests.files.items())):
        files[f"{IN_DIR}/files/{i}"] = content.encode()
    if side == "after":
        if not task.gold_patch:
            raise BashenvError(f"task {task.id} has no gold_patch: cannot trace after the fix")
        files[f"{IN_DIR}/gold.patch"] = task.gold_patch.encode()
    return files


def task_setup(task: Task, side: str) -> list[str]:
    git = "HOME=/nonexistent git -c core.hooksPath=/dev/null apply --whitespace=nowarn"
    setup = []
    if task.tests.patch:
        setup.append(f"{git} {IN_DIR}/tests.patch")
    for i, (path, _) in enumerate(sorted(task.tests.files.items())):
        target = shlex.quote(path)
        setup.append(f"mkdir -p \"$(dirname {target})\" && cp {IN_DIR}/files/{i} {target}")
    if side == "after":
        setup.append(f"{git} {IN_DIR}/gold.patch")
    return setup


def root_script(workdir: str, setup: list[str], command: list[str], limit: float,
                user: str = AGENT_USER) -> str:
    """As root: the repository prepared, then the tracer as `user`, its trace going to a
    descriptor root opened onto a file in a root-only directory."""
    switch = (f"--reuid={user} --regid={user} --init-groups" if not user.isdigit()
              else f"--reuid={user} --regid={user} --clear-groups")
    home = f"/home/{user}" if not user.isdigit() else "/tmp"
    run = (f"timeout -s KILL {int(limit) + 1} setpriv {switch} "
           f"env HOME={home} PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 "
           f"PYTHONDONTWRITEBYTECODE=1 PYTHONHASHSEED=0 {shlex.join(command)} "
           f"3>{OUT_DIR}/trace.jsonl </dev/null >{OUT_DIR}/log.txt 2>&1")
    return "\n".join([
        "umask 022",
        f"chmod 755 {TRACE_DIR} {IN_DIR} && mkdir -m 700 {OUT_DIR} || exit 91",
        f"cd {shlex.quote(workdir)} || exit 91",
        "(set -e", *setup, ") || exit 90",
        f"chown -R {user}:{user} . || exit 91",
        run,
        f"head -c {LOG_CAP} {OUT_DIR}/log.txt >{OUT_DIR}/log.head",
        "exit 0",
    ])


def run_in_box(box: Sandbox, files: dict[str, bytes], script: str, limit: float,
               what: str) -> Trace:
    """Put the inputs into a started box, run the script as root, read the trace back."""
    box.put_files(files, root=TRACE_DIR if box.spec.disk_mb else "/")
    ran = box.exec(["bash", "-c", script], user="root", timeout=limit + 60)
    if ran.exit_code == 90:
        raise BashenvError(f"{what}: preparing the repository failed (a patch that does not "
                           f"apply?): {ran.text[-500:]}")
    if ran.exit_code != 0:
        raise BashenvError(f"{what}: tracing failed (exit {ran.exit_code}): {ran.text[-500:]}")
    out = box.get_files(OUT_DIR)
    return parse_trace(out.get("trace.jsonl", b""),
                       out.get("log.head", b"").decode("utf-8", errors="replace"))


def run_in_new_box(backend: Backend, spec: SandboxSpec, files: dict[str, bytes], script: str,
                   limit: float, what: str) -> Trace:
    """`run_in_box` in a box started from `spec` for this run alone."""
    box = backend.start(spec)
    try:
        return run_in_box(box, files, script, limit, what)
    finally:
        box.remove_later()


class TaskTracer:
    """Traces runs of one task's code, each in a fresh box (thread-safe)."""

    def __init__(self, task: Task, image: TaskImage | None = None, run_id: str = PROCESS_RUN_ID,
                 backend: str | Backend | None = None, runtime: str | None = None) -> None:
        self.task = task
        self.image = image or ensure_task_image(task)
        self.backend = get_backend(backend)
        self.spec = spec_for_task(task, self.image.tag, "trace", run_id, cap_add=TRACER_CAPS,
                                  user="", network=False, runtime=runtime, scratch=TRACE_DIR)

    def trace(self, target: Target, side: str = "before", bounds: Bounds = Bounds(),
              include: list[str] | None = None, exclude: list[str] | None = None) -> Trace:
        if side not in SIDES:
            raise BashenvError(f"side must be one of {SIDES}, not {side!r}")
        command = tracer_command(target, bounds, include, exclude, fd=3)
        limit = bounds.seconds + 30  # the tracer stops itself at bounds.seconds (+1)
        script = root_script(self.task.workdir, task_setup(self.task, side), command, limit)
        trace = run_in_new_box(self.backend, self.spec, box_files(self.task, side), script,
                               limit, f"task {self.task.id}")
        trace.meta = {"task_id": self.task.id, "commit": self.image.base_sha, "side": side,
                      "target": str(target), "kind": target.kind, "image": self.image.tag}
        return trace


def default_image() -> str:
    """The offline Python base image (built on first use, cached by content hash): where
    files are traced, and Halt-v0's programs run, when no image is named."""
    from bashenv.images.build import build_base
    from bashenv.images.recipes import load_recipe

    return build_base(load_recipe("python-bookworm"))[0]


def trace_file(source: str | bytes, name: str = "main.py", *, image: str | None = None,
               bounds: Bounds = Bounds(), run_id: str = PROCESS_RUN_ID,
               backend: str | Backend | None = None, runtime: str | None = None) -> Trace:
    """Trace one Python file (any code, no task) in a fresh box of `image`."""
    if "/" in name or not name.endswith(".py"):
        raise BashenvError(f"trace_file: name must be a plain file name ending in .py, not {name!r}")
    data = source.encode() if isinstance(source, str) else source
    image = image or default_image()
    spec = SandboxSpec(image=image, workdir="/work", memory="1g", pids=256, run_id=run_id,
                       runtime=runtime, cap_add=TRACER_CAPS, disk_mb=256, scratch=TRACE_DIR,
                       labels={"bashenv.role": "trace"})
    limit = bounds.seconds + 30
    quoted = shlex.quote(name)  # run by the box's root shell: "a b.py" is a name too
    setup = [f"cp {IN_DIR}/prog/{quoted} {quoted}"]
    script = root_script("/work", setup, tracer_command(Target("script", name), bounds, fd=3),
                         limit, user=str(AGENT_UID))
    files = {f"{IN_DIR}/tracer.py": TRACER_SOURCE, f"{IN_DIR}/prog/{name}": data}
    trace = run_in_new_box(get_backend(backend), spec, files, script, limit, f"file {name}")
    trace.meta = {"file": name, "image": image, "kind": "script", "target": name}
    return trace
