"""`bashenv show`: replay a trajectory (JSONL) or an asciicast in the terminal.

Recorded output comes from an untrusted agent: by default only its colours reach the
terminal (no title, clipboard or screen-control sequences); `raw=True` passes the bytes
of a cast through unchanged, as `asciinema play` does.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from bashenv.errors import BashenvError
from bashenv.report.rundir import Trajectory, load_run, read_trajectory
from bashenv.report.terminal import Cast, read_cast, terminal_safe

BOLD_GREEN, DIM, RESET = "\x1b[1;32m", "\x1b[2m", "\x1b[0m"


class _Clock:
    """Sleeps for recorded gaps, scaled by `speed`, each at most `idle_limit` seconds."""

    def __init__(self, wait: bool, speed: float, idle_limit: float | None,
                 sleep: Callable[[float], None]) -> None:
        if speed <= 0:
            raise BashenvError(f"--speed must be positive, not {speed:g}")
        self.wait, self.speed, self.idle_limit, self.sleep = wait, speed, idle_limit, sleep
        self.now = 0.0

    def until(self, at: Any) -> None:
        if not isinstance(at, (int, float)) or isinstance(at, bool):
            return
        gap = max(0.0, float(at) - self.now)
        self.now = max(self.now, float(at))
        if self.idle_limit is not None:
            gap = min(gap, self.idle_limit)
        if self.wait and gap > 0:
            self.sleep(gap / self.speed)


def recording_of(run_dir: str | Path, task_id: str | None, agent: str | None = None,
                 cast: bool = False) -> Path:
    """The trajectory (or cast) of a task's latest episode in a run directory."""
    episodes = load_run(run_dir).episodes
    chosen = [e for e in episodes if (task_id is None or e.task_id == task_id)
              and (agent is None or e.record.get("agent") == agent)]
    if len(chosen) != 1:
        listed = ", ".join(sorted(f"{e.task_id} ({e.record.get('agent')})" for e in episodes))
        what = "no episode" if not chosen else "several episodes"
        raise BashenvError(f"{run_dir}: {what} for --task {task_id} --agent {agent}; "
                           f"choose among: {listed}")
    path = chosen[0].cast if cast else chosen[0].trajectory
    if path is None:
        raise BashenvError(f"{run_dir}: the {'cast' if cast else 'trajectory'} of "
                           f"{chosen[0].task_id} is missing")
    return path


def is_cast(path: Path) -> bool:
    if path.suffix == ".cast":
        return True
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            first = json.loads(handle.readline() or "null")
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(first, dict) and first.get("version") == 2


def replay(path: str | Path, *, speed: float = 1.0, wait: bool = True,
           idle_limit: float | None = 2.0, raw: bool = False, out: TextIO | None = None,
           sleep: Callable[[float], None] = time.sleep) -> None:
    """Write the recording at `path` to `out` (default stdout) at its recorded pace."""
    path = Path(path)
    if not path.is_file():
        raise BashenvError(f"{path}: no such trajectory or cast file")
    out = out if out is not None else sys.stdout
    clock = _Clock(wait, speed, idle_limit, sleep)
    if is_cast(path):
        _play_cast(read_cast(path), clock, raw, out)
    else:
        _play_trajectory(read_trajectory(path), clock, out)


def _play_cast(cast: Cast, clock: _Clock, raw: bool, out: TextIO) -> None:
    last = "\n"
    for at, code, data in cast.events:
        if code != "o":
            continue
        clock.until(at)
        out.write(data if raw else terminal_safe(data))
        out.flush()
        last = data or last
    if not last.endswith("\n"):  # leave the prompt on a line of its own
        out.write("\r\n" if raw else "\n")


def _play_trajectory(trajectory: Trajectory, clock: _Clock, out: TextIO) -> None:
    header = trajectory.header

    def say(text: str) -> None:
        out.write(text)
        out.flush()

    title = " · ".join(str(header[k]) for k in ("task_id", "agent", "model") if header.get(k))
    say(f"{DIM}# {terminal_safe(title or str(trajectory.path))}{RESET}\n")
    if header.get("intro"):
        say(f"{DIM}# {terminal_safe(str(header['intro']))}{RESET}\n")
    for step in trajectory.steps:
        clock.until(step.get("t"))
        say(f"{BOLD_GREEN}$ {terminal_safe(str(step.get('action', '')))}{RESET}\n")
        if isinstance(step.get("env_seconds"), (int, float)) and isinstance(step.get("t"), (int, float)):
            clock.until(step["t"] + step["env_seconds"])  # the output arrives when the command ended
        output = terminal_safe(str(step.get("output", "")))
        if output:
            say(output if output.endswith("\n") else output + "\n")
        notes = [f"exit {step.get('exit_code', '?')}"]
        if step.get("timed_out"):
            notes.append("timed out")
        if isinstance(step.get("env_seconds"), (int, float)):
            notes.append(f"{step['env_seconds']:.2f}s")
        say(f"{DIM}[{' · '.join(notes)}]{RESET}\n")
    end = trajectory.end
    if end is None:
        say(f"{DIM}# the trajectory has no end line (the run was cut short){RESET}\n")
    else:
        say(f"{DIM}# verdict: {terminal_safe(str(end.get('outcome')))} "
            f"(reward {terminal_safe(str(end.get('reward')))}){RESET}\n")
