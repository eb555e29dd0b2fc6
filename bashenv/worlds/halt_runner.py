"""Runs programs under a line-event budget and reports how each ended (Halt-v0's ground
truth). A standalone script: its source is sent into a sandbox and run by the box's
python3 (no bashenv there), reading a JSON list of jobs from $HALT_JOBS (else stdin) and
printing a JSON list of results.

The deciding bound is a count of `line` events in the program's own code (sys.settrace):
the same program and input give the same count on every run, however loaded the machine.
Wall time is only the caller's safety net.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from typing import Any

PROGRAM = "<program>"


class _OverBudget(BaseException):
    """Raised from the tracer; a BaseException so the program's `except Exception` misses it."""


class _CappedText(io.StringIO):
    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap

    def write(self, text: str) -> int:
        room = self.cap - self.tell()
        if room > 0:
            super().write(text[:room])
        return len(text)


def run(job: dict[str, Any]) -> dict[str, Any]:
    """{"source", "input", "budget", "max_output"} -> {"status", "steps", "output", "error"};
    status: halted (normally or by an exception: `error` names it) or budget."""
    budget, steps = int(job["budget"]), 0

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        nonlocal steps
        if frame.f_code.co_filename != PROGRAM:
            return None
        if event == "line":
            steps += 1
            if steps > budget:
                raise _OverBudget
        return tracer

    output = _CappedText(int(job.get("max_output", 4000)))
    status, error = "halted", None
    saved_stdin = sys.stdin
    sys.stdin = io.StringIO(job.get("input", ""))
    try:
        code = compile(job["source"], PROGRAM, "exec")
        with contextlib.redirect_stdout(output):
            sys.settrace(tracer)
            try:
                exec(code, {"__name__": "__main__"})
            finally:
                sys.settrace(None)
    except _OverBudget:
        status = "budget"
    except BaseException as exc:  # the program's own end, e.g. RecursionError, SystemExit
        error = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        sys.stdin = saved_stdin
    return {"status": status, "steps": min(steps, budget + 1), "output": output.getvalue(),
            "error": error}


def main() -> None:
    jobs = json.loads(os.environ.get("HALT_JOBS") or sys.stdin.read())
    sys.setrecursionlimit(2000)
    print(json.dumps([run(job) for job in jobs]))


if __name__ == "__main__":
    main()
