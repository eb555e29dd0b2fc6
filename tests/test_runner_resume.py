"""Agents as plugins, agent_error, and resume by content: a result is re-used only for the
same task content, agent and agent configuration (real containers, real JSONL)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import Any

import yaml
from typer.testing import CliRunner

import bashenv
from bashenv.cli import app
from bashenv.errors import BashenvError

from .conftest import TASKS_DIR, rid

cli = CliRunner(env={"COLUMNS": "250"})
TASK = TASKS_DIR / "intervals-merge-unsorted"


class RaisingAgent:
    """A plugin with a bug: raises from act (or reset)."""

    name = "raising"

    def __init__(self, message: str = "boom", where: str = "act") -> None:
        self.message, self.where = message, where

    def reset(self, task: Any, observation: dict[str, Any]) -> None:
        if self.where == "reset":
            raise ValueError(self.message)

    def act(self, observation: dict[str, Any]) -> str:
        raise ValueError(self.message)


def _records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_plugin_by_module_and_class_raising_is_agent_error_counted_not_retried(tmp_path):
    spec = f"{__name__}:RaisingAgent"
    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump({"message": "boom-1"}))
    out = tmp_path / "results.jsonl"
    args = ["run", str(TASK), "--agent", spec, "-o", str(out), "--run-id", rid("agent-error")]
    result = cli.invoke(app, [*args, "--agent-config", str(config)])
    assert result.exit_code == 1, result.output
    [record] = _records(out)
    assert record["outcome"] == "agent_error" and record["attempts"] == 1
    assert record["agent"] == "raising" and record["agent_config"] == {"message": "boom-1"}
    assert "ValueError: boom-1" in record["traceback"] and "in act" in record["traceback"]
    assert "exception in the agent's code" in result.output

    again = cli.invoke(app, [*args, "--agent-config", str(config)])
    assert "re-used 1 earlier result(s); ran 0" in again.output
    assert len(_records(out)) == 1  # counted once, not retried

    config.write_text(yaml.safe_dump({"message": "boom-2", "where": "reset"}))
    changed = cli.invoke(app, [*args, "--agent-config", str(config)])
    assert "ran 1 (1 agent configuration changed)" in changed.output
    assert "ValueError: boom-2" in _records(out)[-1]["traceback"]


def _refused(*args: str) -> str:
    """The BashenvError a `bashenv run` raises (main() prints it as `error: …`, exit 2)."""
    result = cli.invoke(app, ["run", str(TASK), *args])
    assert isinstance(result.exception, BashenvError), result.output
    return str(result.exception)


def test_bad_plugins_and_settings_are_named(tmp_path):
    assert "cannot import module 'no_such_module_xyz'" in _refused("--agent", "no_such_module_xyz:A")
    assert "has no class 'Nope'" in _refused("--agent", f"{__name__}:Nope")
    assert "unknown agent 'nobody'" in _refused("--agent", "nobody")
    assert "needs a model" in _refused("--agent", "llm")
    config = tmp_path / "agent.yaml"
    config.write_text("colour: red\n")
    assert "settings do not fit RaisingAgent" in _refused(
        "--agent", f"{__name__}:RaisingAgent", "--agent-config", str(config))
    assert "unknown setting 'budgets.money'" in _refused(
        "--agent", "llm", "--model", "m", "--agent-config", str(_yaml(tmp_path, {"budgets": {"money": 1}})))
    cmd = [sys.executable, "-m", "bashenv.cli", "run", str(TASK), "--agent", "nobody"]
    shown = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 2 and "error: unknown agent 'nobody'" in shown.stderr
    listed = cli.invoke(app, ["run", "--help"])
    assert all(name in listed.output for name in ("gold", "replay", "llm", "package.module:Class"))


def _yaml(tmp_path, data: dict):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_changed_replay_file_or_task_runs_again(tmp_path):
    suite = tmp_path / "suite"
    shutil.copytree(TASK, suite / TASK.name)
    shutil.copytree(TASKS_DIR / "repos" / "intervals", suite / "repos" / "intervals")
    script = tmp_path / "cmds.txt"
    script.write_text("true\n")
    out = tmp_path / "run"

    def run() -> bashenv.runner.RunResult:
        return bashenv.run(str(suite), "replay", replay=script, output=out, run_id=rid("resume"))

    first = run()
    assert first.reused == 0 and first.rerun_reasons == {TASK.name: "no earlier result"}
    same = run()
    assert same.reused == 1 and same.records == first.records
    script.write_text("true\nls\n")
    replayed = run()
    assert replayed.rerun_reasons == {TASK.name: "agent configuration changed"}
    assert replayed.records[0]["steps"] == 3
    issue = suite / TASK.name / "issue.md"
    issue.write_text(issue.read_text() + "\nAlso: please hurry.\n")
    edited = run()
    assert edited.rerun_reasons == {TASK.name: "task changed"}
    assert len(_records(out / "results.jsonl")) == 3
    predictions = _records(out / "predictions.jsonl")
    assert predictions == [{"instance_id": TASK.name, "model_name_or_path": "replay",
                            "model_patch": ""}]
