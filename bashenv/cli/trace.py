"""`bashenv trace` (one run of a task's code, traced) and `bashenv traces` (the dataset)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bashenv.cli.app import (
    RUN_ID_OPT,
    TASKS_ARG,
    app,
    console,
    run_id_or_default,
    sigterm_as_interrupt,
    tasks_at,
)
from bashenv.errors import BashenvError

MAX_EVENTS = typer.Option(10000, "--max-events", min=1, help="Stop tracing after N events.")
MAX_REPR = typer.Option(120, "--max-repr", min=8, help="Cut each value's repr at N chars.")
MAX_SECONDS = typer.Option(20.0, "--max-seconds", min=0.1, help="Stop the run after S seconds.")
MAX_DEPTH = typer.Option(64, "--max-depth", min=1, help="Do not trace frames deeper than N.")


def _pick(path: Path | None, task_id: str | None) -> Any:
    tasks = tasks_at(path)
    if task_id is None:
        if len(tasks) != 1:
            raise BashenvError(f"{path or 'the default tasks'} holds {len(tasks)} tasks: "
                               "choose one with --task ID")
        return tasks[0]
    for task in tasks:
        if task.id == task_id:
            return task
    raise BashenvError(f"--task {task_id}: no such task in {path or 'the default tasks'} "
                       f"(have: {', '.join(t.id for t in tasks)})")


@app.command("trace")
def trace(
    path: Path | None = TASKS_ARG,
    script: str | None = typer.Argument(None, help="Script to run, relative to the repository."),
    task_id: str | None = typer.Option(None, "--task", help="Task id (when PATH holds several)."),
    module: str | None = typer.Option(None, "-m", "--module", help="Run a module as a script."),
    test: str | None = typer.Option(None, "--test", help="A pytest node id, e.g. "
                                    "tests/test_x.py::test_y (the task's hidden tests included)."),
    after: bool = typer.Option(False, "--after/--before", help="With the gold patch applied."),
    fmt: str = typer.Option("text", "--format", help="text | jsonl"),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write here, not stdout."),
    include: list[str] = typer.Option([], "--include", help="Glob of repository files to trace."),
    exclude: list[str] = typer.Option([], "--exclude", help="Glob of repository files to skip."),
    max_events: int = MAX_EVENTS,
    max_repr: int = MAX_REPR,
    max_seconds: float = MAX_SECONDS,
    max_depth: int = MAX_DEPTH,
    run_id: str | None = RUN_ID_OPT,
) -> None:
    """Run a script, a module or a test of a task in its sandbox under the tracer: every
    line, call, return and exception of the repository's code with its local variables."""
    from bashenv.trace.run import Bounds, Target, TaskTracer

    if fmt not in ("text", "jsonl"):
        raise BashenvError(f"--format must be text or jsonl, not {fmt!r}")
    given = [(k, v) for k, v in (("script", script), ("module", module), ("test", test)) if v]
    if len(given) != 1:
        raise BashenvError("give exactly one of: a SCRIPT, -m MODULE, --test NODEID")
    sigterm_as_interrupt()
    task = _pick(path, task_id)
    bounds = Bounds(max_events, max_repr, max_seconds, max_depth)
    with console.status(f"tracing {given[0][1]} of {task.id}"):
        result = TaskTracer(task, run_id=run_id_or_default(run_id)).trace(
            Target(*given[0]), "after" if after else "before", bounds, include, exclude)
    text = result.text() + "\n" if fmt == "text" else result.jsonl()
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)
    hit = "; ".join(result.bounds_hit.values()) or "none"
    console.print(f"{task.id} ({'after' if after else 'before'} the fix): {result.outcome}, "
                  f"{len(result.events)} events, bounds hit: {hit}")


@app.command("traces")
def traces(
    path: Path | None = TASKS_ARG,
    output: Path = typer.Option(..., "-o", "--output", help="Dataset directory."),
    workers: int = typer.Option(2, min=1, help="Traces at once."),
    max_events: int = MAX_EVENTS,
    max_repr: int = MAX_REPR,
    max_seconds: float = MAX_SECONDS,
    max_depth: int = MAX_DEPTH,
    run_id: str | None = RUN_ID_OPT,
) -> None:
    """Trace every task's FAIL_TO_PASS tests before and after the gold patch into
    OUTPUT/traces.jsonl (one line per test and side). Resumable: a re-run traces only
    what is missing or changed. Exits 1 when any trace failed."""
    from bashenv.images.build import build_task_image
    from bashenv.trace.dataset import build_traces, jobs
    from bashenv.trace.run import Bounds

    sigterm_as_interrupt()
    tasks = tasks_at(path)
    with console.status("building images (cached when unchanged)"):
        for task in tasks:
            build_task_image(task)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task(f"traces of {len(tasks)} task(s)", total=len(jobs(tasks)))

        def done(result: dict[str, Any]) -> None:
            progress.advance(bar)
            what = f"{result['task_id']} {result['test_id']} ({result['side']})"
            if result.get("error"):
                progress.console.print(f"[red]{what}: {result['error']}")
            elif not result.get("cached"):
                progress.console.print(f"{what}: {result['outcome']}, {result['events']} events")

        try:
            summary = build_traces(tasks, output, workers=workers, run_id=run_id_or_default(run_id),
                                   bounds=Bounds(max_events, max_repr, max_seconds, max_depth),
                                   on_done=done)
        except KeyboardInterrupt:
            progress.stop()
            console.print(f"[yellow]interrupted: containers removed; re-run to resume {output}")
            raise typer.Exit(130) from None
    console.print(f"{summary['written']} written, {summary['cached']} already there, "
                  f"{len(summary['errors'])} failed -> {output / 'traces.jsonl'}")
    for task_id in summary["no_gold_patch"]:
        console.print(f"[yellow]{task_id}: no gold_patch, skipped")
    if summary["errors"]:
        raise typer.Exit(1)
