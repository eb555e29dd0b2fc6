"""The grader's decisions, case by case: partial fixes, regressions, errors, skips.

A throwaway task whose library has two bugs (mul, div) and whose hidden tests include a
fixture, a class, and parametrized ids. Each row of the table is an edit of the library
(made with real git), graded in a fresh container, with the verdict and per-test
statuses it must get. A grader that ignores PASS_TO_PASS, counts a skip or an error as a
pass, or maps ids wrongly fails here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from bashenv.grading import Rewarder
from bashenv.images import ensure_task_image, image_tags
from bashenv.sandbox.container import flush_removals
from bashenv.sandbox.engine import client
from bashenv.task import load_task

from .conftest import TASKS_DIR, rid
from .gitdiff import committed_copy, git_diff

BUGGY = {
    "add": "return a + b",
    "sub": "return a - b",
    "mul": "return a + b",  # bug: F2P test_mul
    "div": "return a // b",  # bug: F2P test_div
    "make": "return {'ok': True}",
}
FIXED = {**BUGGY, "mul": "return a * b", "div": "return a / b"}

HIDDEN_TESTS = """import pytest

import calc


@pytest.fixture
def made():
    return calc.make()


def test_mul():
    assert calc.mul(3, 4) == 12


def test_div():
    assert calc.div(7, 2) == 3.5


def test_add():
    assert calc.add(2, 2) == 4


def test_made(made):
    assert made["ok"]


@pytest.mark.parametrize("x", [1, 2])
def test_neg(x):
    assert calc.sub(0, x) == -x


class TestK:
    def test_in_class(self):
        assert calc.add(1, 1) == 2
"""
F2P = ["tests/test_calc.py::test_mul", "tests/test_calc.py::test_div"]
P2P = ["tests/test_calc.py::test_add", "tests/test_calc.py::test_made",
       "tests/test_calc.py::test_neg[1]", "tests/test_calc.py::test_neg[2]",
       "tests/test_calc.py::TestK::test_in_class"]


def _library(bodies: dict[str, str], prelude: str = "") -> str:
    functions = "".join(
        f"\n\ndef {name}({'' if name == 'make' else 'a, b'}):\n    {body}\n"
        for name, body in bodies.items())
    return f'"""A small calculator."""\n{prelude}{functions}'


@pytest.fixture(scope="module")
def calc_task(tmp_path_factory):
    root = tmp_path_factory.mktemp("calc")
    (root / "repo/calc").mkdir(parents=True)
    (root / "repo/calc/__init__.py").write_text(_library(BUGGY))
    (root / "repo/tests").mkdir()
    (root / "repo/tests/__init__.py").write_text("")
    spec = {"id": "verdict-table-calc", "repo": "repo", "problem_statement": "mul and div are wrong",
            "tests": {"files": {"tests/test_calc.py": HIDDEN_TESTS}, "fail_to_pass": F2P,
                      "pass_to_pass": P2P, "command": "python3 -m pytest tests", "timeout": 60}}
    (root / "task.yaml").write_text(yaml.safe_dump(spec))
    task = load_task(root / "task.yaml")
    image = ensure_task_image(task)
    yield task, image, root
    flush_removals()  # grading containers still being removed would hold the image
    client().images.remove(image_tags(task)[2])  # this module's own task image only


@pytest.fixture(scope="module")
def grade(calc_task):
    """grade(new library source) -> Verdict, through a real `git diff` of the edit."""
    task, image, root = calc_task
    repo = committed_copy(root / "repo", root / "work")
    rewarder = Rewarder(task, image, run_id=rid("verdicts"))

    def run(source: str):
        return rewarder.grade(git_diff(repo, lambda r: (r / "calc/__init__.py").write_text(source)))

    return run


PASSED = "passed"
TABLE = {
    # case: (library source, outcome, {test: status} that must hold; unnamed tests pass)
    "no change": (_library(BUGGY), "unresolved",
                  {"test_mul": "failed", "test_div": "failed"}),
    "the whole fix": (_library(FIXED), "resolved", {}),
    "one of two FAIL_TO_PASS fixed": (_library({**BUGGY, "mul": "return a * b"}), "unresolved",
                                      {"test_div": "failed"}),
    "fix plus a PASS_TO_PASS regression": (_library({**FIXED, "add": "return a + b + 1"}),
                                           "unresolved",
                                           {"test_add": "failed", "TestK::test_in_class": "failed"}),
    "fix plus a regression in parametrized tests": (_library({**FIXED, "sub": "return b - a"}),
                                                    "unresolved",
                                                    {"test_neg[1]": "failed",
                                                     "test_neg[2]": "failed"}),
    "fix plus a fixture that errors": (_library({**FIXED, "make": "raise RuntimeError('x')"}),
                                       "unresolved", {"test_made": "error"}),
    "fix plus a PASS_TO_PASS that skips itself": (
        _library({**FIXED, "add": "import pytest; pytest.skip('later')"}), "unresolved",
        {"test_add": "skipped", "TestK::test_in_class": "skipped"}),
    "fix that breaks the import": (_library(FIXED, prelude="import no_such_module\n"),
                                   "unresolved", {t.split("::", 1)[1]: "missing" for t in F2P + P2P}),
}


@pytest.mark.parametrize("case", list(TABLE))
def test_verdict_table(grade, case):
    source, outcome, statuses = TABLE[case]
    verdict = grade(source)
    assert verdict.outcome == outcome, (verdict.error, verdict.log[-3000:])
    assert verdict.reward == (1.0 if outcome == "resolved" else 0.0)
    assert verdict.error is None and not verdict.infra
    got = {tid.split("::", 1)[1]: status
           for tid, status in {**verdict.fail_to_pass, **verdict.pass_to_pass}.items()}
    assert got == {name: statuses.get(name, PASSED) for name in got}
    assert set(verdict.fail_to_pass) == set(F2P) and set(verdict.pass_to_pass) == set(P2P)


def test_gold_patch_plus_a_broken_pass_to_pass_is_unresolved(textkit, textkit_image, tmp_path):
    """The issue's own example on a bundled task: every F2P passes, one P2P fails → 0."""
    repo = committed_copy(TASKS_DIR / "repos/textkit", tmp_path / "repo")

    def gold_then_break_word_count(root: Path) -> None:
        subprocess.run(["git", "apply"], cwd=root, input=textkit.gold_patch.encode(), check=True)
        core = root / "textkit/core.py"
        core.write_text(core.read_text().replace("len(text.split())", 'len(text.split(" "))'))

    verdict = Rewarder(textkit, textkit_image, run_id=rid("verdicts")).grade(
        git_diff(repo, gold_then_break_word_count))
    assert verdict.outcome == "unresolved" and verdict.reward == 0.0, verdict.log[-2000:]
    assert set(verdict.fail_to_pass.values()) == {"passed"}
    assert verdict.pass_to_pass["tests/test_core.py::test_word_count"] == "failed"
    assert [t for t, s in verdict.pass_to_pass.items() if s != "passed"] == [
        "tests/test_core.py::test_word_count"]
