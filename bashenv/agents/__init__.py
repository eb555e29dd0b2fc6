"""Agents: `reset(task, observation)`, then `act(observation) -> command` until `submit`.

The runner knows only this protocol, so an LLM agent is one more class here.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any, Protocol

import yaml

from bashenv.errors import BashenvError
from bashenv.task import SUBMIT, Task


class Agent(Protocol):
    name: str

    def reset(self, task: Task, observation: dict[str, Any]) -> None: ...

    def act(self, observation: dict[str, Any]) -> str: ...


def heredoc_write(path: str, content: str) -> str:
    """A bash command writing `content` verbatim to `path` (delimiter cannot clash)."""
    tag = "BASHENV_EOF_" + secrets.token_hex(8)
    body = content if content.endswith("\n") else content + "\n"
    return f"cat > {path} <<'{tag}'\n{body}{tag}"


class _ScriptedAgent:
    """Plays a list of commands, then submits."""

    name = "scripted"

    def __init__(self) -> None:
        self._queue: list[str] = []

    def commands(self, task: Task) -> list[str]:
        raise NotImplementedError

    def reset(self, task: Task, observation: dict[str, Any]) -> None:
        self._queue = [*self.commands(task), SUBMIT]

    def act(self, observation: dict[str, Any]) -> str:
        return self._queue.pop(0) if self._queue else SUBMIT


class GoldAgent(_ScriptedAgent):
    """Applies the task's gold patch through the shell, then submits."""

    name = "gold"

    def commands(self, task: Task) -> list[str]:
        if not task.gold_patch:
            raise BashenvError(f"task {task.id} has no gold_patch; the gold agent cannot run it")
        patch = "/tmp/bashenv-gold.patch"
        return [heredoc_write(patch, task.gold_patch), f"git apply {patch} && rm {patch}"]


class ReplayAgent(_ScriptedAgent):
    """Commands from a file: a YAML/JSON list (every task) or a mapping task id → list;
    any other file is one command per line."""

    name = "replay"

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BashenvError(f"{self.path}: cannot read replay file: {exc}") from None
        if self.path.suffix in (".yaml", ".yml", ".json"):
            try:
                data = (json.loads if self.path.suffix == ".json" else yaml.safe_load)(text)
            except (ValueError, yaml.YAMLError) as exc:
                raise BashenvError(f"{self.path}: invalid replay file: {exc}") from None
        else:
            data = [line for line in text.splitlines() if line.strip()]
        if not isinstance(data, (list, dict)):
            raise BashenvError(f"{self.path}: expected a list of commands or task id → list")
        self.script: list[str] | dict[str, list[str]] = data

    def commands(self, task: Task) -> list[str]:
        if isinstance(self.script, dict):
            return [str(c) for c in self.script.get(task.id, [])]
        return [str(c) for c in self.script]


def make_agent(name: str, replay_file: str | Path | None = None) -> Agent:
    if name == "gold":
        return GoldAgent()
    if name == "replay":
        if replay_file is None:
            raise BashenvError("the replay agent needs a file of commands (--replay FILE)")
        return ReplayAgent(replay_file)
    raise BashenvError(f"unknown agent {name!r}: choose gold or replay")


__all__ = ["Agent", "GoldAgent", "ReplayAgent", "heredoc_write", "make_agent"]
