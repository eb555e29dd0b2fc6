"""`bashenv bench` and `bashenv gc`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from bashenv.cli.app import RUN_ID_OPT, TASKS_ARG, app, console, tasks_at


@app.command("bench")
def bench(
    path: Path | None = TASKS_ARG,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    quick: bool = typer.Option(False, help="Fewer samples (about a minute)."),
    only: str | None = typer.Option(None, "--only", help="Comma-separated figure groups, e.g. "
                                    "grading,resets (these two then on every task in PATH)."),
    run_id: str | None = RUN_ID_OPT,
    ray: bool = typer.Option(False, "--ray", help="Also episodes/min on 1 and 2 simulated Ray "
                             "nodes (a local cluster; root, bashenv[ray]; a few minutes)."),
    local: bool = typer.Option(True, "--local/--no-local", help="The one-machine figures "
                               "(--no-local with --ray: the Ray figures alone)."),
) -> None:
    """Measure step, reset, grading, concurrency, memory and rebuild figures beside peers."""
    from bashenv.bench import GOALS, run_bench

    def progress(message: str) -> None:
        console.print(f"[dim]{message}")

    if not (local or ray):
        raise typer.BadParameter("--no-local needs --ray", param_hint="--no-local")
    figures: dict[str, float] = {}
    if local:
        groups = {g.strip() for g in only.split(",") if g.strip()} if only is not None else None
        figures.update(run_bench(tasks_at(path), quick=quick, progress=progress, run_id=run_id,
                                 only=groups))
    if ray:  # the cluster room measures it; bench and cluster never import each other
        from bashenv.cluster.bench import figures as ray_figures

        figures.update(ray_figures(quick=quick, run_id=run_id, progress=progress))
    if as_json:
        print(json.dumps(figures))
        return
    table = Table("figure", "value", "goal", "met", title="bashenv bench")
    for key, value in figures.items():
        goal = GOALS.get(key.split("@")[0])  # `figure@task id`: the figure's goal
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
