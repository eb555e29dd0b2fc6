"""`bashenv.run(tasks, agent, …)`: the benchmark runner from Python."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bashenv.agents import Agent, AgentSpec, load_agent_config
from bashenv.env.bash_swe import resolve_tasks
from bashenv.runner.results import Plan, run_paths, write_predictions
from bashenv.runner.run import run_benchmark

AgentLike = str | AgentSpec | type | Callable[[], Agent]


@dataclass
class RunResult:
    records: list[dict[str, Any]]  # the current record of every task, re-used or new
    results: Path  # the results JSONL
    run_dir: Path  # trajectories/ and predictions.jsonl
    reused: int = 0
    rerun_reasons: dict[str, str] = field(default_factory=dict)  # task id → why it ran

    @property
    def resolved(self) -> int:
        return sum(bool(r.get("resolved")) for r in self.records)


def agent_spec(agent: AgentLike, config: Mapping[str, Any] | str | Path | None = None,
               **overrides: Any) -> Callable[[], Agent]:
    """An agent factory from a name (`gold`, `llm`, `module:Class`), a class or a factory;
    `config` is a mapping or an agent-config YAML file, `overrides` (e.g. model) win."""
    if isinstance(agent, AgentSpec):
        return agent
    if isinstance(agent, str):
        settings = dict(config if isinstance(config, Mapping) else load_agent_config(config))
        settings.update({k: v for k, v in overrides.items() if v is not None})
        replay = settings.pop("replay", None)
        return AgentSpec(agent, settings, replay)
    if callable(agent):
        return agent
    raise TypeError(f"agent must be a name, a class or a factory, not {type(agent).__name__}")


def default_label(spec: Callable[[], Agent]) -> str:
    name = getattr(spec, "spec", None) or getattr(spec, "__name__", "agent")
    model = (getattr(spec, "config", None) or {}).get("model")
    label = f"{name}-{model}" if model else str(name)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label.rsplit(":", 1)[-1])


def run(tasks: Any = None, agent: AgentLike = "gold", *, output: str | Path | None = None,
        agent_config: Mapping[str, Any] | str | Path | None = None, model: str | None = None,
        base_url: str | None = None, replay: str | Path | None = None, workers: int = 2,
        run_id: str | None = None, predictions_out: str | Path | None = None,
        infra_retries: int = 1, backend: Any = None,
        on_done: Callable[[dict[str, Any]], None] | None = None) -> RunResult:
    """Run `agent` over `tasks` (a directory, task file, task id, SWE-bench instances file or
    a list of those; None: the bundled examples). Results go to `output` (a run directory,
    or a legacy FILE.jsonl), default runs/<agent>[-<model>]; trajectories and casts beside
    them; predictions.jsonl in the run directory (and at `predictions_out`)."""
    factory = agent_spec(agent, agent_config, model=model, base_url=base_url, replay=replay)
    factory()  # a bad name, file or setting fails here, before any container starts
    results, run_dir = run_paths(output or Path("runs") / default_label(factory))
    task_list = resolve_tasks(tasks)
    plans: list[Plan] = []
    records = run_benchmark(task_list, factory, results, workers=workers, run_id=run_id,
                            infra_retries=infra_retries, on_done=on_done, backend=backend,
                            on_plan=plans.append)
    write_predictions(records, run_dir / "predictions.jsonl")
    if predictions_out is not None:
        write_predictions(records, predictions_out)
    return RunResult(records, results, run_dir, len(plans[0].reused), plans[0].reasons)
