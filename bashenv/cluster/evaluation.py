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

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bashenv.cluster.grading import graded_on_ray
from bashenv.sandbox import PROCESS_RUN_ID
from bashenv.swebench.evaluate import (
    Outcome,
    grader_digest,
    planned,
    settled,
    stored,
    write_instance,
    write_run_report,
)
from bashenv.task import Task


def evaluate_on_ray(predictions: Path, tasks: list[Task], run_dir: Path,
                    run_id: str = PROCESS_RUN_ID, *, address: str | None = "auto",
                    registry: str | None = None,
                    on_done: Callable[[Outcome], None] | None = None,
                    cache: Path | None = None,
                    say: Callable[[str], None] = print) -> dict[str, Any]:
    """Grade every prediction whose instance is among `tasks` on the cluster at `address`;
    write the run as `bashenv eval` does; return its report."""
    from bashenv.cache import cache_dir

    preds, todo = planned(predictions, tasks)
    cache = cache or cache_dir() / "eval"
    grader = grader_digest()
    run_dir.mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []

    def finish(task: Task, patch: str | None, outcome: Outcome) -> None:
        write_instance(run_dir, task, patch, outcome)
        outcomes.append(outcome)
        if on_done:
            on_done(outcome)

    remote: list[tuple[Task, str, str]] = []  # (task, patch, cache key)
    for task, patch in todo:
        known = settled(task, patch, cache, grader)
        if isinstance(known, Outcome):
            finish(task, patch, known)
        else:
            remote.append((task, patch or "", known))
    if remote:
        diffs = [(task, patch) for task, patch, _ in remote]
        for index, graded in graded_on_ray(diffs, address=address, run_id=run_id,
                                           registry=registry, say=say):
            task, patch, key = remote[index]
            finish(task, patch, stored(task, graded, cache, key))
    return write_run_report(run_dir, tasks, preds, outcomes)
