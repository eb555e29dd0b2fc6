"""What tracing costs, measured inside one box (no container start in the figures):
a test run plain and under the tracer, and the tracer's throughput on a tight loop."""

from __future__ import annotations

import json
import shlex
import statistics

from bashenv.errors import BashenvError
from bashenv.sandbox import PROCESS_RUN_ID
from bashenv.task.model import Task
from bashenv.trace.run import (
    IN_DIR,
    TaskTracer,
    box_files,
    root_script,
    run_in_new_box,
    task_setup,
)

LOOP = ("def f():\n    total = 0\n    for i in range(20000):\n        total += i * 2\n"
        "    return total\n\nf()\n")


def tracing_overhead(task: Task, n: int = 5, run_id: str = PROCESS_RUN_ID) -> dict[str, float]:
    """p50 wall time of the task's first FAIL_TO_PASS test plain and traced, and events/s."""
    test = task.tests.fail_to_pass[0]
    tracer = f"python3 -s {IN_DIR}/tracer.py --max-events 1000000 --max-seconds 120"
    env = "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 PYTHONDONTWRITEBYTECODE=1 PYTHONHASHSEED=0"
    quiet = ">/dev/null 2>&1 </dev/null"
    runs = {
        "plain": f"python3 -m pytest -q -p no:cacheprovider {shlex.quote(test)}",
        "traced": f"{tracer} --test {shlex.quote(test)} --fd 3 3>/tmp/t.jsonl",
        "loop_plain": "python3 -s /tmp/loop.py",
        "loop_traced": f"cd /tmp && {tracer} --fd 3 loop.py 3>/tmp/l.jsonl",
    }
    body = [f"printf %s {shlex.quote(LOOP)} >/tmp/loop.py"]
    for _ in range(n):
        for name, command in runs.items():
            body.append(f"s=$EPOCHREALTIME; {env} bash -c {shlex.quote(command)} {quiet}; "
                        f"e=$EPOCHREALTIME; echo \"{name} $s $e\"")
    body.append("echo events $(tail -1 /tmp/l.jsonl)")
    tt = TaskTracer(task, run_id=run_id)
    script = root_script(task.workdir, task_setup(task, "before"),
                         ["bash", "-c", "\n".join(body)], 600.0)
    # The timings are the run's output (the log).
    out = run_in_new_box(tt.backend, tt.spec, box_files(task, "before"), script, 600.0,
                         "measuring").log
    times: dict[str, list[float]] = {name: [] for name in runs}
    events = 0
    for line in out.splitlines():
        name, _, rest = line.partition(" ")
        if name == "events":
            events = int(json.loads(rest)["events"])
        elif name in times:
            start, end = rest.split()
            times[name].append(float(end) - float(start))
    if not all(times.values()) or not events:
        raise BashenvError(f"measuring tracing failed: {out[-300:]}")
    p50 = {name: statistics.median(values) for name, values in times.items()}
    return {"trace_test_plain_p50_s": p50["plain"], "trace_test_traced_p50_s": p50["traced"],
            "trace_overhead_ratio": p50["traced"] / p50["plain"],
            "trace_events_per_s": events / max(1e-6, p50["loop_traced"] - p50["loop_plain"])}
