"""`bashenv cluster`: what a Ray node should advertise, and how the cluster looks; and the
body of `bashenv eval --ray`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from bashenv.cli.app import app, console

if TYPE_CHECKING:
    from bashenv.task import Task

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
    the cluster (each line says the node); returns the exit code (1: an instance in error)."""
    from bashenv.cluster.evaluation import evaluate_on_ray
    from bashenv.swebench.commands import run_eval
    from bashenv.swebench.evaluate import Outcome

    def on_ray(preds: Path, tasks: list[Task], out: Path,
               done: Callable[[Outcome], None]) -> dict[str, Any]:
        return evaluate_on_ray(preds, tasks, out, run_id, address=address, registry=registry,
                               on_done=done, say=console.print)

    def node_of(outcome: Outcome) -> str:
        if outcome.cached:  # graded by an earlier run, wherever that was
            return ""
        node = outcome.verdict.get("node") or {}
        where = f" on {node.get('host')}/{node.get('node_id', '')[:12]}" if node else ""
        retried = len(outcome.verdict.get("infra_errors") or [])
        return where + (f" after {retried} lost grading(s)" if retried else "")

    return run_eval(predictions, tasks_dir, run_dir, 1, run_id, console, evaluator=on_ray,
                    where=" on Ray", described=node_of)
