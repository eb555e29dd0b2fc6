"""Parsers and helpers that need no container: JUnit parsing, diff paths, quoting, capping."""

from __future__ import annotations

import subprocess

import pytest
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
<testcase classname="tests.test_a" name="test_dup2"><error/></testcase>
<testcase classname="tests.test_a" name="test_dup2"/>
</testsuite></testsuites>"""


def test_junit_statuses_map_to_task_ids():
    ids = ["tests/test_a.py::test_ok", "tests/test_a.py::test_bad",
           "tests/test_a.py::TestK::test_p[1-2]", "tests/sub/test_b.py::test_err",
           "tests/test_a.py::test_dup", "tests/test_a.py::test_absent", "tests/test_a.py::test_dup2"]
    assert PytestJUnit().parse(JUNIT, ids) == {
        ids[0]: "passed", ids[1]: "failed", ids[2]: "skipped", ids[3]: "error",
        ids[4]: "failed", ids[5]: "missing", ids[6]: "error",  # a duplicate: its worst result
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


# -- PytestJUnit.verify: a report is trusted only when report, exit code and log agree ----

HONEST_TESTS = """
import pytest

def test_ok():
    pass

def test_bad():
    assert 0

@pytest.fixture
def broken():
    raise RuntimeError

def test_err(broken):
    pass

def test_skip():
    pytest.skip("no")
"""


def _real_pytest_run(tmp_path, files: dict[str, str]) -> tuple[bytes, int, str]:
    """(JUnit report, exit code, log) of a real pytest run, with the options the grader uses."""
    import sys

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    report = tmp_path / "report.xml"
    command = PytestJUnit().command(f"{sys.executable} -m pytest tests", str(report)).split()
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    return report.read_bytes(), done.returncode, done.stdout + done.stderr


def _forge(report: bytes, old: str, new: str) -> bytes:
    assert old.encode() in report
    return report.replace(old.encode(), new.encode(), 1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[bytes, int, str]]:
    """Real pytest runs, once per module: mixed results, all passing, a collection error."""
    root = tmp_path_factory.mktemp("runs")
    return {
        "mixed": _real_pytest_run(root / "mixed", {"tests/test_s.py": HONEST_TESTS}),
        "passing": _real_pytest_run(root / "ok", {"tests/test_s.py": "def test_a():\n    pass\n"}),
        # A test module that cannot be imported: pytest stops with exit 2 ("Interrupted").
        "collection": _real_pytest_run(root / "col", {"tests/test_c.py": "import no_such_module\n"}),
    }


def test_verify_trusts_honest_runs(runs):
    assert [rc for _, rc, _ in runs.values()] == [1, 0, 2]
    for name, run in runs.items():
        assert PytestJUnit().verify(*run) is None, name


def test_verify_distrusts_a_failing_report_with_exit_zero(runs):
    report, rc, log = runs["mixed"]
    assert "exited 0" in PytestJUnit().verify(report, 0, log)


def test_verify_distrusts_a_passing_report_with_a_failing_exit_code(runs):
    report, rc, log = runs["passing"]
    for bad_rc in (1, 2, 5, 137):
        assert f"exited {bad_rc}" in PytestJUnit().verify(report, bad_rc, log)


def test_verify_distrusts_a_collection_error_with_another_exit_code(runs):
    report, rc, log = runs["collection"]
    for bad_rc in (0, 1):
        assert f"exited {bad_rc}" in PytestJUnit().verify(report, bad_rc, log)


def test_verify_distrusts_a_duplicated_test_case(runs):
    report, rc, log = runs["passing"]
    case = report[report.index(b"<testcase"):report.index(b"</testsuite>")]
    doubled = report.replace(case, case + case)
    assert "more than once" in PytestJUnit().verify(doubled, rc, log)


def test_verify_distrusts_a_report_the_summary_contradicts(runs):
    report, rc, log = runs["mixed"]
    # The failure rewritten into a pass, exit code made to match: the log still says 1 failed.
    start = report.index(b"<failure")
    forged = report[:start] + report[report.index(b"</failure>") + len(b"</failure>"):]
    forged = _forge(forged, 'failures="1"', 'failures="0"')
    assert "the log says" in PytestJUnit().verify(forged, 1, log)
    # A later, forged summary line in the log does not match the report either.
    assert "the log says" in PytestJUnit().verify(report, rc, log + "\n==== 5 passed in 0.01s ====\n")


def test_verify_distrusts_a_log_without_a_summary(runs):
    report, rc, log = runs["passing"]
    assert "no pytest summary" in PytestJUnit().verify(report, rc, "")


# -- changed_paths: every path a diff touches, however the diff is written -------------

def test_changed_paths_of_plain_unified_diffs_without_git_headers():
    diff = ("--- a/pkg/mod.py\t2024-01-01 10:00:00.000000000 +0000\n"
            "+++ b/pkg/mod.py\t2024-01-01 10:00:01.000000000 +0000\n@@ -1 +1 @@\n-a\n+b\n"
            "--- /dev/null\n+++ b/conftest.py\n@@ -0,0 +1 @@\n+x = 1\n"
            "--- a/tests/old_test.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n")
    assert changed_paths(diff) == {"pkg/mod.py", "conftest.py", "tests/old_test.py"}


def test_changed_paths_of_renames_mode_changes_deletions_and_quoted_names():
    diff = ('diff --git a/old.py b/sub/new.py\nsimilarity index 100%\n'
            'rename from old.py\nrename to sub/new.py\n'
            'diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n'
            'diff --git a/tests/conftest.py b/tests/conftest.py\ndeleted file mode 100644\n'
            '--- a/tests/conftest.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n'
            'diff --git "a/tests/\\303\\274/conftest.py" "b/tests/\\303\\274/conftest.py"\n'
            'new file mode 100644\n--- /dev/null\n+++ "b/tests/\\303\\274/conftest.py"\n'
            '@@ -0,0 +1 @@\n+x\n'
            'diff --git a/with space.py b/with space.py\n--- a/with space.py\n'
            '+++ b/with space.py\n@@ -1 +1 @@\n-a\n+b\n')
    assert changed_paths(diff) == {"old.py", "sub/new.py", "run.sh", "tests/conftest.py",
                                   "tests/ü/conftest.py", "with space.py"}


def test_changed_paths_of_a_real_git_diff(tmp_path):
    """Whatever git writes (a rename, a new file, a mode change, a deletion), all are found."""
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, env=env,
                              capture_output=True).stdout.decode()

    git("init", "-q")
    for name in ("a.py", "b.py", "c.sh", "gone.py"):
        (tmp_path / name).write_text(f"# {name}\n" * 20)
    git("add", "-A")
    git("commit", "-qm", "base")
    git("mv", "a.py", "renamed.py")
    (tmp_path / "b.py").write_text("changed\n")
    (tmp_path / "c.sh").chmod(0o755)
    (tmp_path / "gone.py").unlink()
    (tmp_path / "tests ü").mkdir()
    (tmp_path / "tests ü" / "conftest.py").write_text("x = 1\n")
    git("add", "-A")
    diff = git("-c", "core.quotePath=true", "diff", "--cached", "-M", "--binary")
    assert changed_paths(diff) == {"a.py", "renamed.py", "b.py", "c.sh", "gone.py",
                                   "tests ü/conftest.py"}


def test_changed_paths_does_not_read_hunk_lines_as_headers():
    """An added line `++ b/x` reads `+++ b/x` in the diff; a removed `-- x` reads `--- x`."""
    diff = ("diff --git a/notes.txt b/notes.txt\n--- a/notes.txt\n+++ b/notes.txt\n"
            "@@ -1,3 +1,3 @@\n keep\n--- a/old/spoof.py\n+++ b/tests/test_core.py\n"
            " \\ tail\n\\ No newline at end of file\n"
            "--- a/sql.txt\n+++ b/sql.txt\n@@ -1 +1,2 @@\n--- a comment\n+++ b/conftest.py\n+x\n")
    assert changed_paths(diff) == {"notes.txt", "sql.txt"}


def test_missing_engine_gives_a_clear_error_and_tasks_list_needs_none(tmp_path):
    """No engine behind DOCKER_HOST: the first engine call says what to do; listing tasks
    never contacts the engine at all."""
    import os
    import sys

    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock", "COLUMNS": "250"}
    probe = "from bashenv.sandbox.engine import client; client()"
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "DockerUnavailable: No Docker engine answers" in done.stderr
    assert "apt-get install docker.io" in done.stderr
    listed = subprocess.run([sys.executable, "-m", "bashenv.cli", "tasks", "list"], env=env,
                            capture_output=True, text=True)
    assert listed.returncode == 0 and "textkit-truncate-width" in listed.stdout, listed.stderr
