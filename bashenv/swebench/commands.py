"""The `bashenv tasks import`, `tasks validate`, `tasks export` and `bashenv eval` commands'
bodies (the cli package only declares their options)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bashenv.errors import TaskError
from bashenv.grading.validate import TaskReport, summarize, validate_path
from bashenv.swebench.evaluate import Outcome, evaluate, read_predictions, unknown_predictions
from bashenv.swebench.export import export_tasks
from bashenv.swebench.importer import import_instances
from bashenv.task.loader import load_tasks
from bashenv.task.model import Task


def split_ids(ids: list[str] | None) -> list[str] | None:
    """`--ids a --ids b`, `--ids a,b` or `--ids "a b"`: one list."""
    found = [i for value in ids or [] for i in value.replace(",", " ").split()]
    return found or None


def run_import(file: Path, outdir: Path, repos: Path | None, ids: list[str] | None,
               workers: int, registry: bool, err: Console) -> None:
    started = time.monotonic()
    result = import_instances(file, outdir, repos, split_ids(ids), workers, registry)
    for iid, (spec, used) in sorted(result.python_mismatch.items()):
        err.print(f"[yellow]{iid}: Python {used} (spec asks for {spec}; the nearest base "
                  f"bashenv builds{'' if registry else ' offline'})")
    if result.inferred:
        err.print(f"[yellow]{len(result.inferred)} instance(s) without a SWE-bench spec: "
                  "environment inferred (see each task.yaml's metadata.notes)")
    Console().print(f"imported {len(result.written)} instance(s) into {outdir} "
                    f"in {time.monotonic() - started:.2f}s")


SHOWN = 8  # problems printed per task (a task without a network can have hundreds)


def run_validate(path: Path, run_id: str, workers: int, report_file: Path | None,
                 err: Console) -> None:
    """Validate with a progress bar, a line per task, a table and a summary by cause; exits 1
    when a task does not behave (TaskError when a task file does not even load)."""
    import typer

    from bashenv.images import ensure_task_image

    started = time.monotonic()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=err) as progress:
        bar = progress.add_task(f"validating ({workers} at once)", total=None)

        def show(report: TaskReport) -> None:
            progress.advance(bar)
            for problem in report.problems[:SHOWN]:
                progress.console.print(f"{report.task_id}: {problem}", markup=False, style="red")
            if len(report.problems) > SHOWN:
                progress.console.print(f"{report.task_id}: ... {len(report.problems) - SHOWN} "
                                       "more problem(s) (--report FILE lists all)", style="red")
            progress.console.print(f"{report.task_id}: "
                                   f"{'ok' if report.ok else 'FAILED (' + ', '.join(report.causes) + ')'}",
                                   markup=False)

        reports = validate_path(path, run_id, ensure_task_image, show, workers)
    seconds = time.monotonic() - started
    table = Table("task", "no change", "gold patch", "problems", "ok")
    for r in reports:
        table.add_row(r.task_id, r.base.outcome if r.base else "-", r.gold.outcome if r.gold else "-",
                      str(len(r.problems)), "[green]yes" if r.ok else "[red]no")
    Console().print(table)
    groups = summarize(reports)
    summary = Table("", "tasks", "ids", title=f"{len(groups['behaves'])} of {len(reports)} "
                    f"behave here ({seconds:.0f}s, {workers} at once)")
    for cause, ids in groups.items():
        summary.add_row(cause, str(len(ids)), ", ".join(ids))
    Console().print(summary)
    if report_file:
        report_file.write_text(json.dumps({"seconds": round(seconds, 1), "workers": workers,
                                           "summary": groups,
                                           "tasks": [r.to_dict() for r in reports]}, indent=2))
    unloadable = [p for r in reports if not r.loaded for p in r.problems]
    if unloadable:  # the others were checked first; `main` prints this as the error
        raise TaskError("; ".join(unloadable))
    raise typer.Exit(1 if any(not r.ok for r in reports) else 0)


def run_export(path: Path, out: Path) -> None:
    count = export_tasks(load_tasks(path), out)
    Console().print(f"exported {count} task(s) to {out}")


Evaluator = Callable[[Path, list[Task], Path, Callable[[Outcome], None]], dict[str, Any]]


def _how(outcome: Outcome) -> str:
    how = outcome.verdict.get("apply_method")
    how = ("patch did not apply" if how == "failed" else
           f"applied with {how}" if how and not how.startswith("applied") else how)
    return f" ({how})" if how else ""


def run_eval(predictions: Path, tasks_dir: Path, run_dir: Path | None, workers: int,
             run_id: str, err: Console, evaluator: Evaluator | None = None,
             where: str = "", described: Callable[[Outcome], str] = _how) -> int:
    """Grade (locally, or with `evaluator`, e.g. on a Ray cluster `where`), print progress
    and a summary; returns the exit code (1 when an instance ended in error)."""
    tasks = load_tasks(tasks_dir)
    unknown = unknown_predictions(predictions, tasks)
    if unknown:
        err.print(f"[yellow]{len(unknown)} prediction(s) name no task in {tasks_dir}: "
                  f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}")
    run_dir = run_dir or Path("evaluation") / predictions.stem
    started = time.monotonic()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=err) as progress:
        known = {t.id for t in tasks}
        total = sum(1 for i in read_predictions(predictions) if i in known)
        bar = progress.add_task(f"grading {total} prediction(s){where}", total=total)

        def done(outcome: Outcome) -> None:
            progress.advance(bar)
            progress.console.print(f"{outcome.instance_id}: {outcome.status}{described(outcome)}"
                                   + (" (cached)" if outcome.cached else ""), markup=False)

        if evaluator is None:
            report = evaluate(predictions, tasks, run_dir, run_id, workers, done)
        else:
            report = evaluator(predictions, tasks, run_dir, done)
    table = Table("", "instances", title=f"report: {run_dir / 'report.json'}")
    for key in ("total", "submitted", "completed", "resolved", "unresolved", "empty_patch", "error"):
        table.add_row(key, str(report[f"{key}_instances"]))
    Console().print(table)
    Console().print(f"wall time {time.monotonic() - started:.1f}s")
    if report["error_ids"]:
        err.print(f"[red]error (no verdict): {', '.join(report['error_ids'])}")
        return 1
    return 0


__all__ = ["TaskError", "run_eval", "run_export", "run_import", "run_validate"]
