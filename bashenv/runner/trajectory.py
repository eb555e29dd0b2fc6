"""Per-episode records you can read and watch: a trajectory JSONL and an asciinema v2 cast.

Formats: /tmp/coord/trajectory-format.md at design time; the README's "Evaluate a model".
Lines are written (and flushed) as the episode goes, so a crash leaves what happened so far.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from bashenv import jsonl

FORMAT = "bashenv-trajectory/1"
CAST_SIZE = (120, 40)


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# Output comes from an untrusted agent and a cast is replayed in people's terminals: keep
# CSI sequences (colours, cursor moves), drop OSC/DCS/APC/PM strings (clipboard writes,
# titles, links) and other control characters.
_UNSAFE = re.compile(r"\x1b[\]P_^X][^\x07\x1b]*(?:\x07|\x1b\\)?"  # string sequences
                     r"|\x1b(?!\[)"  # any other escape but CSI
                     r"|[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]")


def _terminal(text: str) -> str:
    return _UNSAFE.sub("", text).replace("\r\n", "\n").replace("\n", "\r\n")


class TrajectoryWriter:
    """`header(...)` once, `step(...)` per action, `end(...)` once; `close()` always."""

    def __init__(self, directory: Path, episode_id: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{episode_id}.jsonl"
        self.cast_path = directory / f"{episode_id}.cast"
        self._jsonl: IO[str] = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
        self._cast: IO[str] = open(self.cast_path, "w", encoding="utf-8")  # noqa: SIM115
        self._t0 = time.monotonic()
        self._last = 0.0

    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def _line(self, handle: IO[str], item: Any) -> None:
        handle.write(json.dumps(item, ensure_ascii=False, default=str) + "\n")
        handle.flush()

    def _event(self, at: float, text: str) -> None:
        self._last = max(self._last, at)  # players need times that never go back
        self._line(self._cast, [round(self._last, 6), "o", _terminal(text)])

    def header(self, fields: dict[str, Any]) -> None:
        self._line(self._jsonl, {"type": "header", "format": FORMAT, **fields})
        width, height = CAST_SIZE
        self._line(self._cast, {
            "version": 2, "width": width, "height": height, "timestamp": int(time.time()),
            "title": f"{fields.get('task_id')} · {fields.get('agent')}",
            "env": {"SHELL": "/bin/bash", "TERM": "xterm-256color"}})
        intro = f"# task {fields.get('task_id')}\n{fields.get('intro', '')}".rstrip("\n")
        self._event(0.0, "\x1b[2m" + "\n".join(f"# {line}" if not line.startswith("#") else line
                                                for line in intro.splitlines()) + "\x1b[0m\n")

    def step(self, number: int, action: str, observation: dict[str, Any], sent_at: float,
             agent_seconds: float, env_seconds: float, policy: dict[str, Any] | None) -> None:
        output = str(observation.get("output", ""))
        self._line(self._jsonl, {
            "type": "step", "step": number, "action": action, "output": output,
            "exit_code": int(observation.get("exit_code", -1)),
            "timed_out": bool(observation.get("timed_out", 0)),
            "output_truncated": bool(observation.get("output_truncated", 0)),
            "t": round(sent_at, 6), "agent_seconds": round(agent_seconds, 6),
            "env_seconds": round(env_seconds, 6), "policy": policy})
        self._event(sent_at, f"\x1b[1;32m$\x1b[0m {action}\n")
        if output:
            self._event(sent_at + env_seconds, output if output.endswith("\n") else output + "\n")

    def end(self, record: dict[str, Any]) -> None:
        keys = ("outcome", "reward", "resolved", "steps", "truncation", "model_patch", "verdict",
                "error", "traceback", "tokens", "cost", "ended_at", "seconds")
        self._line(self._jsonl, {"type": "end", **{k: record.get(k) for k in keys}})
        colour = "32" if record.get("resolved") else "31"
        self._event(self.elapsed(), f"\x1b[1;{colour}m# verdict: {record.get('outcome')}\x1b[0m\n")

    def close(self) -> None:
        self._jsonl.close()
        self._cast.close()


def read_trajectory(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]],
                                                dict[str, Any] | None]:
    """(header, steps, end or None) of a trajectory file; a torn last line is skipped."""
    header: dict[str, Any] = {}
    steps: list[dict[str, Any]] = []
    end: dict[str, Any] | None = None
    for line in jsonl.lines(path):
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "header":
            header = item
        elif kind == "step":
            steps.append(item)
        elif kind == "end":
            end = item
    return header, steps, end
