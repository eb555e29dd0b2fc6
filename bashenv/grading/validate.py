"""`bashenv tasks validate`: is a task sound, test by test, as SWE-bench checks it?

Every FAIL_TO_PASS test must fail (or error) before the gold patch and pass after it;
every PASS_TO_PASS test must pass both times. An id in both lists, an id that never ran
(with the nearest id the report does hold), and a test patch that touches files other
than tests are problems too. Each task is checked on its own: a task file that does not
load, or a task whose image does not build, is reported and the rest go on.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from bashenv.errors import BashenvError
from bashenv.grading.diff import changed_paths
from bashenv.grading.parsers import PARSERS
from bashenv.grading.rewarder import Rewarder
from bashenv.grading.verdict import Verdict
from bashenv.task.loader import find_task_files, load_task
from bashenv.task.model import Task

TEST_DIRS = {"test", "tests", "testing"}
FAILING = ("failed", "error")


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


def is_test_path(path: str) -> bool:
    """A test file by the usual conventions: under a test directory, or named like a test."""
    parts = PurePosixPath(path).parts
    name = parts[-1] if parts else ""
    return (any(p in TEST_DIRS for p in parts[:-1]) or name.startswith("test_")
            or name.endswith("_test.py") or name == "conftest.py")


def static_problems(task: Task) -> list[str]:
    """What is wrong with a task without running anything."""
    tests, problems = task.tests, []
    for tid in sorted(set(tests.fail_to_pass) & set(tests.pass_to_pass)):
        problems.append(f"{tid} is in both FAIL_TO_PASS and PASS_TO_PASS")
    for name, ids in (("FAIL_TO_PASS", tests.fail_to_pass), ("PASS_TO_PASS", tests.pass_to_pass)):
        for tid in sorted({t for t in ids if ids.count(t) > 1}):
            problems.append(f"{tid} is listed twice in {name}")
    touched = changed_paths(tests.patch) if tests.patch else set()
    for path in sorted(p for p in touched | set(tests.files) if not is_test_path(p)):
        problems.append(f"the hidden tests change {path}, which is not a test file "
                        "(the agent's version of it would be overwritten)")
    return problems


def _nearest(tid: str, known: list[str]) -> str:
    close = difflib.get_close_matches(tid, known, n=1, cutoff=0.5)
    return f"; nearest existing id: {close[0]}" if close else ""


def run_problems(task: Task, base: Verdict, gold: Verdict | None, known: list[str]) -> list[str]:
    """What the two runs (no change; the gold patch) say is wrong with the task."""
    problems = []
    for label, verdict in (("before the gold patch", base), ("with the gold patch", gold)):
        if verdict is not None and verdict.outcome in ("error", "timeout", "patch_failed"):
            reason = verdict.error or verdict.log[-800:]
            problems.append(f"{label}: {verdict.outcome}: {reason}")
    runs = [("before the gold patch", base)] + ([("with the gold patch", gold)] if gold else [])
    missing = {t for _, v in runs for t, s in {**v.fail_to_pass, **v.pass_to_pass}.items()
               if s == "missing"}
    for tid in sorted(missing):
        problems.append(f"{tid} never ran (missing){_nearest(tid, known)}")
    for tid, status in base.fail_to_pass.items():
        if tid not in missing and status not in FAILING:
            problems.append(f"FAIL_TO_PASS {tid} is {status} before the gold patch (must fail)")
    for tid, status in base.pass_to_pass.items():
        if tid not in missing and status != "passed":
            problems.append(f"PASS_TO_PASS {tid} is {status} before the gold patch (must pass)")
    if gold is not None:
        for tid, status in {**gold.fail_to_pass, **gold.pass_to_pass}.items():
            if tid not in missing and status != "passed":
                problems.append(f"{tid} is {status} with the gold patch (must pass)")
    return problems


def validate_task(task: Task, run_id: str, image_for: Callable[[Task], object]) -> TaskReport:
    """Check one loaded task: statically, then in containers (no change, gold patch)."""
    report = TaskReport(task.id, str(task.source_file or "-"), static_problems(task))
    try:
        rewarder = Rewarder(task, image_for(task), run_id)  # type: ignore[arg-type]
        base, base_xml = rewarder.grade_with_report(b"")
        gold, gold_xml = rewarder.grade_with_report(task.gold_patch) if task.gold_patch else (None, None)
    except Exception as exc:  # any failure is this task's problem; the others go on
        reason = str(exc) if isinstance(exc, BashenvError) else f"{type(exc).__name__}: {exc}"
        report.problems.append(f"cannot run the hidden tests: {reason}")
        return report
    report.base, report.gold = base, gold
    parser = PARSERS[task.tests.runner]
    known: list[str] = []
    for xml in (base_xml, gold_xml):
        with contextlib.suppress(Exception):  # an unreadable report is its run's problem
            known += parser.report_ids(xml) if xml else []
    report.problems += run_problems(task, base, gold, sorted(set(known)))
    return report


def validate_path(path: Path, run_id: str, image_for: Callable[[Task], object],
                  on_report: Callable[[TaskReport], None] | None = None) -> list[TaskReport]:
    """Every task file at `path` (a file or a directory), each on its own."""
    files = find_task_files(path) if path.is_dir() else [path]
    reports = []
    seen: dict[str, str] = {}
    for file in files:
        try:
            task = load_task(file)
        except BashenvError as exc:
            report = TaskReport(file.parent.name, str(file), [str(exc)], loaded=False)
        else:
            if task.id in seen:
                report = TaskReport(task.id, str(file), [f"duplicate task id (also {seen[task.id]})"])
            else:
                seen[task.id] = str(file)
                report = validate_task(task, run_id, image_for)
        reports.append(report)
        if on_report:
            on_report(report)
    if not files:
        reports.append(TaskReport("-", str(path), [f"{path}: no task files (task.yaml or "
                                                   "*.task.yaml)"], loaded=False))
    return reports
