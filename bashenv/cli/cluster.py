"""`bashenv cluster`: what a Ray node should advertise, and how the cluster looks; and the
body of `bashenv eval --ray`."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bashenv.cli.app import app, console

cluster_app = typer.Typer(help="Ray clusters: node resources and a survey of the nodes.",
                          no_args_is_help=True)
app.add_typer(cluster_app, name="cluster")


@cluster_app.command("resources")
def resources(slots: int | None = typer.Option(None, help="Sandbox slots (default: from this "
                                               "machine's cores and memory, or $BASHENV_SLOTS).")
              ) -> None:
    """Print the --resources value for `ray start` on this node."""
    from bashenv.cluster import resources_json

    print(resources_json(slots))


@cluster_app.command("nodes")
def nodes(ray: str = typer.Option("auto", "--ray", help="The cluster: auto or HEAD:PORT.")) -> None:
    """Each live node, its sandbox slots and whether its Docker engine answers."""
    from bashenv.cluster.nodes import connect, survey

    table = Table("node", "host", "slots", "usable", "reason", title=f"Ray cluster at {ray}")
    for node in survey(connect(ray)):
        table.add_row(node.id[:12], node.host, str(node.slots),
                      "[green]yes" if node.ok else "[red]no", node.reason)
    Console().print(table)


def eval_on_ray(predictions: Path, tasks_dir: Path, run_dir: Path | None, address: str,
                registry: str | None, run_id: str) -> int:
    """`bashenv eval --ray`: the local eval's progress lines and summary, the gradings on
    the cluster; returns the exit code (1 when an instance ended in error)."""
    from bashenv.cluster.evaluation import evaluate_on_ray
    from bashenv.swebench.evaluate import Outcome, read_predictions, unknown_predictions
    from bashenv.task import load_tasks

    tasks = load_tasks(tasks_dir)
    unknown = unknown_predictions(predictions, tasks)
    if unknown:
        console.print(f"[yellow]{len(unknown)} prediction(s) name no task in {tasks_dir}: "
                      f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}")
    run_dir = run_dir or Path("evaluation") / predictions.stem
    started = time.monotonic()
    known = {t.id for t in tasks}
    total = sum(1 for i in read_predictions(predictions) if i in known)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task(f"grading {total} prediction(s) on Ray", total=total)

        def done(outcome: Outcome) -> None:
            progress.advance(bar)
            node = outcome.verdict.get("node") or {}
            where = f" on {node.get('host')}/{node.get('node_id', '')[:12]}" if node else ""
            retried = 0 if outcome.cached else len(outcome.verdict.get("infra_errors") or [])
            progress.console.print(f"{outcome.instance_id}: {outcome.status}"
                                   + (" (cached)" if outcome.cached else where)
                                   + (f" after {retried} lost grading(s)" if retried else ""),
                                   markup=False)

        report = evaluate_on_ray(predictions, tasks, run_dir, run_id, address=address,
                                 registry=registry, on_done=done, say=progress.console.print)
    table = Table("", "instances", title=f"report: {run_dir / 'report.json'}")
    for key in ("total", "submitted", "completed", "resolved", "unresolved", "empty_patch", "error"):
        table.add_row(key, str(report[f"{key}_instances"]))
    Console().print(table)
    Console().print(f"wall time {time.monotonic() - started:.1f}s")
    if report["error_ids"]:
        console.print(f"[red]error (no verdict): {', '.join(report['error_ids'])}")
        return 1
    return 0
