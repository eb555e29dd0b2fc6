"""Tracing in sandboxes, with the real engine: `bashenv trace` on a task's FAIL_TO_PASS
test, the bounds in a box, both tracer back-ends in boxes (bookworm's 3.11: settrace,
trixie's 3.13: sys.monitoring), `bashenv traces` over the bundled tasks (and resumed),
TracePredict-v0 on a file traced in a box, and the `trace` command in agents' boxes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from bashenv.cli import app
from bashenv.env import BashSWEEnv
from bashenv.images.build import build_base
from bashenv.images.recipes import load_recipe
from bashenv.trace import tracer
from bashenv.trace.dataset import read_dataset
from bashenv.trace.predict import episodes_from_events
from bashenv.trace.run import Bounds, trace_file
from bashenv.worlds.trace_predict import TracePredictEnv

from .conftest import TASKS_DIR, rid
from .test_trace_logic import SMALL, SMALL_TEXT

cli = CliRunner(env={"COLUMNS": "250"})
F2P = "tests/test_ops.py::test_merge_unsorted_input"

# merge([(7, 8), (2, 5), (1, 3)]) after the gold patch (sorted input), checked by hand:
# each executed line of merge and the variables it changed.
MERGE_AFTER = [
    ("merged: List[Interval] = []", {"merged": "[]"}),
    ("for start, end in sorted(_check(intervals)):", {"start": "1", "end": "3"}),
    ("if merged and start <= merged[-1][1]:", {}),
    ("merged.append((start, end))", {"merged": "[(1, 3)]"}),
    ("for start, end in sorted(_check(intervals)):", {"start": "2", "end": "5"}),
    ("if merged and start <= merged[-1][1]:", {}),
    ("merged[-1] = (merged[-1][0], max(merged[-1][1], end))", {"merged": "[(1, 5)]"}),
    ("for start, end in sorted(_check(intervals)):", {"start": "7", "end": "8"}),
    ("if merged and start <= merged[-1][1]:", {}),
    ("merged.append((start, end))", {"merged": "[(1, 5), (7, 8)]"}),
    ("for start, end in sorted(_check(intervals)):", {}),
    ("return merged", {}),
]


def _trace_cli(*args: str) -> tuple[list[dict], str]:
    result = cli.invoke(app, ["trace", str(TASKS_DIR), "--task", "intervals-merge-unsorted",
                              "--test", F2P, "--format", "jsonl", "--run-id", rid("trace"), *args])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    return lines, result.output


def test_bashenv_trace_of_a_fail_to_pass_test_before_and_after_the_fix():
    before, _ = _trace_cli("--before")
    after, output = _trace_cli("--after")
    assert before[-1]["outcome"] == "failed" and after[-1]["outcome"] == "passed"
    assert "intervals-merge-unsorted (after the fix): passed" in output
    merge = [e for e in episodes_from_events(after[:-1], after[-1]["functions"])
             if e.function == "merge"]
    assert list(zip(merge[0].lines, merge[0].changes, strict=True)) == MERGE_AFTER
    assert merge[0].call == {"intervals": "[(7, 8), (2, 5), (1, 3)]"}
    assert merge[0].returned == "[(1, 5), (7, 8)]"
    old = next(e for e in episodes_from_events(before[:-1], {}) if e.function == "merge")
    assert old.returned == "[(7, 8)]"  # the bug, seen in the trace


def test_an_endless_loop_in_a_box_is_stopped_and_says_so():
    trace = trace_file("i = 0\nwhile True:\n    i += 1\n", "loop.py", run_id=rid("trace"),
                       bounds=Bounds(events=300, seconds=2))
    assert trace.outcome == "timeout" and len(trace.events) == 300
    assert set(trace.bounds_hit) == {"events", "seconds"}
    assert "bound hit: stopped after 300 events" in trace.text()


FORGER = """import os
def forge():
    try:
        open("/bashenv_trace/out/trace.jsonl", "a").write("forged")
        path = "wrote"
    except OSError as exc:
        path = type(exc).__name__
    try:
        os.write(3, b"forged")
        fd = "wrote"
    except OSError as exc:
        fd = type(exc).__name__
forge()
"""


def test_traced_code_cannot_reach_the_trace_by_its_path_or_the_descriptor_it_was_given():
    trace = trace_file(FORGER, "forge.py", run_id=rid("trace"))
    seen = {k: v for e in trace.events for k, v in e["locals"].items()}
    assert seen["path"] == "'PermissionError'" and seen["fd"] == "'OSError'"
    assert trace.outcome == "passed" and trace.end["events"] == len(trace.events)


def test_a_file_named_with_shell_characters_is_traced_under_its_name():
    name = "it's $(touch pwned) a;b.py"  # the box's root shell copies it into place
    trace = trace_file("x = 1\n", name, run_id=rid("trace"))
    assert trace.outcome == "passed"
    assert [(e["file"], e["locals"]) for e in trace.events if e["event"] == "line"] == [
        (name, {})]


def test_both_back_ends_in_boxes_give_the_hand_checked_trace():
    trixie = build_base(load_recipe("python-trixie"))[0]  # cached when it exists
    for image, backend in ((None, "settrace"), (trixie, "monitoring")):
        trace = trace_file(SMALL, "small.py", image=image, run_id=rid("trace"))
        assert trace.end["backend"] == backend
        assert trace.text() == SMALL_TEXT


def test_traces_dataset_of_the_bundled_tasks_is_written_and_resumed(tmp_path):
    args = ["traces", str(TASKS_DIR), "-o", str(tmp_path), "--workers", "2",
            "--run-id", rid("traces")]
    first = cli.invoke(app, args)
    assert first.exit_code == 0, first.output
    records = list(read_dataset(tmp_path))
    from bashenv.task import load_tasks
    expected = {(t.id, test, side) for t in load_tasks(TASKS_DIR)
                for test in t.tests.fail_to_pass for side in ("before", "after")}
    assert {(r["task_id"], r["test_id"], r["side"]) for r in records} == expected
    for r in records:
        assert r["outcome"] == ("passed" if r["side"] == "after" else "failed"), r["test_id"]
        assert r["commit"] and r["events"] == len(r["trace"])
        assert set(r["bounds_hit"]) <= {"repr"}  # an assertion message may be long
        assert f"=== end: {r['outcome']}, {r['events']} events" in r["text"]
    again = cli.invoke(app, args)
    assert again.exit_code == 0 and f"0 written, {len(expected)} already there" in again.output


def test_trace_predict_on_a_file_traced_in_a_box_rewards_an_oracle_with_one(tmp_path):
    program = tmp_path / "small.py"
    program.write_text(SMALL)
    # The oracle's truth: the same file traced on the host, independently of the box.
    host = subprocess.run([sys.executable, tracer.__file__, "small.py"], cwd=tmp_path,
                          capture_output=True, text=True, check=True)
    *events, end = [json.loads(x) for x in host.stdout.splitlines()]
    truth = episodes_from_events(events, end["functions"])[0]
    env = TracePredictEnv(files=[program], run_id=rid("trace"))
    obs, info = env.reset(seed=1)
    assert obs["source"].startswith("def scale(values, factor):")
    total, done, k = 0.0, False, 0
    while not done:
        _, reward, done, _, _ = env.step(tracer.state_text(truth.changes[k]))
        total, k = total + reward, k + 1
    assert k == len(truth.lines) and total == pytest.approx(1.0)


def test_agents_boxes_have_a_trace_command_they_cannot_replace():
    env = BashSWEEnv(str(TASKS_DIR), run_id=rid("trace-inbox"))
    try:
        env.reset(options={"task_id": "intervals-merge-unsorted"})
        obs, *_ = env.step("trace --test tests/test_ops.py::test_merge_empty")
        assert "--- call merge (intervals/ops.py:17)" in obs["output"]
        assert "=== end: passed" in obs["output"]
        obs, *_ = env.step("rm -f $(command -v trace) || echo refused; git status --short")
        assert "refused" in obs["output"] and "??" not in obs["output"]  # the repo untouched
        obs, *_ = env.step("trace --test tests/test_ops.py::test_merge_unsorted_input")
        assert "--- call test_merge_unsorted_input" not in obs["output"]  # hidden: not here
    finally:
        env.close()
