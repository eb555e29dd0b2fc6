"""The `bashenv` command line: thin wrappers over the rooms of the library."""

from __future__ import annotations

import json
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bashenv.errors import BashenvError, ImageBuildError

app = typer.Typer(help="Gymnasium environments for software-engineering agents.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
tasks_app = typer.Typer(help="List, validate and describe task files.", no_args_is_help=True)
images_app = typer.Typer(help="Build and prune the Docker images tasks run in.",
                         no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
app.add_typer(images_app, name="images")
console = Console(stderr=True)
TASKS_ARG = typer.Argument(
    None, help="Task file or directory (default: $BASHENV_TASKS, else the bundled example tasks).")
RUN_ID_OPT = typer.Option(
    None, "--run-id", envvar="BASHENV_RUN_ID", show_envvar=True,
    help="Label of every container this command starts, for `bashenv gc --run-id` "
         "(default: $BASHENV_RUN_ID, else a random id of this process).")


def _tasks(path: Path | None) -> list[Any]:
    from bashenv.env.bash_swe import default_tasks_dir
    from bashenv.task import load_tasks

    return load_tasks(path or default_tasks_dir())


def _run_id(given: str | None) -> str:
    """The --run-id value, else this process's id (which already honours BASHENV_RUN_ID)."""
    from bashenv.sandbox import PROCESS_RUN_ID

    return given or PROCESS_RUN_ID


def _sigterm_as_interrupt() -> None:
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


@tasks_app.command("list")
def tasks_list(path: Path | None = TASKS_ARG) -> None:
    """List tasks with their repository and hidden-test counts."""
    table = Table("id", "repo", "base", "fail→pass", "pass→pass", "file")
    for task in _tasks(path):
        table.add_row(task.id, task.repo, task.base_commit, str(len(task.tests.fail_to_pass)),
                      str(len(task.tests.pass_to_pass)), str(task.source_file))
    Console().print(table)


@tasks_app.command("schema")
def tasks_schema() -> None:
    """Print the task file's JSON Schema."""
    from bashenv.task import json_schema

    print(json.dumps(json_schema(), indent=2))


@tasks_app.command("validate")
def tasks_validate(path: Path | None = TASKS_ARG, run_id: str | None = RUN_ID_OPT) -> None:
    """Check each task as SWE-bench does, in real containers: every FAIL_TO_PASS test fails
    before the gold patch and passes after it, every PASS_TO_PASS test passes both times.
    Problems are printed with their reasons; one broken task does not stop the others."""
    from bashenv.env.bash_swe import default_tasks_dir
    from bashenv.errors import TaskError
    from bashenv.grading.validate import TaskReport, validate_path
    from bashenv.images import ensure_task_image

    def show(report: TaskReport) -> None:
        for problem in report.problems:
            console.print(f"[red]{report.task_id}: {problem}")
        Console().print(f"{report.task_id}: {'ok' if report.ok else 'FAILED'}")

    reports = validate_path(path or default_tasks_dir(), _run_id(run_id), ensure_task_image, show)
    table = Table("task", "no change", "gold patch", "problems", "ok")
    for r in reports:
        table.add_row(r.task_id, r.base.outcome if r.base else "-", r.gold.outcome if r.gold else "-",
                      str(len(r.problems)), "[green]yes" if r.ok else "[red]no")
    Console().print(table)
    unloadable = [p for r in reports if not r.loaded for p in r.problems]
    if unloadable:  # the others were checked first; `main` prints this as the error
        raise TaskError("; ".join(unloadable))
    raise typer.Exit(1 if any(not r.ok for r in reports) else 0)


@tasks_app.command("import")
def tasks_import(
    file: Path = typer.Argument(..., help="SWE-bench instances: JSON list, JSONL or parquet."),
    repos: Path | None = typer.Option(None, "--repos", help="Directory of OWNER__NAME.git "
                                      "repositories (bare/shallow/partial); default: GitHub."),
    ids: list[str] | None = typer.Option(None, "--ids", help="Only these instance ids "
                                         "(repeat the option, or separate with commas)."),
    output: Path = typer.Option(Path("swebench-tasks"), "-o", "--output",
                                help="Directory of task directories to write."),
    workers: int = typer.Option(4, min=1, help="Instances written at once."),
    registry: bool = typer.Option(False, help="Use python:X.Y-slim bases (needs a registry) "
                                  "for the exact Python of each spec."),
) -> None:
    """Write one task directory per SWE-bench instance (task.yaml, issue.md, gold.patch,
    tests.patch), ready for run, validate, images build and eval."""
    from bashenv.swebench.commands import run_import

    run_import(file, output, repos, ids, workers, registry, console)


@tasks_app.command("export")
def tasks_export(
    path: Path = typer.Argument(..., help="Task file or directory."),
    output: Path = typer.Option(..., "-o", "--output", help="Instances JSONL to write."),
) -> None:
    """Write bashenv tasks as SWE-bench instances (JSONL)."""
    from bashenv.swebench.commands import run_export

    run_export(path, output)


@images_app.command("build")
def images_build(path: Path | None = TASKS_ARG) -> None:
    """Build base, environment and task images that are missing (content-hashed)."""
    from bashenv.images.build import build_task_image

    started = time.monotonic()
    table = Table("task", "image", "images built")
    total = 0
    for task in _tasks(path):
        image, built = build_task_image(task)
        total += built
        table.add_row(task.id, image.tag, str(built))
    Console().print(table)
    console.print(f"{total} image(s) built in {time.monotonic() - started:.2f}s")


@images_app.command("prune")
def images_prune(
    path: Path | None = TASKS_ARG,
    everything: bool = typer.Option(
        False, "--all", help="DANGEROUS on a shared engine: every bashenv image not in use, "
        "whoever built it (PATH is ignored)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would go, with sizes."),
) -> None:
    """Remove the images provably stale for the tasks at PATH: older versions of the same
    tasks (edited since), and environment images only those built on. Other suites' images,
    images in use and images others build on are kept."""
    from bashenv.images import prune_images

    pruning = prune_images([] if everything else _tasks(path), everything=everything,
                           dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for image in pruning.removed:  # one line each, never wrapped: tags stay greppable
        Console().print(f"{verb} {image.tag}  {_megabytes(image.size)}  ({image.reason})",
                        soft_wrap=True, markup=False)
    for image in pruning.kept:
        console.print(f"kept {image.tag}: {image.reason}", soft_wrap=True, markup=False)
    total = sum(image.size for image in pruning.removed)
    console.print(f"{verb} {len(pruning.removed)} image(s), {_megabytes(total)}")


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.3g} MB"


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

    _sigterm_as_interrupt()
    tasks = _tasks(path)
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
                                    workers=workers, run_id=_run_id(run_id), on_done=done)
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

    _sigterm_as_interrupt()
    raise typer.Exit(run_eval(predictions, tasks, output, workers, _run_id(run_id), console))


@app.command("bench")
def bench(
    path: Path | None = TASKS_ARG,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    quick: bool = typer.Option(False, help="Fewer samples (about a minute)."),
    run_id: str | None = RUN_ID_OPT,
) -> None:
    """Measure step, reset, grading, concurrency, memory and rebuild figures beside peers."""
    from bashenv.bench import GOALS, run_bench

    figures = run_bench(_tasks(path), quick=quick, progress=lambda m: console.print(f"[dim]{m}"),
                        run_id=run_id)
    if as_json:
        print(json.dumps(figures))
        return
    table = Table("figure", "value", "goal", "met", title="bashenv bench")
    for key, value in figures.items():
        goal = GOALS.get(key)
        met = "" if goal is None else ("[green]yes" if value <= goal else "[red]no")
        table.add_row(key, f"{value:g}", "" if goal is None else f"<= {goal:g}", met)
    Console().print(table)


@app.command("gc")
def gc(
    run_id: str | None = typer.Option(None, help="Only this run's containers and volumes."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would go; remove nothing."),
    everything: bool = typer.Option(
        False, "--all", help="DANGEROUS on a shared engine: also running containers, whoever "
        "owns them (with --run-id: that run's)."),
) -> None:
    """Remove bashenv leftovers that are provably abandoned: containers that stopped or were
    never started, and unused volumes. Running containers die with their owner by
    themselves and are never touched (unless --all)."""
    from bashenv.sandbox import collect_garbage

    garbage = collect_garbage(everything=everything, run_id=run_id, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    lines = [f"{verb} {box.id[:12]}  {box.run_id}  {box.state}: {box.reason}"
             for box in garbage.containers]
    if dry_run:
        lines += [f"kept {box.id[:12]}  {box.run_id}  {box.state}: {box.reason}"
                  for box in garbage.kept]
        lines += [f"{verb} volume {volume}" for volume in garbage.volumes]
    for line in lines:  # one line each, never wrapped, no markup: ids stay greppable
        Console().print(line, soft_wrap=True, markup=False)
    Console().print(f"{verb} {len(garbage.containers)} container(s) and {len(garbage.volumes)} "
                    f"volume(s); kept {len(garbage.kept)} container(s)")


def main() -> None:
    try:
        app()
    except BashenvError as exc:
        console.print(f"[red]error:[/red] {exc}")
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]")
        sys.exit(130)


if __name__ == "__main__":
    main()
