"""`bashenv images ...`: build and prune."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from bashenv.cli.app import TASKS_ARG, console, images_app, tasks_at


@images_app.command("build")
def images_build(path: Path | None = TASKS_ARG) -> None:
    """Build base, environment and task images that are missing (content-hashed)."""
    from bashenv.images.build import build_task_image

    started = time.monotonic()
    table = Table("task", "image", "images built")
    total = 0
    for task in tasks_at(path):
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

    pruning = prune_images([] if everything else tasks_at(path), everything=everything,
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
