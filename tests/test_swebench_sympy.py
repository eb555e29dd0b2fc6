"""sympy's runner graded end to end: `tasks import` → `tasks validate` → `eval` of an instance
built from sympy's PyPI source distribution, its tests run as SWE-bench runs them (SWE-bench
4.1's own sympy 1.12 spec: `PYTHONWARNINGS=... bin/test -C --verbose FILE`, Python 3.9) and
its log read by SWE-bench's sympy parser, on a log sympy's own test runner wrote.

The instance is real code with a small real bug: in `sympy.utilities.misc.ordinal` the
`abs()` is dropped, so negative numbers get the wrong suffix (-1 → '-1th'); the gold patch
restores it, the test patch adds a test for more negative numbers.

sympy's sdist ships its test runner (`sympy/testing/runtests.py`, reached as `sympy.test`)
and its tests, but not the `bin/test` script of its repository, which is what SWE-bench
calls. The repository snapshot built here therefore carries a small `bin/test` of our own
(STAND_IN below, not sympy's file): it takes the flags SWE-bench passes (`-C`/`--no-cache`,
`-v`/`--verbose`, paths) and hands them to sympy's own runner, as sympy's script does.
The sdist (7 MB) and the repository built from it are cached under $BASHENV_CACHE/fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import rid
from tests.sdist_repo import import_sdist_instance, sdist_repository, validate_behaves
from tests.test_swebench_e2e import _bashenv, _spec_source

SYMPY = "1.12"
IID = "sympy__sympy-90001"
F2P = ["test_ordinal", "test_ordinal_negative"]
P2P = ["test_translate", "test_replace", "test_rawlines", "test_as_int"]
BUG = ("k = abs(n) % 100", "k = n % 100")
NEW_TEST = '''

def test_ordinal_negative():
    assert ordinal(-11) == '-11th'
    assert ordinal(-21) == '-21st'
    assert ordinal(-102) == '-102nd'
'''
STAND_IN = '''#!/usr/bin/env python3
"""bashenv's stand-in for sympy's bin/test (the sdist lacks it): the flags SWE-bench passes,
then sympy's own test runner."""
import argparse
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument("-C", "--no-cache", action="store_true", help="SYMPY_USE_CACHE=no")
parser.add_argument("-v", "--verbose", action="store_true")
parser.add_argument("paths", nargs="*")
args = parser.parse_args()
if args.no_cache:
    os.environ["SYMPY_USE_CACHE"] = "no"  # read when sympy is imported, so set first
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import sympy  # noqa: E402

sys.exit(0 if sympy.test(*args.paths, verbose=args.verbose) else 1)
'''


def _stand_in(work: Path) -> None:
    assert not (work / "bin/test").exists()  # else use sympy's own
    (work / "bin/test").write_text(STAND_IN)
    (work / "bin/test").chmod(0o755)


def sympy_fixture() -> dict[str, str]:
    """The repositories directory (holding sympy__sympy.git), base commit, gold patch and
    test patch; built from the cached sdist on first use."""
    # The new test goes before test_rawlines, not at the end: SWE-bench's sympy parser never
    # records a file's last test (its line ends with the file's `[OK]` / `[FAIL]`).
    return sdist_repository("sympy", SYMPY, "ordinal-mid", "sympy__sympy.git",
                            "sympy/utilities/misc.py", BUG, "sympy/utilities/tests/test_misc.py",
                            lambda text: text.replace("\ndef test_rawlines():",
                                                      NEW_TEST + "\n\ndef test_rawlines():", 1),
                            prepare=_stand_in)


@pytest.fixture(scope="module")
def sympy_tasks(tmp_path_factory):
    fixture = sympy_fixture()
    tmp = tmp_path_factory.mktemp("sympy")
    env = _spec_source()  # SWE-bench's own spec table, untouched
    import_sdist_instance(
        tmp, fixture, "sympy/sympy", IID, SYMPY,
        "ordinal(-1) gives '-1th'; negative numbers get the suffix of 100 - |n|.",
        F2P, P2P, "2023-05-10T00:00:00Z", _bashenv, env)
    return tmp, env, fixture


def test_sympy_task_is_imported_as_swebench_runs_it(sympy_tasks):
    import yaml

    tmp, _, _ = sympy_tasks
    task = yaml.safe_load((tmp / "tasks" / IID / "task.yaml").read_text())
    assert task["tests"]["runner"] == "swebench:sympy/sympy"
    # SWE-bench's test command (cache off, warnings filtered) on the test patch's file.
    assert task["tests"]["command"] == (
        "PYTHONWARNINGS='ignore::UserWarning,ignore::SyntaxWarning' bin/test -C --verbose "
        "sympy/utilities/tests/test_misc.py")
    assert task["environment"]["python_packages"][1:] == ["flake8", "mpmath==1.3.0",
                                                       "flake8-comprehensions"]
    assert task["metadata"]["python"] == "3.9" == task["metadata"]["python_spec"]


def test_sympy_gold_resolves_no_change_and_a_wrong_fix_do_not(sympy_tasks):
    tmp, env, fixture = sympy_tasks
    validate_behaves(tmp, IID, rid("swe-sympy"), _bashenv, env)

    # abs(n) % 10 fixes -21 but breaks 11-13 (and -11): test_ordinal and the new test fail.
    wrong = fixture["gold"].replace("+    k = abs(n) % 100", "+    k = abs(n) % 10")
    assert wrong != fixture["gold"]
    reports = {}
    for model, patch in (("gold", fixture["gold"]), ("wrong", wrong)):
        (tmp / "preds.jsonl").write_text(json.dumps(
            {"instance_id": IID, "model_name_or_path": model, "model_patch": patch}) + "\n")
        run = tmp / model
        done = _bashenv("eval", str(tmp / "preds.jsonl"), "--tasks", str(tmp / "tasks"), "-o",
                        str(run), "--run-id", rid("swe-sympy"), env=env)
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        verdict = json.loads((run / IID / "verdict.json").read_text())
        log = (run / IID / "test_output.txt").read_text()
        assert verdict["apply_method"] == "git apply" and verdict["grader_plugin"] is False
        assert "tests finished:" in log and "cache:              no" in log  # sympy's runner, -C
        reports[model] = (json.loads((run / "report.json").read_text()), verdict, log)
    gold_report, gold_verdict, gold_log = reports["gold"]
    assert gold_report["resolved_ids"] == [IID]
    assert set(gold_verdict["fail_to_pass"].values()) == {"passed"}
    assert set(gold_verdict["pass_to_pass"].values()) == {"passed"}
    assert "test_ordinal_negative ok" in gold_log
    wrong_report, wrong_verdict, wrong_log = reports["wrong"]
    assert wrong_report["unresolved_ids"] == [IID]
    assert wrong_verdict["fail_to_pass"] == {name: "failed" for name in F2P}
    assert set(wrong_verdict["pass_to_pass"].values()) == {"passed"}
    assert "test_misc.py:test_ordinal_negative" in wrong_log  # the failure's own header
