"""`bashenv run` (an agent over tasks) and `bashenv eval` (predictions, no agent)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bashenv.cli.app import (
    RUN_ID_OPT,
    TASKS_ARG,
    app,
    console,
    run_id_or_default,
    sigterm_as_interrupt,
    tasks_at,
)
from bashenv.errors import ImageBuildError


@app.command("run")
def run(
    path: Path | None = TASKS_ARG,
    agent: str = typer.Option("gold", help="gold | replay"),
    replay: Path | None = typer.Option(None, help="Command file for the replay agent."),
    workers: int = typer.Option(2, min=1, help="Episodes at once."),
    output: Path | None = typer.Option(None, help="Results JSONL (default results/<agent>.jsonl)."),
    fresh: bool = typer.Option(False, help="Ignore earlier results in the output file."),
    run_id: str | None = RUN_ID_OPT,
) -> None:
    """Run an agent over tasks in parallel; results are appended to JSONL and resumable.
    Exits 1 when any task ended in an error (not a verdict), naming those tasks."""
    from bashenv.agents import make_agent
    from bashenv.images.build import build_task_image
    from bashenv.runner import run_benchmark

    sigterm_as_interrupt()
    tasks = tasks_at(path)
    make_agent(agent, replay)  # fail early on a bad agent or replay file
    output = output or Path("results") / f"{agent}.jsonl"
    if fresh and output.exists():
        output.rename(output.with_suffix(f".{datetime.now():%Y%m%d-%H%M%S}.jsonl"))
    with console.status("building images (cached when unchanged)"):
        for task in tasks:
            try:
                build_task_image(task)
            except ImageBuildError as exc:  # recorded as this task's error; others go on
                console.print(f"[red]{task.id}: {exc}")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task(f"{agent} on {len(tasks)} task(s)", total=len(tasks))
        from bashenv.runner import ResultsFile

        progress.advance(bar, len(ResultsFile(output).finished(agent) & {t.id for t in tasks}))

        def done(record: dict[str, Any]) -> None:
            progress.advance(bar)
            progress.console.print(f"{record['task_id']}: {record['outcome']}")
            for error in record.get("infra_errors", []):
                progress.console.print(f"[yellow]  retried after an infrastructure error: {error}")

        try:
            records = run_benchmark(tasks, lambda: make_agent(agent, replay), output,
                                    workers=workers, run_id=run_id_or_default(run_id),
                                    on_done=done)
        except KeyboardInterrupt:
            progress.stop()
            console.print(f"[yellow]interrupted: running containers removed, no partial "
                          f"result written; re-run to resume from {output}[/yellow]")
            raise typer.Exit(130) from None
    _summary(records, output)
    failed = [r for r in records if _is_error(r)]
    if failed:
        console.print(f"[red]{len(failed)} task(s) ended in an error, not a verdict:")
        for r in failed:
            console.print(f"[red]  {r['task_id']} ({r['outcome']}): {r.get('error') or '-'}")
        raise typer.Exit(1)


def _is_error(record: dict[str, Any]) -> bool:
    from bashenv.runner import INFRA_ERROR

    return record["outcome"] in ("error", INFRA_ERROR)


def _summary(records: list[dict[str, Any]], output: Path) -> None:
    from bashenv.runner import INFRA_ERROR

    table = Table("task", "outcome", "reward", "steps", "seconds", title=f"results: {output}")
    for r in sorted(records, key=lambda r: r["task_id"]):
        colour = "green" if r["resolved"] else "red"
        table.add_row(r["task_id"], f"[{colour}]{r['outcome']}", f"{r['reward']:.1f}",
                      str(r["steps"]), f"{r['seconds']:.1f}")
    resolved = sum(r["resolved"] for r in records)
    Console().print(table)
    Console().print(f"resolved {resolved}/{len(records)}")
    infra = sum(r["outcome"] == INFRA_ERROR for r in records)
    if infra:
        Console().print(f"[yellow]{infra} episode(s) hit an infrastructure error (engine or "
                        "sandbox); run the same command again to retry just those.")


@app.command("eval")
def eval_predictions(
    predictions: Path = typer.Argument(..., help="SWE-bench predictions (JSON or JSONL: "
                                       "instance_id, model_name_or_path, model_patch)."),
    tasks: Path = typer.Option(..., "--tasks", help="Task directory (e.g. from tasks import)."),
    output: Path | None = typer.Option(None, "-o", "--output",
                                       help="Run directory (default evaluation/<predictions>)."),
    workers: int = typer.Option(2, min=1, help="Gradings at once."),
    run_id: str | None = RUN_ID_OPT,
) -> None:
    """Grade predictions with no agent; write SWE-bench's report.json and per-instance
    patch.diff, report.json and test_output.txt. Cached: a re-run grades nothing again."""
    from bashenv.swebench.commands import run_eval

    sigterm_as_interrupt()
    run_id = run_id_or_default(run_id)
    raise typer.Exit(run_eval(predictions, tasks, output, workers, run_id, console))
