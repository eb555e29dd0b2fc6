"""`bashenv eval --ray`: a SWE-bench predictions file graded as Ray tasks over the
cluster's nodes, written exactly as the local `bashenv eval` writes it
(bashenv/swebench/evaluate.py): RUN_DIR/report.json and RUN_DIR/<instance_id>/
{patch.diff, report.json, test_output.txt, verdict.json}.

The driver alone decides and writes: empty patches and verdicts already in the cache
(the same cache, under the same keys, as local evaluation, so either resumes the other)
never leave it; the rest are graded on the nodes (cluster/grading.py), and each verdict
is cached and written when it arrives. verdict.json names the node that graded it
(`node`) and any grading lost on the way to a dead worker or node (`infra_errors`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bashenv.cluster.grading import graded_on_ray
from bashenv.errors import BashenvError, TaskError
from bashenv.sandbox import PROCESS_RUN_ID
from bashenv.swebench.evaluate import (
    Outcome,
    _grader_digest,
    _status,
    cache_key,
    read_predictions,
    run_report,
    write_instance,
)
from bashenv.task import Task


def _settled(task: Task, patch: str | None, cache: Path, grader: str) -> Outcome | str:
    """The outcome the driver knows without grading (as swebench.evaluate.grade_one
    decides it), else the cache key under which the verdict will be stored."""
    if not patch or not patch.strip():
        return Outcome(task.id, "empty_patch", {"task_id": task.id, "outcome": "empty_patch"})
    try:
        key = cache_key(task, patch, grader)
    except BashenvError as exc:
        return Outcome(task.id, "error", {"task_id": task.id, "outcome": "error", "error": str(exc)})
    cached = cache / f"{key}.json"
    if cached.is_file():
        verdict = json.loads(cached.read_text())
        return Outcome(task.id, _status(verdict), verdict, cached=True)
    return key


def _store(cache: Path, key: str, verdict: dict[str, Any]) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"{key}.json"
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(verdict))
    tmp.replace(target)


def evaluate_on_ray(predictions: Path, tasks: list[Task], run_dir: Path,
                    run_id: str = PROCESS_RUN_ID, *, address: str | None = "auto",
                    registry: str | None = None,
                    on_done: Callable[[Outcome], None] | None = None,
                    cache: Path | None = None,
                    say: Callable[[str], None] = print) -> dict[str, Any]:
    """Grade every prediction whose instance is among `tasks` on the cluster at `address`;
    write the run as `bashenv eval` does; return its report."""
    from bashenv.task.source import cache_dir

    preds = read_predictions(predictions)
    by_id = {t.id: t for t in tasks}
    todo = [(by_id[i], p.get("model_patch")) for i, p in sorted(preds.items()) if i in by_id]
    if not todo:
        raise TaskError(f"{predictions}: no prediction names a task among the {len(tasks)} given")
    cache = cache or cache_dir() / "eval"
    grader = _grader_digest()
    run_dir.mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []

    def finish(task: Task, patch: str | None, outcome: Outcome) -> None:
        write_instance(run_dir, task, patch, outcome)
        outcomes.append(outcome)
        if on_done:
            on_done(outcome)

    remote: list[tuple[Task, str, str]] = []  # (task, patch, cache key)
    for task, patch in todo:
        known = _settled(task, patch, cache, grader)
        if isinstance(known, Outcome):
            finish(task, patch, known)
        else:
            remote.append((task, patch or "", known))
    if remote:
        diffs = [(task, patch) for task, patch, _ in remote]
        for index, graded in graded_on_ray(diffs, address=address, run_id=run_id,
                                           registry=registry, say=say):
            task, patch, key = remote[index]
            verdict = {**graded, "python": task.metadata.get("python"),
                       "python_spec": task.metadata.get("python_spec")}
            if not verdict.get("infra"):  # an engine hiccup or a lost grading: re-run grades it
                _store(cache, key, verdict)
            finish(task, patch, Outcome(task.id, _status(verdict), verdict))
    report = run_report(tasks, preds, outcomes)
    (run_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report
