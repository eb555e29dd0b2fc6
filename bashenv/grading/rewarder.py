"""Diff in, verdict out: a fresh container, the agent's diff, the hidden tests, a report.

The agent's container is never used for grading. The files the hidden tests own are
restored to their base versions before the hidden tests are written, so editing or
deleting tests cannot help. Results come from a report file outside the repository.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from bashenv.errors import BashenvError, DockerUnavailable, SandboxError
from bashenv.grading.diff import changed_paths
from bashenv.grading.parsers import PARSERS
from bashenv.images.build import AGENT_USER, TaskImage
from bashenv.sandbox.container import PROCESS_RUN_ID, Container, spec_for_task
from bashenv.sandbox.pool import WarmPool
from bashenv.task.model import Task

GRADE_DIR = "/bashenv_grade"  # outside the repository
OUTCOMES = ("resolved", "unresolved", "patch_failed", "timeout", "error")
LOG_LIMIT = 20000
ERR_PATCH, ERR_SETUP = 90, 91  # exit codes of the grading script before the tests run
OUT_DIR = f"{GRADE_DIR}/out"  # the only place the test user may write outside the repo
RESULT_TAG = "BASHENV_RESULT"
RESULT_LINE = re.compile(rf"^{RESULT_TAG} (\d+) ([\d.]+) ([\d.]+)$", re.MULTILINE)
CONFIG_GUARD = (Path(__file__).parent / "config_guard.py").read_bytes()
GRADER_CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETUID", "SETGID")


@dataclass
class Verdict:
    task_id: str
    outcome: str
    fail_to_pass: dict[str, str] = field(default_factory=dict)
    pass_to_pass: dict[str, str] = field(default_factory=dict)
    log: str = ""
    error: str | None = None
    touched_test_files: list[str] = field(default_factory=list)
    reverted_config: list[str] = field(default_factory=list)
    test_seconds: float = 0.0
    seconds: float = 0.0
    infra: bool = False  # the error came from the sandbox or engine, not from the diff

    @property
    def resolved(self) -> bool:
        return self.outcome == "resolved"

    @property
    def reward(self) -> float:
        return 1.0 if self.resolved else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reward": self.reward, "resolved": self.resolved}


def _tail(text: str, limit: int = LOG_LIMIT) -> str:
    return text if len(text) <= limit else f"[... {len(text) - limit} chars cut ...]\n" + text[-limit:]


def owned_test_paths(task: Task) -> set[str]:
    """Files the hidden tests own: those the test patch touches, test files, test-id files."""
    owned = set(task.tests.files)
    if task.tests.patch:
        owned |= changed_paths(task.tests.patch)
    owned |= {tid.split("::")[0] for tid in task.test_ids() if "::" in tid}
    return owned


class Rewarder:
    """Grades diffs for one task. Thread-safe: every `grade` uses its own fresh container,
    taken from `pool` when one is given (never a container an agent has used)."""

    def __init__(self, task: Task, image: TaskImage, run_id: str = PROCESS_RUN_ID,
                 pool: WarmPool | None = None, runtime: str | None = None) -> None:
        self.task = task
        self.image = image
        self.pool = pool
        self.parser = PARSERS[task.tests.runner]
        # The grader runs as root (tests as the agent user), with a network never.
        self.spec = spec_for_task(task, image.tag, "grader", run_id, cap_add=GRADER_CAPS,
                                  user="", network=False, runtime=runtime, scratch=GRADE_DIR)
        self._owned = owned_test_paths(task)
        self._hidden_files = self._hidden_test_files()

    def prefill(self) -> None:
        """Have a grading container ready before the first `grade` (with a pool)."""
        if self.pool is not None:
            self.pool.prefill(self.spec)

    def grade(self, diff: bytes | str) -> Verdict:
        started = time.monotonic()
        patch = diff.encode("utf-8", "surrogateescape") if isinstance(diff, str) else diff
        try:
            verdict = self._grade(patch)
        except (SandboxError, DockerUnavailable) as exc:
            verdict = Verdict(self.task.id, "error", error=str(exc), infra=True)
        except BashenvError as exc:
            verdict = Verdict(self.task.id, "error", error=str(exc))
        verdict.seconds = time.monotonic() - started
        return verdict

    def _hidden_test_files(self) -> dict[str, bytes]:
        files = {f"{GRADE_DIR}/files/{i}": content.encode()
                 for i, (_, content) in enumerate(sorted(self.task.tests.files.items()))}
        if self.task.tests.patch:
            files[f"{GRADE_DIR}/tests.patch"] = self.task.tests.patch.encode()
        return files

    def _script(self) -> str:
        """One exec, as root: apply the diff, restore what the hidden tests own, revert test
        configuration, run the tests as the agent user, kill every process of that user,
        and only then print the result line (nothing the tests started can print after it)."""
        base, tests = self.image.base_sha, self.task.tests
        restore = [
            f"if git cat-file -e {base}:{shlex.quote(p)} 2>/dev/null; "
            f"then git checkout -q {base} -- {shlex.quote(p)}; else rm -rf -- {shlex.quote(p)}; fi"
            for p in sorted(self._owned)
        ]
        if tests.protect_config:
            restore.append(f"python3 {GRADE_DIR}/config_guard.py {base} {GRADE_DIR}/touched.json")
        if tests.patch:
            restore.append(f"git apply --whitespace=nowarn {GRADE_DIR}/tests.patch")
        for i, (path, _) in enumerate(sorted(tests.files.items())):
            target = shlex.quote(str(PurePosixPath(path)))
            restore.append(f"mkdir -p \"$(dirname {target})\" && cp {GRADE_DIR}/files/{i} {target}")
        command = self.parser.command(tests.command, f"{OUT_DIR}/report.xml")
        limit = max(1, int(tests.timeout + 0.999))
        user = AGENT_USER
        return "\n".join([
            f"cd {shlex.quote(self.task.workdir)} || exit {ERR_SETUP}",
            f"if [ -s {GRADE_DIR}/agent.patch ]; then git apply --binary --whitespace=nowarn "
            f"{GRADE_DIR}/agent.patch || exit {ERR_PATCH}; fi",
            "(set -e", *restore, f") || exit {ERR_SETUP}",
            f"chown -R {user}: . && mkdir -p {OUT_DIR} && chown {user}: {OUT_DIR} || exit {ERR_SETUP}",
            "start=$(date +%s.%N)",
            f"timeout -s KILL {limit} setpriv --reuid={user} --regid={user} --init-groups "
            f"env HOME=/home/{user} bash -c {shlex.quote(command)}",
            "rc=$?",
            "end=$(date +%s.%N)",
            f"pkill -9 -u {user}; sleep 0.1; pkill -9 -u {user}",
            f"echo \"{RESULT_TAG} $rc $start $end\"",
        ])

    def _grade(self, diff: bytes) -> Verdict:
        task = self.task
        touched_all = changed_paths(diff)
        touched = sorted(self._owned & touched_all)
        box = self.pool.acquire(self.spec) if self.pool else Container(self.spec)
        try:
            box.put_files({**self._hidden_files, f"{GRADE_DIR}/agent.patch": diff,
                           f"{GRADE_DIR}/touched.json": json.dumps(sorted(touched_all)).encode(),
                           f"{GRADE_DIR}/config_guard.py": CONFIG_GUARD},
                          root=GRADE_DIR if self.spec.disk_mb else "/")
            ran = box.exec(["bash", "-c", self._script()], user="root",
                           timeout=task.tests.timeout + 300)
            report = box.get_file(f"{OUT_DIR}/report.xml") if ran.exit_code == 0 else None
        finally:
            box.remove_later()
        log, reverted = _split_reverted(ran.text)
        verdict = Verdict(task.id, "unresolved", log=_tail(log), touched_test_files=touched,
                          reverted_config=reverted)
        if ran.exit_code == ERR_PATCH:
            verdict.outcome = "patch_failed"
        elif ran.exit_code != 0:
            verdict.outcome = "error"
            verdict.error = f"the grading script failed before the tests ran (exit {ran.exit_code})"
        else:
            self._judge(verdict, log, report)
        return verdict

    def _judge(self, verdict: Verdict, log: str, report: bytes | None) -> None:
        tests = self.task.tests
        results = RESULT_LINE.findall(log)
        if not results:
            verdict.outcome, verdict.error = "error", "the grading script printed no result line"
            return
        rc, start, end = results[-1]
        verdict.test_seconds = max(0.0, float(end) - float(start))
        if int(rc) == 137 and verdict.test_seconds >= tests.timeout - 0.5:
            verdict.outcome, verdict.error = "timeout", f"tests ran over {tests.timeout:g}s"
            return
        if not report:
            verdict.outcome = "error"
            verdict.error = f"the test command wrote no report (exit code {rc})"
            return
        try:
            distrust = self.parser.verify(report, int(rc), log)
            statuses = self.parser.parse(report, self.task.test_ids())
        except Exception as exc:  # a broken report is an error verdict, never a pass
            verdict.outcome, verdict.error = "error", f"unreadable test report: {exc}"
            return
        verdict.fail_to_pass = {t: statuses[t] for t in tests.fail_to_pass}
        verdict.pass_to_pass = {t: statuses[t] for t in tests.pass_to_pass}
        if distrust:
            verdict.outcome, verdict.error = "error", f"test report not trusted: {distrust}"
        elif all(s == "passed" for s in statuses.values()):
            verdict.outcome = "resolved"


def _split_reverted(text: str) -> tuple[str, list[str]]:
    """The log without the config guard's line, and the paths that line names."""
    reverted: list[str] = []
    kept = []
    for line in text.splitlines(keepends=True):
        if line.startswith("BASHENV_REVERTED "):
            with contextlib.suppress(ValueError):
                reverted = json.loads(line.split(" ", 1)[1])
        else:
            kept.append(line)
    return "".join(kept), reverted
