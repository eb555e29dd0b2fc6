"""The tracer's events, text form, bounds and determinism, run on the host's Pythons.

The same file runs inside the boxes (tests/test_trace.py); here it runs under this
interpreter (sys.settrace before 3.12) and, when pyenv or the PATH has one, a Python
>= 3.12 (sys.monitoring), which must give the very same events.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bashenv.trace import tracer
from bashenv.trace.dataset import _drop_torn_tail, done_keys, read_dataset
from bashenv.trace.run import parse_trace

USES_ENGINE = False
TRACER = Path(tracer.__file__)

SMALL = '''\
def scale(values, factor):
    out = []
    for v in values:
        out.append(v * factor)
    return out


scale([1, 2], 3)
'''

# Checked by hand: each line, then the frame's variables whose values it changed.
SMALL_TEXT = """\
--- call <module> (small.py:1)
{}
---
def scale(values, factor):
{}
---
scale([1, 2], 3)
  --- call scale (small.py:1)
  {values: [1, 2], factor: 3}
  ---
  out = []
  {out: []}
  ---
  for v in values:
  {v: 1}
  ---
  out.append(v * factor)
  {out: [3]}
  ---
  for v in values:
  {v: 2}
  ---
  out.append(v * factor)
  {out: [3, 6]}
  ---
  for v in values:
  {}
  ---
  return out
  {}
  --- return [3, 6]
{}
--- return None
=== end: passed, 13 events"""


def _new_python() -> str | None:
    """A host Python >= 3.12 (for the sys.monitoring back-end), if there is one."""
    candidates = [shutil.which(f"python3.{minor}") for minor in (13, 12)]
    candidates += sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.1[23]*/bin/python3"))
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info >= (3, 12))"],
                               capture_output=True, text=True)
        if probe.stdout.strip() == "True":
            return candidate
    return None


def run(tmp_path: Path, source: str, *args: str, python: str = sys.executable,
        name: str = "small.py") -> tuple[list[dict], str]:
    (tmp_path / name).write_text(source)
    done = subprocess.run([python, str(TRACER), *args, name], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return lines, done.stdout


def test_small_function_trace_is_the_hand_checked_one(tmp_path):
    records, _ = run(tmp_path, SMALL)
    *events, end = records
    assert tracer.to_text([*events, end]) == SMALL_TEXT
    assert end["outcome"] == "passed" and end["bounds_hit"] == {}
    assert end["functions"] == {"small.py:1": SMALL.split("\n\n\n")[0] + "\n"}
    _, text = run(tmp_path, SMALL, "--format", "text")
    assert text.strip() == SMALL_TEXT


def test_the_settrace_and_monitoring_back_ends_give_the_same_events(tmp_path):
    new = _new_python()
    if new is None:
        pytest.skip("no Python >= 3.12 on this host (test_trace.py checks a trixie box)")
    old_events, _ = run(tmp_path, SMALL)
    new_events, _ = run(tmp_path, SMALL, python=new)
    assert old_events[-1]["backend"] == "settrace" and new_events[-1]["backend"] == "monitoring"
    assert old_events[:-1] == new_events[:-1]


def test_exceptions_and_returns_of_unwinding_frames(tmp_path):
    source = "def f(n):\n    raise ValueError(n)\n\ntry:\n    f(2)\nexcept ValueError:\n    pass\n"
    events, _ = run(tmp_path, source)
    kinds = [(e["event"], e["function"]) for e in events[:-1] if e["function"] == "f"]
    assert kinds == [("call", "f"), ("line", "f"), ("exception", "f"), ("return", "f")]
    assert events[-1]["outcome"] == "passed"


def test_infinite_loop_hits_the_event_and_wall_time_bounds(tmp_path):
    events, _ = run(tmp_path, "i = 0\nwhile True:\n    i += 1\n",
                    "--max-events", "500", "--max-seconds", "1")
    end = events[-1]
    assert end["outcome"] == "timeout" and end["events"] == 500
    assert set(end["bounds_hit"]) == {"events", "seconds"}


def test_deep_recursion_hits_the_depth_bound(tmp_path):
    events, _ = run(tmp_path, "def f(n):\n    return f(n + 1)\n\nf(0)\n", "--max-depth", "10")
    end = events[-1]
    assert "depth" in end["bounds_hit"] and end["outcome"] == "failed"  # RecursionError
    assert max(e["depth"] for e in events[:-1]) == 9


def test_huge_locals_hit_the_repr_bound(tmp_path):
    source = "def g():\n    big = list(range(10**6))\n    s = 'x' * 10**6\n    return 1\n\ng()\n"
    events, _ = run(tmp_path, source, "--max-repr", "40")
    values = [v for e in events[:-1] for v in e["locals"].values()]
    assert values and all(len(v) <= 60 for v in values)
    assert "repr" in events[-1]["bounds_hit"]


def test_reprs_carry_no_addresses_and_sets_keep_their_order(tmp_path):
    source = "class A:\n    pass\n\ndef h():\n    a = A()\n    s = {'pear', 'fig', 'kiwi'}\n" \
             "    return a\n\nh()\n"
    first, _ = run(tmp_path, source)
    second, _ = run(tmp_path, source)
    assert first[:-1] == second[:-1]
    a_repr = next(e["locals"]["a"] for e in first if "a" in e.get("locals", {}))
    assert "0x?" in a_repr and "0x7" not in a_repr


def test_library_code_is_skipped_and_include_exclude_filter(tmp_path):
    (tmp_path / "helper.py").write_text("def twice(x):\n    return 2 * x\n")
    source = "import json\nfrom helper import twice\n\njson.dumps([twice(1)])\n"
    events, _ = run(tmp_path, source)
    assert {e["file"] for e in events[:-1]} == {"small.py", "helper.py"}
    events, _ = run(tmp_path, source, "--exclude", "helper.py")
    assert {e["file"] for e in events[:-1]} == {"small.py"}


def test_the_traced_code_cannot_silence_the_tracer_unnoticed(tmp_path):
    source = ("import sys\nif sys.version_info >= (3, 12):\n"
              "    sys.monitoring.set_events(sys.monitoring.DEBUGGER_ID, 0)\n"
              "else:\n    sys.settrace(None)\nx = 1\n")
    events, _ = run(tmp_path, source)
    assert "tampered" in events[-1]["bounds_hit"]


def test_pytest_node_ids_are_traced_with_their_outcome(tmp_path):
    (tmp_path / "test_m.py").write_text("def test_ok():\n    x = 1\n    assert x == 1\n\n"
                                        "def test_bad():\n    y = 2\n    assert y == 3\n")
    for node, outcome in (("test_m.py::test_ok", "passed"), ("test_m.py::test_bad", "failed")):
        done = subprocess.run([sys.executable, str(TRACER), "--max-seconds", "60", "--test", node],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
        records = [json.loads(x) for x in done.stdout.splitlines() if x.startswith('{"')]
        assert records[-1]["outcome"] == outcome
        assert all(not k.startswith("@") for e in records[:-1] for k in e["locals"])


@pytest.mark.parametrize(("args", "message"), [
    (["--task", "nope", "--test", "x"], "--task nope: no such task"),
    (["--task", "textkit-truncate-width"], "give exactly one of"),
    (["--task", "textkit-truncate-width", "--test", "x", "--format", "xml"], "--format must be"),
    (["--test", "x"], "choose one with --task ID"),
])
def test_bad_trace_commands_are_named_before_any_box_starts(args, message):
    tasks = Path(__file__).resolve().parents[1] / "tasks"
    done = subprocess.run([sys.executable, "-m", "bashenv.cli", "trace", str(tasks), *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "300"})
    assert done.returncode == 2 and message in done.stdout + done.stderr


def test_modules_run_with_dash_m_and_get_their_arguments(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "tool.py").write_text("import sys\n\nargs = sys.argv[1:]\n")
    done = subprocess.run([sys.executable, str(TRACER), "-m", "pkg.tool", "a", "b"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    *events, end = [json.loads(x) for x in done.stdout.splitlines()]
    assert end["outcome"] == "passed"
    assert {"args": "['a', 'b']"} in [e["locals"] for e in events]
    assert {e["file"] for e in events} == {"pkg/__init__.py", "pkg/tool.py"}


def test_dataset_lines_split_only_at_newlines_and_a_torn_tail_is_dropped(tmp_path):
    path = tmp_path / "traces.jsonl"
    records = [{"key": "a", "log": "para\u2028graph"}, {"key": "b", "log": "next\x85line"}]
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    path.write_text(lines + '{"key": "c", "lo', encoding="utf-8")
    _drop_torn_tail(path)
    assert path.read_text(encoding="utf-8") == lines
    assert list(read_dataset(tmp_path)) == records
    assert done_keys(path) == {"a", "b"}


def test_a_trace_whose_values_hold_unicode_line_separators_is_read_whole():
    events = [{"event": "line", "source": "s = 'a\u2028b'", "locals": {}},
              {"event": "end", "events": 1, "outcome": "passed", "log": "x\x85y"}]
    data = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events).encode()
    trace = parse_trace(data)
    assert trace.events == events[:1] and trace.end == events[1]
    assert trace.outcome == "passed"
