"""Agents: `reset(task, observation)`, then `act(observation) -> command` until `submit`.

The runner knows only this protocol. Built-ins are named (gold, replay, llm); any other
agent is a plugin named `package.module:Class`, built as `Class(**config)` from the
mapping in `--agent-config FILE.yaml`.

Optional parts of the protocol, used when present:
- `config() -> dict`: JSON-safe settings that decide results (model, prompts, file hashes);
  a changed config means earlier results are not re-used.
- `step_info() -> dict | None`: details of the last `act` for the trajectory (messages, usage).
- `usage() -> dict`: episode totals, {"tokens": {...}, "cost": float | None}.
- `model: str | None`: written to predictions as model_name_or_path.
An exception from agent code is the outcome `agent_error` (counted, not retried), except
`EndpointError`: the model's endpoint failed, which is infrastructure (retried next run).
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import yaml

from bashenv.agents.scripted import GoldAgent, ReplayAgent, heredoc_write
from bashenv.errors import BashenvError
from bashenv.task import Task

BUILTINS = {
    "gold": "applies the task's gold patch (checks the task is solvable)",
    "replay": "plays commands from a file (--replay FILE)",
    "llm": "an OpenAI-compatible chat model with a bash tool (--model, --base-url)",
}


class Agent(Protocol):
    name: str

    def reset(self, task: Task, observation: dict[str, Any]) -> None: ...

    def act(self, observation: dict[str, Any]) -> str: ...


class EndpointError(Exception):
    """The model endpoint failed after retries: not the agent's fault, run the episode again."""


def load_agent_config(path: str | Path | None) -> dict[str, Any]:
    """The mapping in an agent-config YAML file ({} for no file)."""
    if path is None:
        return {}
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise BashenvError(f"{path}: cannot read agent config: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BashenvError(f"{path}: an agent config must be a mapping of settings")
    return data


def _plugin_class(spec: str) -> type:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BashenvError(f"agent {spec!r}: cannot import module {module_name!r}: {exc}") from None
    cls = getattr(module, attr, None)
    if not isinstance(cls, type):
        raise BashenvError(f"agent {spec!r}: module {module_name!r} has no class {attr!r}")
    return cls


def make_agent(spec: str, replay_file: str | Path | None = None,
               config: Mapping[str, Any] | None = None) -> Agent:
    """A built-in agent by name, or a plugin `package.module:Class` built with `config`."""
    settings = dict(config or {})
    if spec == "gold":
        if settings:
            raise BashenvError(f"the gold agent takes no settings (got {sorted(settings)})")
        return GoldAgent()
    if spec == "replay":
        replay_file = replay_file or settings.pop("file", None)
        if replay_file is None:
            raise BashenvError("the replay agent needs a file of commands (--replay FILE)")
        return ReplayAgent(replay_file)
    if spec == "llm":
        from bashenv.agents.llm import LLMAgent

        return LLMAgent(**settings)
    if ":" not in spec:
        raise BashenvError(f"unknown agent {spec!r}: choose one of {', '.join(BUILTINS)} "
                           "or name a class as package.module:Class")
    cls = _plugin_class(spec)
    try:
        agent: Agent = cls(**settings)
    except TypeError as exc:
        raise BashenvError(f"agent {spec!r}: its settings do not fit {cls.__name__}: {exc}") from None
    if not callable(getattr(agent, "act", None)) or not callable(getattr(agent, "reset", None)):
        raise BashenvError(f"agent {spec!r}: {cls.__name__} needs reset(task, obs) and act(obs)")
    if not getattr(agent, "name", None):
        agent.name = spec
    return agent


class AgentSpec:
    """What to run: a built-in name or `module:Class`, with its settings. Calling it builds
    a fresh agent (one per episode); `identity` is what resume compares."""

    def __init__(self, spec: str, config: Mapping[str, Any] | None = None,
                 replay_file: str | Path | None = None) -> None:
        self.spec, self.config, self.replay_file = spec, dict(config or {}), replay_file

    def __call__(self) -> Agent:
        return make_agent(self.spec, self.replay_file, self.config)


def agent_config(agent: Agent, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The agent's declared configuration, else the settings it was built with."""
    declared = getattr(agent, "config", None)
    if callable(declared):
        return dict(declared())
    return dict(given or {})


def config_hash(name: str, config: Mapping[str, Any]) -> str:
    canonical = json.dumps({"agent": name, "config": config}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


__all__ = ["BUILTINS", "Agent", "AgentSpec", "EndpointError", "GoldAgent", "ReplayAgent",
           "agent_config", "config_hash", "heredoc_write", "load_agent_config", "make_agent"]
