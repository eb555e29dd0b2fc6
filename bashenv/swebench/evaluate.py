"""`bashenv eval`: a SWE-bench predictions file graded with no agent, written as SWE-bench's
harness writes a run: RUN_DIR/report.json and RUN_DIR/<instance_id>/{patch.diff,
report.json, test_output.txt} (plus verdict.json, bashenv's own record).

Resumable: a verdict is cached under the task's content (its definition, its images' tags,
the grader's code) and the patch's hash, never under the run's name, so a second run, or
another run of the same patch, grades nothing again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bashenv.errors import BashenvError, TaskError
from bashenv.swebench.instances import read_records
from bashenv.task.model import Task

GRADING_DIR = Path(__file__).parent.parent / "grading"


@dataclass
class Outcome:
    instance_id: str
    status: str  # resolved | unresolved | empty_patch | error
    verdict: dict[str, Any]
    cached: bool = False


def read_predictions(path: Path) -> dict[str, dict[str, Any]]:
    """instance_id → prediction, from a JSON list, JSONL or a JSON {id: prediction} map."""
    text = path.read_text(encoding="utf-8") if path.is_file() else None
    if text is None:
        raise TaskError(f"{path}: no such predictions file")
    data = None
    if text.lstrip().startswith("{"):  # one JSON object (pretty-printed or not), or JSONL
        with contextlib.suppress(ValueError):  # not one object: JSONL, read below
            data = json.loads(text)
    if isinstance(data, dict):
        records = [data] if "instance_id" in data else list(data.values())
        if not all(isinstance(r, dict) for r in records):
            raise TaskError(f"{path}: expected an object of instance_id → prediction objects")
    else:
        records = read_records(path)
    preds = {}
    for number, record in enumerate(records, 1):
        if "instance_id" not in record:
            raise TaskError(f"{path}: prediction {number}: no field 'instance_id'")
        preds[str(record["instance_id"])] = record
    return preds


def grader_digest() -> str:
    """The code a verdict depends on: the grader, and the log parsers it may call (bashenv's,
    and SWE-bench's own when its package is around)."""
    from bashenv.swebench.swebench_parsers import source_digest

    digest = hashlib.sha256()
    here = Path(__file__).parent
    for file in [*sorted(GRADING_DIR.glob("*.py")), here / "log_parsers.py",
                 here / "swebench_parsers.py"]:
        digest.update(file.read_bytes())
    digest.update(source_digest().encode())
    return digest.hexdigest()


def cache_key(task: Task, patch: str, grader: str) -> str:
    from bashenv.images.build import image_tags

    definition = task.model_dump(mode="json", exclude={"metadata"})
    payload = json.dumps([definition, image_tags(task), grader,
                          hashlib.sha256(patch.encode("utf-8", "surrogateescape")).hexdigest()],
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def instance_report(task: Task, patch: str | None, verdict: dict[str, Any]) -> dict[str, Any]:
    """SWE-bench's per-instance report.json."""
    def split(statuses: dict[str, str]) -> dict[str, list[str]]:
        return {"success": [t for t, s in statuses.items() if s == "passed"],
                "failure": [t for t, s in statuses.items() if s != "passed"]}

    applied = verdict.get("apply_method") not in (None, "failed")  # see grading/apply.py
    return {task.id: {
        "patch_is_None": patch is None,
        "patch_exists": bool(patch),
        "patch_successfully_applied": bool(patch) and applied,
        "resolved": verdict.get("outcome") == "resolved",
        "tests_status": {
            "FAIL_TO_PASS": split(verdict.get("fail_to_pass", {})),
            "PASS_TO_PASS": split(verdict.get("pass_to_pass", {})),
            "FAIL_TO_FAIL": {"success": [], "failure": []},
            "PASS_TO_FAIL": {"success": [], "failure": []},
        },
    }}


def status_of(verdict: dict[str, Any]) -> str:
    outcome = verdict.get("outcome")
    if outcome == "resolved":
        return "resolved"
    if outcome in ("unresolved", "timeout", "tampered"):  # graded, not resolved (a tampered
        return "unresolved"  # run is the patch's doing, not the harness's: never "error")
    return "empty_patch" if outcome == "empty_patch" else "error"


def settled(task: Task, patch: str | None, cache: Path, grader: str) -> Outcome | str:
    """The outcome known without grading (an empty patch, a key that cannot be made, a
    cached verdict), else the cache key the verdict will be stored under."""
    if not patch or not patch.strip():
        return Outcome(task.id, "empty_patch", {"task_id": task.id, "outcome": "empty_patch"})
    try:
        key = cache_key(task, patch, grader)
    except BashenvError as exc:
        return Outcome(task.id, "error", {"task_id": task.id, "outcome": "error", "error": str(exc)})
    cached = cache / f"{key}.json"
    if cached.is_file():
        verdict = json.loads(cached.read_text())
        return Outcome(task.id, status_of(verdict), verdict, cached=True)
    return key


def stored(task: Task, graded: dict[str, Any], cache: Path, key: str) -> Outcome:
    """A fresh verdict with the task's Python recorded, cached unless it is an infra failure
    (an engine hiccup or a lost grading is graded again on the next run, never cached)."""
    verdict = {**graded, "python": task.metadata.get("python"),
               "python_spec": task.metadata.get("python_spec")}
    if not verdict.get("infra"):
        cache.mkdir(parents=True, exist_ok=True)
        target = cache / f"{key}.json"
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(verdict))
        tmp.replace(target)
    return Outcome(task.id, status_of(verdict), verdict)


def grade_one(task: Task, patch: str | None, run_id: str, cache: Path,
              grader: str) -> Outcome:
    """One prediction: from the cache, else a fresh grading container."""
    from bashenv.grading import Rewarder
    from bashenv.images import ensure_task_image

    known = settled(task, patch, cache, grader)
    if isinstance(known, Outcome):
        return known
    try:
        image = ensure_task_image(task)
    except BashenvError as exc:
        return Outcome(task.id, "error", {"task_id": task.id, "outcome": "error",
                                          "error": f"image build: {exc}"})
    # apply_method: the Verdict's, as the grader saw it
    return stored(task, Rewarder(task, image, run_id).grade(patch or "").to_dict(), cache, known)


def write_instance(run_dir: Path, task: Task, patch: str | None, outcome: Outcome) -> None:
    folder = run_dir / task.id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "patch.diff").write_text(patch or "", encoding="utf-8")
    (folder / "report.json").write_text(json.dumps(instance_report(task, patch, outcome.verdict),
                                                   indent=2))
    log = outcome.verdict.get("log") or outcome.verdict.get("error") or ""
    (folder / "test_output.txt").write_text(log, encoding="utf-8")
    (folder / "verdict.json").write_text(json.dumps(outcome.verdict, indent=2))


def run_report(tasks: list[Task], preds: dict[str, dict[str, Any]],
               outcomes: list[Outcome]) -> dict[str, Any]:
    """SWE-bench's run report (schema_version 2 of its make_run_report)."""
    ids: dict[str, list[str]] = {k: [] for k in ("resolved", "unresolved", "empty_patch", "error")}
    for outcome in outcomes:
        ids[outcome.status].append(outcome.instance_id)
    completed = sorted(ids["resolved"] + ids["unresolved"])
    submitted = sorted(p for p in preds if p in {t.id for t in tasks})
    return {
        "total_instances": len(tasks),
        "submitted_instances": len(submitted),
        "completed_instances": len(completed),
        "resolved_instances": len(ids["resolved"]),
        "unresolved_instances": len(ids["unresolved"]),
        "empty_patch_instances": len(ids["empty_patch"]),
        "error_instances": len(ids["error"]),
        "completed_ids": completed,
        "incomplete_ids": sorted(t.id for t in tasks if t.id not in preds),
        "empty_patch_ids": sorted(ids["empty_patch"]),
        "submitted_ids": submitted,
        "resolved_ids": sorted(ids["resolved"]),
        "unresolved_ids": sorted(ids["unresolved"]),
        "error_ids": sorted(ids["error"]),
        "schema_version": 2,
    }


def planned(predictions: Path, tasks: list[Task]) -> tuple[dict[str, dict[str, Any]],
                                                               list[tuple[Task, str | None]]]:
    """The predictions, and (task, patch) for each one naming a task among `tasks`."""
    preds = read_predictions(predictions)
    by_id = {t.id: t for t in tasks}
    todo = [(by_id[i], p.get("model_patch")) for i, p in sorted(preds.items()) if i in by_id]
    if not todo:
        raise TaskError(f"{predictions}: no prediction names a task among the {len(tasks)} given")
    return preds, todo


def write_run_report(run_dir: Path, tasks: list[Task], preds: dict[str, dict[str, Any]],
                     outcomes: list[Outcome]) -> dict[str, Any]:
    report = run_report(tasks, preds, outcomes)
    (run_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report


def evaluate(predictions: Path, tasks: list[Task], run_dir: Path, run_id: str, workers: int = 2,
             on_done: Callable[[Outcome], None] | None = None,
             cache: Path | None = None) -> dict[str, Any]:
    """Grade every prediction whose instance is among `tasks`; write the run; return its report."""
    from bashenv.cache import cache_dir

    preds, todo = planned(predictions, tasks)
    cache = cache or cache_dir() / "eval"
    grader = grader_digest()
    run_dir.mkdir(parents=True, exist_ok=True)

    def job(item: tuple[Task, str | None]) -> Outcome:
        task, patch = item
        outcome = grade_one(task, patch, run_id, cache, grader)
        write_instance(run_dir, task, patch, outcome)
        if on_done:
            on_done(outcome)
        return outcome

    with ThreadPoolExecutor(max(1, workers)) as pool:
        outcomes = list(pool.map(job, todo))
    return write_run_report(run_dir, tasks, preds, outcomes)


def unknown_predictions(predictions: Path, tasks: list[Task]) -> list[str]:
    known = {t.id for t in tasks}
    return sorted(i for i in read_predictions(predictions) if i not in known)
