"""Diff in, verdict out: a fresh container, the agent's diff, the hidden tests, a report.

The agent's container is never used for grading. The files the hidden tests own are
restored to their base versions before the hidden tests are written, so editing or
deleting tests cannot help. Results come from a report file outside the repository.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

from bashenv.errors import BashenvError
from bashenv.grading.diff import changed_paths
from bashenv.grading.parsers import PARSERS
from bashenv.images.build import TaskImage
from bashenv.sandbox.container import PROCESS_RUN_ID, Container, SandboxSpec
from bashenv.task.model import Task

GRADE_DIR = "/bashenv_grade"  # outside the repository
OUTCOMES = ("resolved", "unresolved", "patch_failed", "timeout", "error")
LOG_LIMIT = 20000


@dataclass
class Verdict:
    task_id: str
    outcome: str
    fail_to_pass: dict[str, str] = field(default_factory=dict)
    pass_to_pass: dict[str, str] = field(default_factory=dict)
    log: str = ""
    error: str | None = None
    touched_test_files: list[str] = field(default_factory=list)
    test_seconds: float = 0.0
    seconds: float = 0.0

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
    """Grades diffs for one task. Thread-safe: every `grade` uses its own container."""

    def __init__(self, task: Task, image: TaskImage, run_id: str = PROCESS_RUN_ID) -> None:
        self.task = task
        self.image = image
        self.run_id = run_id
        self.parser = PARSERS[task.tests.runner]

    def grade(self, diff: bytes | str) -> Verdict:
        started = time.monotonic()
        patch = diff.encode("utf-8", "surrogateescape") if isinstance(diff, str) else diff
        try:
            verdict = self._grade(patch)
        except BashenvError as exc:
            verdict = Verdict(self.task.id, "error", error=str(exc))
        verdict.seconds = time.monotonic() - started
        return verdict

    def _grade(self, diff: bytes) -> Verdict:
        task = self.task
        limits = task.limits
        spec = SandboxSpec(image=self.image.tag, workdir=task.workdir, memory=limits.memory,
                           cpus=limits.cpus, pids=limits.pids, run_id=self.run_id,
                           labels={"bashenv.role": "grader", "bashenv.task": task.id})
        owned = owned_test_paths(task)
        touched = sorted(owned & changed_paths(diff.decode("utf-8", "replace")))
        with Container(spec) as box:
            if diff.strip():
                box.put_file(f"{GRADE_DIR}/agent.patch", diff)
                applied = box.exec(["git", "apply", "--binary", "--whitespace=nowarn",
                                    f"{GRADE_DIR}/agent.patch"], user="root", timeout=120)
                if applied.exit_code != 0:
                    return Verdict(task.id, "patch_failed", log=_tail(applied.text),
                                   touched_test_files=touched)
            restored = self._install_hidden_tests(box, owned)
            if restored is not None:
                return Verdict(task.id, "error", error=restored, touched_test_files=touched)
            return self._run_tests(box, touched)

    def _install_hidden_tests(self, box: Container, owned: set[str]) -> str | None:
        """Restore owned files to base, then write the hidden tests; an error text or None."""
        base = self.image.base_sha
        restore = [
            f"if git cat-file -e {base}:{shlex.quote(p)} 2>/dev/null; "
            f"then git checkout -q {base} -- {shlex.quote(p)}; else rm -rf -- {shlex.quote(p)}; fi"
            for p in sorted(owned)
        ]
        if self.task.tests.patch:
            box.put_file(f"{GRADE_DIR}/tests.patch", self.task.tests.patch.encode())
            restore.append(f"git apply --whitespace=nowarn {GRADE_DIR}/tests.patch")
        for i, (path, content) in enumerate(sorted(self.task.tests.files.items())):
            box.put_file(f"{GRADE_DIR}/files/{i}", content.encode())
            target = shlex.quote(str(PurePosixPath(path)))
            restore.append(f"mkdir -p \"$(dirname {target})\" && cp {GRADE_DIR}/files/{i} {target}")
        if not restore:
            return None
        done = box.exec(["bash", "-c", "set -e\n" + "\n".join(restore)], user="root", timeout=120)
        if done.exit_code != 0:
            return f"installing the hidden tests failed (rc {done.exit_code}): {done.text[-2000:]}"
        return None

    def _run_tests(self, box: Container, touched: list[str]) -> Verdict:
        task, tests = self.task, self.task.tests
        report = f"{GRADE_DIR}/report.xml"
        command = self.parser.command(tests.command, report)
        started = time.monotonic()
        ran = box.exec(["bash", "-c", command], user="root", timeout=tests.timeout)
        elapsed = time.monotonic() - started
        log = _tail(ran.text)
        verdict = Verdict(task.id, "unresolved", log=log, touched_test_files=touched,
                          test_seconds=elapsed)
        if ran.exit_code == 137 and elapsed >= tests.timeout:
            verdict.outcome, verdict.error = "timeout", f"tests ran over {tests.timeout:g}s"
            return verdict
        data = box.get_file(report)
        if not data:
            verdict.outcome = "error"
            verdict.error = f"the test command wrote no report (exit code {ran.exit_code})"
            return verdict
        try:
            statuses = self.parser.parse(data, task.test_ids())
        except Exception as exc:  # a broken report is an error verdict, never a pass
            verdict.outcome, verdict.error = "error", f"unreadable test report: {exc}"
            return verdict
        verdict.fail_to_pass = {t: statuses[t] for t in tests.fail_to_pass}
        verdict.pass_to_pass = {t: statuses[t] for t in tests.pass_to_pass}
        if all(s == "passed" for s in statuses.values()):
            verdict.outcome = "resolved"
        return verdict
