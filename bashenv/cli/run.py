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

# Spelled out here so that `bashenv --help` imports no agent code (bashenv.agents.BUILTINS).
AGENT_HELP = ("gold (applies the task's gold patch) | replay (commands from --replay FILE) | "
              "llm (an OpenAI-compatible chat model: --model, --base-url) | a plugin class "
              "as package.module:Class")


@app.command("run")
def run(
    path: Path | None = TASKS_ARG,
    agent: str = typer.Option("gold", help=AGENT_HELP),
    agent_config: Path | None = typer.Option(
        None, help="YAML file with the agent's settings (llm: model, prompts, budgets, …; "
        "a plugin: its constructor's keyword arguments)."),
    model: str | None = typer.Option(None, help="Model name (llm agent)."),
    base_url: str | None = typer.Option(
        None, help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (llm agent; "
        "key from $BASHENV_API_KEY or $OPENAI_API_KEY)."),
    replay: Path | None = typer.Option(None, help="Command file for the replay agent."),
    workers: int = typer.Option(2, min=1, help="Episodes at once."),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Run directory (results.jsonl, trajectories/, "
        "predictions.jsonl; default runs/<agent>[-<model>]) or a results FILE.jsonl."),
    predictions_out: Path | None = typer.Option(
        None, help="Also write SWE-bench predictions (instance_id, model_name_or_path, "
        "model_patch) to this JSONL file."),
    fresh: bool = typer.Option(False, help="Ignore earlier results in the output file."),
    run_id: str | None = RUN_ID_OPT,
    ray: str | None = typer.Option(None, "--ray", help="Run the episodes on a Ray cluster: "
                                   "auto or HEAD:PORT (bashenv[ray]; see 'Scale out with Ray')."),
    registry: str | None = typer.Option(None, help="With --ray: HOST:PORT of a Docker "
                                        "registry the nodes pull images from and push to."),
) -> None:
    """Run an agent over tasks in parallel; results are appended to JSONL and resumable
    (a result is re-used only for the same task content, agent and agent settings). Each
    episode writes a trajectory (JSONL) and an asciinema cast. Exits 1 when any task ended
    in an error (not a verdict), naming those tasks."""
    from bashenv.images.build import build_task_image
    from bashenv.runner import agent_spec, run_benchmark, run_paths, write_predictions
    from bashenv.runner.api import default_label

    sigterm_as_interrupt()
    tasks = tasks_at(path)
    factory = agent_spec(agent, agent_config, model=model, base_url=base_url, replay=replay)
    factory()  # fail early on a bad agent, config or replay file
    results, run_dir = run_paths(output or Path("runs") / default_label(factory))
    if fresh and results.exists():
        results.rename(results.with_suffix(f".{datetime.now():%Y%m%d-%H%M%S}.jsonl"))
    with console.status("building images (cached when unchanged)"):
        for task in [] if ray else tasks:  # with --ray each node builds or pulls its own
            try:
                build_task_image(task)
            except ImageBuildError as exc:  # recorded as this task's error; others go on
                console.print(f"[red]{task.id}: {exc}")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    plans: list[Any] = []
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task(f"{agent} on {len(tasks)} task(s)", total=len(tasks))

        def planned(plan: Any) -> None:
            plans.append(plan)
            progress.advance(bar, len(plan.reused))

        def done(record: dict[str, Any]) -> None:
            progress.advance(bar)
            progress.console.print(f"{record['task_id']}: {record['outcome']}")
            for error in record.get("infra_errors", []):
                progress.console.print(f"[yellow]  retried after an infrastructure error: {error}")

        try:
            from bashenv.cluster import runner_for

            records = runner_for(ray, registry, run_benchmark, console.print)(
                                    tasks, factory, results, workers=workers,
                                    run_id=run_id_or_default(run_id), on_done=done,
                                    on_plan=planned)
        except KeyboardInterrupt:
            progress.stop()
            console.print(f"[yellow]interrupted: running containers removed, no partial "
                          f"result written; re-run to resume from {results}[/yellow]")
            raise typer.Exit(130) from None
    write_predictions(records, run_dir / "predictions.jsonl")
    if predictions_out is not None:
        write_predictions(records, predictions_out)
    _summary(records, results)
    if plans:
        _reuse_summary(plans[0])
    console.print(f"trajectories and casts: {run_dir / 'trajectories'}; predictions: "
                  f"{predictions_out or run_dir / 'predictions.jsonl'}")
    failed = [r for r in records if _is_error(r)]
    if failed:
        console.print(f"[red]{len(failed)} task(s) ended in an error, not a verdict:")
        for r in failed:
            console.print(f"[red]  {r['task_id']} ({r['outcome']}): {r.get('error') or '-'}")
        raise typer.Exit(1)


def _is_error(record: dict[str, Any]) -> bool:
    from bashenv.runner import AGENT_ERROR, INFRA_ERROR

    return record["outcome"] in ("error", INFRA_ERROR, AGENT_ERROR)


def _reuse_summary(plan: Any) -> None:
    reasons = ", ".join(f"{n} {why}" for why, n in sorted(plan.why().items()))
    Console().print(f"re-used {len(plan.reused)} earlier result(s); ran {len(plan.todo)}"
                    + (f" ({reasons})" if reasons else ""))


def _summary(records: list[dict[str, Any]], output: Path) -> None:
    from bashenv.runner import AGENT_ERROR, INFRA_ERROR

    table = Table("task", "outcome", "reward", "steps", "tokens", "seconds",
                  title=f"results: {output}")
    for r in sorted(records, key=lambda r: r["task_id"]):
        colour = "green" if r["resolved"] else "red"
        tokens = (r.get("tokens") or {}).get("total") or 0
        table.add_row(r["task_id"], f"[{colour}]{r['outcome']}", f"{r['reward']:.1f}",
                      str(r["steps"]), f"{tokens:,}" if tokens else "-", f"{r['seconds']:.1f}")
    resolved = sum(r["resolved"] for r in records)
    Console().print(table)
    costs = [r["cost"] for r in records if r.get("cost") is not None]
    Console().print(f"resolved {resolved}/{len(records)}"
                    + (f"; cost ${sum(costs):.4f}" if costs else ""))
    agent_errors = sum(r["outcome"] == AGENT_ERROR for r in records)
    if agent_errors:
        Console().print(f"[red]{agent_errors} episode(s) ended in an exception in the agent's "
                        "code (outcome agent_error; traceback in the record)")
    infra = sum(r["outcome"] == INFRA_ERROR for r in records)
    if infra:
        Console().print(f"[yellow]{infra} episode(s) hit an infrastructure error (engine, "
                        "sandbox or model endpoint); run the same command again to retry "
                        "just those.")


@app.command("eval")
def eval_predictions(
    predictions: Path = typer.Argument(..., help="SWE-bench predictions (JSON or JSONL: "
                                       "instance_id, model_name_or_path, model_patch)."),
    tasks: Path = typer.Option(..., "--tasks", help="Task directory (e.g. from tasks import)."),
    output: Path | None = typer.Option(None, "-o", "--output",
                                       help="Run directory (default evaluation/<predictions>)."),
    workers: int = typer.Option(2, min=1, help="Gradings at once."),
    run_id: str | None = RUN_ID_OPT,
    ray: str | None = typer.Option(None, "--ray", help="Grade on a Ray cluster: auto or "
                                   "HEAD:PORT (the nodes' slots replace --workers)."),
    registry: str | None = typer.Option(None, help="With --ray: HOST:PORT of a Docker "
                                        "registry the nodes pull images from and push to."),
) -> None:
    """Grade predictions with no agent; write SWE-bench's report.json and per-instance
    patch.diff, report.json and test_output.txt. Cached: a re-run grades nothing again."""
    from bashenv.swebench.commands import run_eval

    sigterm_as_interrupt()
    run_id = run_id_or_default(run_id)
    if registry and ray is None:
        raise typer.BadParameter("--registry needs --ray", param_hint="--registry")
    if ray is not None:
        from bashenv.cli.cluster import eval_on_ray

        raise typer.Exit(eval_on_ray(predictions, tasks, output, ray, registry, run_id))
    raise typer.Exit(run_eval(predictions, tasks, output, workers, run_id, console))
