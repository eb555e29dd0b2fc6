"""`bashenv tasks validate`: is a task sound, test by test, as SWE-bench checks it?

Every FAIL_TO_PASS test must fail (or error, or not run at all: SWE-bench counts a test
missing from the log as failed) before the gold patch and pass after it; every
PASS_TO_PASS test must pass both times. An id in both lists, an id that never ran (with
the nearest id the report does hold), and a test patch that touches files other than
tests are problems too. Each problem carries its cause (one of CAUSES), so a run over
thousands of instances sums up as "these behave here; these do not, and why". Each task
is checked on its own: a task file that does not load, or a task whose image does not
build, is reported and the rest go on; `workers` tasks are checked at once.
"""

from __future__ import annotations

import contextlib
import difflib
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from bashenv.errors import BashenvError
from bashenv.grading.diff import changed_paths
from bashenv.grading.rewarder import Rewarder
from bashenv.grading.verdict import Verdict
from bashenv.task.loader import find_task_files, load_task
from bashenv.task.model import Task

TEST_DIRS = {"test", "tests", "testing"}
FAILING = ("failed", "error", "missing")  # what "fails before the fix" accepts, as SWE-bench
# Why a task does not behave here, most fundamental first (a summary groups by these).
CAUSES = ("task file does not load", "image build failed", "grading error",
          "gold patch does not apply", "needs network", "test id never ran",
          "FAIL_TO_PASS passes before gold", "FAIL_TO_PASS fails with gold",
          "PASS_TO_PASS fails", "test lists overlap", "test patch changes non-test files")
# What a test log shows when a test wanted a network (grading containers have none).
NETWORK_ERRORS = re.compile(
    r"Temporary failure in name resolution|Name or service not known|Network is unreachable|"
    r"No route to host|nodename nor servname|ConnectTimeout|ConnectionError|"
    r"Max retries exceeded|Failed to establish a new connection|getaddrinfo failed")


class Problem(str):
    """One problem's text (a str, as printed), with its cause: one of CAUSES."""

    cause: str

    def __new__(cls, cause: str, text: str) -> Problem:
        problem = super().__new__(cls, text)
        problem.cause = cause
        return problem


@dataclass
class TaskReport:
    """What validation found for one task file: problems are reasons, one per line."""

    task_id: str
    source: str
    problems: list[str] = field(default_factory=list)
    loaded: bool = True  # False: the task file itself does not load (the problem says why)
    base: Verdict | None = None  # the hidden tests before the gold patch
    gold: Verdict | None = None  # and after it

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def causes(self) -> list[str]:
        """The distinct causes of this task's problems, most fundamental first."""
        found = {getattr(p, "cause", "other") for p in self.problems}
        return [c for c in (*CAUSES, "other") if c in found]

    def to_dict(self) -> dict[str, object]:
        return {"task_id": self.task_id, "source": self.source, "ok": self.ok,
                "causes": self.causes, "problems": [str(p) for p in self.problems],
                "before_gold": self.base.outcome if self.base else None,
                "with_gold": self.gold.outcome if self.gold else None}


def summarize(reports: list[TaskReport]) -> dict[str, list[str]]:
    """cause → the task ids it explains (ok tasks under "behaves"), in CAUSES order."""
    groups: dict[str, list[str]] = {"behaves": [r.task_id for r in reports if r.ok]}
    for cause in (*CAUSES, "other"):
        ids = [r.task_id for r in reports if r.causes and r.causes[0] == cause]
        if ids:
            groups[cause] = ids
    return groups


def is_test_path(path: str) -> bool:
    """A test file by the usual conventions: under a test directory, or named like a test."""
    parts = PurePosixPath(path).parts
    name = parts[-1] if parts else ""
    return (any(p in TEST_DIRS for p in parts[:-1]) or name.startswith("test_")
            or name.endswith("_test.py") or name == "conftest.py")


def static_problems(task: Task) -> list[str]:
    """What is wrong with a task without running anything."""
    tests, problems = task.tests, list[str]()
    for tid in sorted(set(tests.fail_to_pass) & set(tests.pass_to_pass)):
        problems.append(Problem("test lists overlap", f"{tid} is in both FAIL_TO_PASS and PASS_TO_PASS"))
    for name, ids in (("FAIL_TO_PASS", tests.fail_to_pass), ("PASS_TO_PASS", tests.pass_to_pass)):
        for tid in sorted({t for t in ids if ids.count(t) > 1}):
            problems.append(Problem("test lists overlap", f"{tid} is listed twice in {name}"))
    touched = changed_paths(tests.patch) if tests.patch else set()
    for path in sorted(p for p in touched | set(tests.files) if not is_test_path(p)):
        problems.append(Problem("test patch changes non-test files",
                                f"the hidden tests change {path}, which is not a test file "
                                "(the agent's version of it would be overwritten)"))
    return problems


def _nearest(tid: str, known: list[str]) -> str:
    close = difflib.get_close_matches(tid, known, n=1, cutoff=0.5)
    return f"; nearest existing id: {close[0]}" if close else ""


def _network(verdict: Verdict | None) -> str | None:
    found = NETWORK_ERRORS.search(verdict.log) if verdict else None
    return found.group(0) if found else None


def run_problems(task: Task, base: Verdict, gold: Verdict | None, known: list[str]) -> list[str]:
    """What the two runs (no change; the gold patch) say is wrong with the task."""
    problems: list[str] = []
    for label, verdict in (("before the gold patch", base), ("with the gold patch", gold)):
        if verdict is not None and verdict.outcome in ("error", "timeout", "patch_failed"):
            reason = verdict.error or verdict.log[-800:]
            cause = ("gold patch does not apply" if verdict.outcome == "patch_failed"
                     else "grading error")
            problems.append(Problem(cause, f"{label}: {verdict.outcome}: {reason}"))

    def must_pass(cause: str, text: str, verdict: Verdict) -> None:
        # A test that should pass and does not, in a log full of connection errors: the
        # test wants a network, which grading containers never have.
        net = _network(verdict)
        problems.append(Problem("needs network", f"{text}; the log shows {net!r}") if net
                        else Problem(cause, text))

    # FAIL_TO_PASS may be missing before the fix (SWE-bench counts it failed: e.g. a bug
    # that crashes the test session); any test missing where it must pass is a problem.
    must_run = [(tid, s) for tid, s in base.pass_to_pass.items()]
    if gold is not None:
        must_run += [*gold.fail_to_pass.items(), *gold.pass_to_pass.items()]
    missing = sorted({tid for tid, s in must_run if s == "missing"})
    for tid in missing:
        problems.append(Problem("test id never ran", f"{tid} never ran (missing){_nearest(tid, known)}"))
    for tid, status in base.fail_to_pass.items():
        if status not in FAILING:
            problems.append(Problem("FAIL_TO_PASS passes before gold",
                                    f"FAIL_TO_PASS {tid} is {status} before the gold patch (must fail)"))
    for tid, status in base.pass_to_pass.items():
        if tid not in missing and status != "passed":
            must_pass("PASS_TO_PASS fails",
                      f"PASS_TO_PASS {tid} is {status} before the gold patch (must pass)", base)
    if gold is not None:
        for tid, status in gold.fail_to_pass.items():
            if tid not in missing and status != "passed":
                must_pass("FAIL_TO_PASS fails with gold",
                          f"{tid} is {status} with the gold patch (must pass)", gold)
        for tid, status in gold.pass_to_pass.items():
            if tid not in missing and status != "passed":
                must_pass("PASS_TO_PASS fails", f"{tid} is {status} with the gold patch (must pass)",
                          gold)
    return problems


def validate_task(task: Task, run_id: str, image_for: Callable[[Task], object]) -> TaskReport:
    """Check one loaded task: statically, then in containers (no change, gold patch)."""
    report = TaskReport(task.id, str(task.source_file or "-"), static_problems(task))
    try:
        image = image_for(task)
    except Exception as exc:  # this task's problem; the others go on
        report.problems.append(Problem("image build failed", f"the task image does not build: "
                                       f"{_reason(exc)}"))
        return report
    try:
        rewarder = Rewarder(task, image, run_id)  # type: ignore[arg-type]
        base, base_xml = rewarder.grade_with_report(b"")
        gold, gold_xml = rewarder.grade_with_report(task.gold_patch) if task.gold_patch else (None, None)
    except Exception as exc:
        report.problems.append(Problem("grading error", f"cannot run the hidden tests: {_reason(exc)}"))
        return report
    report.base, report.gold = base, gold
    parser = rewarder.parser  # as the run was read (a hardened pytest log: its log part)
    known: list[str] = []
    for xml in (base_xml, gold_xml):
        with contextlib.suppress(Exception):  # an unreadable report is its run's problem
            known += parser.report_ids(xml) if xml else []
    report.problems += run_problems(task, base, gold, sorted(set(known)))
    return report


def _reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, BashenvError) else f"{type(exc).__name__}: {exc}"


def validate_path(path: Path, run_id: str, image_for: Callable[[Task], object],
                  on_report: Callable[[TaskReport], None] | None = None,
                  workers: int = 1) -> list[TaskReport]:
    """Every task file at `path` (a file or a directory), each on its own, `workers` at
    once; `on_report` sees each report as it is done. Reports come back in file order."""
    files = find_task_files(path) if path.is_dir() else [path]
    if not files:
        return [TaskReport("-", str(path), [f"{path}: no task files (task.yaml or *.task.yaml)"],
                           loaded=False)]
    ready: list[TaskReport | Task] = []
    seen: dict[str, str] = {}
    for file in files:  # loading is quick and ordered: duplicates are found here
        try:
            task = load_task(file)
        except BashenvError as exc:
            ready.append(TaskReport(file.parent.name, str(file),
                                    [Problem("task file does not load", str(exc))], loaded=False))
            continue
        if task.id in seen:
            ready.append(TaskReport(task.id, str(file), [Problem(
                "task file does not load", f"duplicate task id (also {seen[task.id]})")]))
        else:
            seen[task.id] = str(file)
            ready.append(task)
    lock = threading.Lock()

    def check(item: TaskReport | Task) -> TaskReport:
        report = item if isinstance(item, TaskReport) else validate_task(item, run_id, image_for)
        if on_report:
            with lock:
                on_report(report)
        return report

    if workers <= 1:
        return [check(item) for item in ready]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(check, ready))
