"""`bashenv tasks ...`: list, schema, validate, import, export."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from bashenv.cli.app import RUN_ID_OPT, TASKS_ARG, console, run_id_or_default, tasks_app, tasks_at


@tasks_app.command("list")
def tasks_list(path: Path | None = TASKS_ARG) -> None:
    """List tasks with their repository and hidden-test counts."""
    table = Table("id", "repo", "base", "fail→pass", "pass→pass", "file")
    for task in tasks_at(path):
        table.add_row(task.id, task.repo, task.base_commit, str(len(task.tests.fail_to_pass)),
                      str(len(task.tests.pass_to_pass)), str(task.source_file))
    Console().print(table)


@tasks_app.command("schema")
def tasks_schema() -> None:
    """Print the task file's JSON Schema."""
    from bashenv.task import json_schema

    print(json.dumps(json_schema(), indent=2))


@tasks_app.command("validate")
def tasks_validate(
    path: Path | None = TASKS_ARG,
    run_id: str | None = RUN_ID_OPT,
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Tasks checked at once."),
    report: Path | None = typer.Option(None, "--report", help="Also write every task's "
                                       "problems and causes, and the summary, as JSON."),
) -> None:
    """Check each task as SWE-bench does, in real containers: every FAIL_TO_PASS test fails
    before the gold patch and passes after it, every PASS_TO_PASS test passes both times.
    Problems are printed with their reasons, and a summary says which tasks behave here and
    why the others do not; one broken task does not stop the others."""
    from bashenv.env.bash_swe import default_tasks_dir
    from bashenv.swebench.commands import run_validate

    run_validate(path or default_tasks_dir(), run_id_or_default(run_id), workers, report, console)


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
