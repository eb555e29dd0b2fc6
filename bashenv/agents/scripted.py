"""Scripted agents: `gold` (the task's reference fix) and `replay` (commands from a file)."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path
from typing import Any

import yaml

from bashenv.errors import BashenvError
from bashenv.task import SUBMIT, Task


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

    def config(self) -> dict[str, Any]:
        return {}

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
        self._sha256 = hashlib.sha256(text.encode()).hexdigest()
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

    def config(self) -> dict[str, Any]:
        # The file's content, not its name, decides whether earlier results still hold.
        return {"file_sha256": self._sha256}

    def commands(self, task: Task) -> list[str]:
        if isinstance(self.script, dict):
            return [str(c) for c in self.script.get(task.id, [])]
        return [str(c) for c in self.script]
