"""Trace prediction as a task: one function call of a real trace, its states to predict.

An *episode* is one call of a repository function taken from a trace: its source, its
arguments, and for every line it executed, the line and the frame's state after it ran
(the variables whose reprs changed, as the trace's text form shows them). Scoring a
predicted state against the true one:

- a prediction is read as the changes it claims (`{x: 5, y: 10}`, or a JSON object of
  strings); naming a variable with its previous value is the same as leaving it out;
- the variables in play are those that truly changed plus those predicted to change;
  a state is *exact* when each of them has the predicted value (none in play: exact);
- partial credit is the share of variables in play predicted right (0 to 1).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from bashenv.trace.tracer import DELETED, state_text


@dataclass
class Episode:
    function: str
    file: str
    source: str
    call: dict[str, str]  # the arguments (and any locals at entry), as reprs
    lines: list[str] = field(default_factory=list)  # the source line of each step
    changes: list[dict[str, str]] = field(default_factory=list)  # true state after each line
    before: list[dict[str, str]] = field(default_factory=list)  # full state before each line
    returned: str | None = None
    origin: dict[str, Any] = field(default_factory=dict)

    def call_text(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.call.items())
        return f"{self.function}({args})"

    def trace_text(self, upto: int, *, states: bool = True) -> str:
        """The frame's trace through step `upto`: each done line with its state, then the
        line of step `upto` whose state comes next (without states: every line)."""
        out = [f"--- call {self.call_text()}", state_text(self.call)]
        for k, line in enumerate(self.lines):
            if states and k > upto:
                break
            out += ["---", line]
            if states and k < upto:
                out.append(state_text(self.changes[k]))
        return "\n".join(out)


def episodes_from_events(events: list[dict[str, Any]], functions: dict[str, str],
                         origin: dict[str, Any] | None = None) -> list[Episode]:
    """One episode per call of a function (not a module body) in which at least one line
    changed a variable."""
    by_frame: dict[int, list[dict[str, Any]]] = {}
    for event in events:
        by_frame.setdefault(event["frame"], []).append(event)
    found = []
    for frame_events in by_frame.values():
        first = frame_events[0]
        if first["event"] != "call" or first["function"].endswith("<module>"):
            continue
        episode = Episode(first["function"], first["file"] or "",
                          functions.get(f"{first['file']}:{first['line']}", ""),
                          dict(first["locals"]), origin=dict(origin or {}))
        state = dict(first["locals"])
        for event, following in itertools.pairwise(frame_events):
            _apply(state, event["locals"])
            if event["event"] != "line":
                continue
            episode.lines.append(event["source"])
            episode.before.append(dict(state))
            episode.changes.append(dict(following["locals"]))
        if frame_events[-1]["event"] == "return":
            episode.returned = frame_events[-1].get("value")
        if any(episode.changes):  # a call whose lines change nothing has nothing to predict
            found.append(episode)
    return found


def _apply(state: dict[str, str], changes: dict[str, str]) -> None:
    for name, value in changes.items():
        if value == DELETED:
            state.pop(name, None)
        else:
            state[name] = value


def parse_state(text: str) -> dict[str, str] | None:
    """`{x: 5, s: 'a, b'}` (the trace's form) or a JSON object of strings; None if neither."""
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        try:
            data = json.loads(text)
            if isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
                return {str(k): v.strip() for k, v in data.items()}
        except ValueError:
            pass
        text = text[1:-1]
    elif text:
        return None
    state = {}
    for part in _split_top_level(text):
        name, sep, value = part.partition(":")
        if not sep or not name.strip().isidentifier():
            return None
        state[name.strip()] = value.strip()
    return state


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside brackets and quotes."""
    parts, depth, quote, start, i = [], 0, "", 0, 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if text[start:].strip():
        parts.append(text[start:])
    return [p for p in parts if p.strip()]


def score_state(predicted: str, truth: dict[str, str], before: dict[str, str]) -> tuple[bool, float]:
    """(exact?, partial credit) of a predicted state after a line (see the module doc)."""
    claimed = parse_state(predicted)
    if claimed is None:  # not a state at all: wrong, whatever the truth
        return False, 0.0
    claimed = {k: v for k, v in claimed.items() if before.get(k) != v}
    in_play = set(truth) | set(claimed)
    if not in_play:
        return True, 1.0
    right = sum(claimed.get(name) == truth.get(name) for name in in_play)
    return right == len(in_play), right / len(in_play)


def predicted_states(text: str) -> list[str]:
    """The states of a whole predicted trace: its lines that are `{...}`, in order."""
    return [line.strip() for line in text.splitlines() if line.strip().startswith("{")]
