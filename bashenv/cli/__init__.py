"""The `bashenv` command line: thin wrappers over the rooms of the library.

Each module here adds its commands to `app` when imported; a new command group is one
more module and one more name in the import below.
"""

from __future__ import annotations

import sys

from bashenv.cli import cluster, images, ops, report, run, tasks, trace  # noqa: F401  (they register commands)
from bashenv.cli.app import app, console
from bashenv.errors import BashenvError

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except BashenvError as exc:
        console.print(f"[red]error:[/red] {exc}")
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]")
        sys.exit(130)
