"""`bashenv cluster`: what a Ray node should advertise, and how the cluster looks."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from bashenv.cli.app import app

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
