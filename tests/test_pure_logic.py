"""Parsers and helpers that need no container: JUnit parsing, diff paths, quoting, capping."""

from __future__ import annotations

import subprocess

from hypothesis import given, settings
from hypothesis import strategies as st

from bashenv.grading import PytestJUnit, changed_paths
from bashenv.sandbox.output import CappedBuffer, ExecFrames, clean
from bashenv.sandbox.shell import ansi_c_quote

USES_ENGINE = False  # pure logic: runs without a Docker engine (conftest)

JUNIT = b"""<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.test_a" name="test_ok" file="tests/test_a.py" line="1"/>
<testcase classname="tests.test_a" name="test_bad"><failure message="x">boom</failure></testcase>
<testcase classname="tests.test_a.TestK" name="test_p[1-2]"><skipped/></testcase>
<testcase classname="tests.sub.test_b" name="test_err"><error message="e"/></testcase>
<testcase classname="tests.test_a" name="test_dup"/>
<testcase classname="tests.test_a" name="test_dup"><failure/></testcase>
</testsuite></testsuites>"""


def test_junit_statuses_map_to_task_ids():
    ids = ["tests/test_a.py::test_ok", "tests/test_a.py::test_bad",
           "tests/test_a.py::TestK::test_p[1-2]", "tests/sub/test_b.py::test_err",
           "tests/test_a.py::test_dup", "tests/test_a.py::test_absent"]
    assert PytestJUnit().parse(JUNIT, ids) == {
        ids[0]: "passed", ids[1]: "failed", ids[2]: "skipped", ids[3]: "error",
        ids[4]: "failed", ids[5]: "missing",
    }


def test_changed_paths_of_git_diff():
    diff = ("diff --git a/src/x.py b/src/x.py\n--- a/src/x.py\n+++ b/src/x.py\n@@ -1 +1 @@\n-a\n+b\n"
            "diff --git a/new.txt b/new.txt\nnew file mode 100644\n--- /dev/null\n+++ b/new.txt\n"
            "diff --git a/old.py b/renamed.py\nrename from old.py\nrename to renamed.py\n")
    assert changed_paths(diff) == {"src/x.py", "new.txt", "old.py", "renamed.py"}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000))
def test_ansi_c_quote_round_trips_through_real_bash(command):
    """Whatever the agent types reaches bash byte for byte, in short printable lines."""
    quoted = ansi_c_quote(command, line=100)
    assert all(len(line) < 200 for line in quoted.split("\n"))
    assert all(32 <= ord(c) < 127 or c == "\n" for c in quoted)
    out = subprocess.run(["bash", "-c", f"printf %s {quoted}"], capture_output=True).stdout
    assert out == command.encode("utf-8", "surrogateescape").replace(b"\0", b"")


def test_capped_buffer_keeps_head_and_tail_and_counts_cut():
    buf = CappedBuffer(100)
    for _ in range(1000):
        buf.add(b"0123456789")
    assert buf.truncated and buf.cut == 10000 - 100
    text = buf.text()
    assert text.startswith("0123456789" * 5) and text.endswith("0123456789" * 5)
    assert "9900 bytes of output cut" in text


def test_clean_strips_ansi_and_replaces_bad_bytes():
    assert clean(b"\x1b[31mred\x1b[0m\r\nok\xff\x07") == "red\nok\ufffd"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1, 2, 3]), st.binary(max_size=300)), max_size=20),
       st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=50))
def test_exec_frames_give_back_the_payloads_however_the_stream_is_cut(frames, cuts):
    stream = b"".join(bytes([kind, 0, 0, 0]) + len(data).to_bytes(4, "big") + data
                      for kind, data in frames)
    decoder, out, at, i = ExecFrames(), b"", 0, 0
    while at < len(stream):
        size = cuts[i % len(cuts)]
        out += decoder.feed(stream[at: at + size])
        at, i = at + size, i + 1
    assert out == b"".join(data for _, data in frames)
