"""The Typer apps and the options several commands share."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

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


def tasks_at(path: Path | None) -> list[Any]:
    from bashenv.env.bash_swe import default_tasks_dir
    from bashenv.task import load_tasks

    return load_tasks(path or default_tasks_dir())


def run_id_or_default(given: str | None) -> str:
    """The --run-id value, else this process's id (which already honours BASHENV_RUN_ID)."""
    from bashenv.sandbox import PROCESS_RUN_ID

    return given or PROCESS_RUN_ID


def sigterm_as_interrupt() -> None:
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
