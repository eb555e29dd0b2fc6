"""Results as JSONL: one whole line per finished episode, appended atomically; resumable.

A record is re-used by a later run only when its task content, agent name and agent
configuration all match (`ResultsFile.plan`); everything else runs again.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bashenv import jsonl

INFRA_ERROR = "infra_error"  # the sandbox, engine or model endpoint broke: not a result, run again
AGENT_ERROR = "agent_error"  # the agent's own code raised: a result (counted), not retried


def run_paths(output: str | Path) -> tuple[Path, Path]:
    """(results file, run directory): `DIR` (or DIR/results.jsonl) → DIR/results.jsonl and
    DIR; any other `FILE.jsonl` → FILE.jsonl and FILE (its trajectories beside it)."""
    output = Path(output)
    if output.name == "results.jsonl":
        return output, output.parent
    if output.suffix == ".jsonl":
        return output, output.with_suffix("")
    return output / "results.jsonl", output


@dataclass
class Plan:
    """Which tasks run and which earlier records stand, with the reason for each re-run."""

    todo: list[str] = field(default_factory=list)
    reused: dict[str, dict[str, Any]] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # task id → why it runs (again)

    def why(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for reason in self.reasons.values():
            counts[reason] = counts.get(reason, 0) + 1
        return counts


class ResultsFile:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def load(self) -> list[dict[str, Any]]:
        """Finished records; a torn last line (crash mid-write) is ignored."""
        if not self.path.exists():
            return []
        records = []
        for line in jsonl.lines(self.path):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "task_id" in record:
                records.append(record)
        return records

    def latest(self, agent: str) -> dict[str, dict[str, Any]]:
        """Task id → the last record for `agent` (a re-run's record supersedes earlier ones)."""
        return {r["task_id"]: r for r in self.load() if r.get("agent") == agent}

    def finished(self, agent: str) -> set[str]:
        """Tasks with a result for `agent`; infrastructure failures do not count."""
        return {t for t, r in self.latest(agent).items() if r.get("outcome") != INFRA_ERROR}

    def matching(self, agent: str, config_hash: str,
                 task_hashes: dict[str, str]) -> dict[str, dict[str, Any]]:
        """Task id → the last record of exactly this agent configuration and task content."""
        return {r["task_id"]: r for r in self.load()
                if r.get("agent") == agent and r.get("agent_config_hash") == config_hash
                and r.get("task_hash") == task_hashes.get(r["task_id"])}

    def plan(self, agent: str, config_hash: str, task_hashes: dict[str, str]) -> Plan:
        plan = Plan()
        same = self.matching(agent, config_hash, task_hashes)
        earlier: dict[str, list[dict[str, Any]]] = {}
        for record in self.load():
            if record.get("agent") == agent:
                earlier.setdefault(record["task_id"], []).append(record)
        for task_id in task_hashes:
            mine = same.get(task_id)
            if mine is not None and mine.get("outcome") != INFRA_ERROR:
                plan.reused[task_id] = mine
                continue
            plan.todo.append(task_id)
            older = earlier.get(task_id, [])
            if mine is not None:
                plan.reasons[task_id] = "infrastructure error last time"
            elif not older:
                plan.reasons[task_id] = "no earlier result"
            elif not any(r.get("task_hash") for r in older):
                plan.reasons[task_id] = "earlier result has no content keys (older format)"
            elif not any(r.get("task_hash") == task_hashes[task_id] for r in older):
                plan.reasons[task_id] = "task changed"
            else:
                plan.reasons[task_id] = "agent configuration changed"
        return plan

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode()
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._repair_torn_tail()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def _repair_torn_tail(self) -> None:
        # A line cut by a crash would glue onto the next record; end it first.
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb+") as handle:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    handle.write(b"\n")


def write_predictions(records: list[dict[str, Any]], path: str | Path) -> int:
    """SWE-bench predictions (instance_id, model_name_or_path, model_patch) for every record
    that is a result (infrastructure errors are not); returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"instance_id": r["task_id"],
                         "model_name_or_path": r.get("model") or r.get("agent"),
                         "model_patch": r.get("model_patch") or ""}, ensure_ascii=False)
             for r in records if r.get("outcome") != INFRA_ERROR]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(path)
    return len(lines)
