"""SWE-bench's pytest `-rA` runs, hardened (bashenv/grading/parsers.py): which tasks get the
grader's plugin and canaries, and the JUnit report that keeps the log honest. No engine:
the test command runs here, under real pytest and bash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bashenv.grading.parsers import PARSERS, PytestJUnit, PytestLogAndJUnit, hardened

USES_ENGINE = False


@pytest.mark.parametrize(("runner", "command", "wraps"), [
    ("swebench:pallets/flask", "python -m pytest -rA tests/test_config.py", True),
    ("swebench:pytest-dev/pytest", "pytest -rA testing/test_mark.py", True),
    ("swebench:psf/requests", "LANG=C /opt/venv/bin/python3.9 -m pytest -rA t.py", True),
    ("swebench:sphinx-doc/sphinx", "tox --current-env -epy39 -v -- tests/test_x.py", False),
    ("swebench:django/django", "./tests/runtests.py --verbosity 2 x", False),
    ("swebench:sympy/sympy", "bin/test -C --verbose x", False),
])
def test_pytest_logs_from_a_command_that_starts_pytest_are_hardened(runner, command, wraps):
    parser = hardened(PARSERS[runner], command)
    assert isinstance(parser, PytestLogAndJUnit) == wraps
    assert getattr(parser, "runs_pytest", False) == wraps  # the plugin and canaries with it
    assert hardened(PARSERS["pytest"], command) is PARSERS["pytest"]  # JUnit runs as they were


TESTS = b"""import lib


def test_fixed():
    assert lib.value() == 2


def test_kept():
    assert 1 + 1 == 2
"""
HONEST = b"def value():\n    return 1\n"
# After pytest's summary, at exit: the line SWE-bench's parser reads last for that test.
PRINTS_PASSED = HONEST + b"""
import atexit


@atexit.register
def _forge():
    print("PASSED test_lib.py::test_fixed")
    print("bashenv-junit 0")
"""


def _graded(tmp_path: Path, library: bytes, junit: bool = True) -> tuple[str | None, dict[str, str]]:
    """The hardened command run for real; (why not trusted, statuses) as the grader reads it."""
    (tmp_path / "test_lib.py").write_bytes(TESTS)
    (tmp_path / "lib.py").write_bytes(library)
    parser = hardened(PARSERS["swebench:pallets/flask"], "python -m pytest -rA test_lib.py")
    base = f"{sys.executable} -m pytest -rA -p no:cacheprovider test_lib.py"
    command = parser.command(base, str(tmp_path / "report"))
    if not junit:  # pytest stopped before it wrote the report (e.g. os._exit)
        command = command.replace(f"--junitxml={tmp_path}/report.junit",
                                  f"--junitxml={tmp_path}/elsewhere.xml")
    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True)
    report = (tmp_path / "report").read_bytes()
    ids = ["test_lib.py::test_fixed", "test_lib.py::test_kept"]
    return parser.verify(report, done.returncode, done.stdout), parser.parse(report, ids)


def test_an_honest_run_is_read_as_swebench_reads_it(tmp_path):
    distrust, statuses = _graded(tmp_path, HONEST)
    assert distrust is None
    assert statuses == {"test_lib.py::test_fixed": "failed", "test_lib.py::test_kept": "passed"}
    assert PytestLogAndJUnit.split((tmp_path / "report").read_bytes())[0].startswith(b"<?xml")


def test_result_lines_printed_at_exit_disagree_with_the_junit_report(tmp_path):
    distrust, statuses = _graded(tmp_path, PRINTS_PASSED)
    assert statuses["test_lib.py::test_fixed"] == "passed"  # what SWE-bench's parser reads
    assert distrust == ("the test log says test_lib.py::test_fixed passed, "
                        "pytest's JUnit report that it failed")


def test_a_log_of_passes_without_a_junit_report_is_not_trusted(tmp_path):
    distrust, _ = _graded(tmp_path, HONEST, junit=False)
    assert distrust == "pytest wrote no JUnit report beside a log of passed tests"


def test_the_report_is_split_by_its_header_not_by_what_tests_print():
    junit = b"<testsuites/>"
    log = b"bashenv-junit 99\nPASSED a.py::t\n"
    report = b"bashenv-junit %d\n" % len(junit) + junit + log
    assert PytestLogAndJUnit.split(report) == (junit, log)
    assert PytestLogAndJUnit.split(b"bashenv-junit -1\n" + log) == (None, log)
    assert PytestJUnit().parse(junit, ["a.py::t"]) == {"a.py::t": "missing"}
