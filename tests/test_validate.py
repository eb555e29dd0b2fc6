"""`bashenv tasks validate` checks each test as SWE-bench does (issue 9, item 14)."""

from __future__ import annotations

import shutil

import yaml

from bashenv.grading.validate import (
    is_test_path,
    run_problems,
    static_problems,
    summarize,
    validate_path,
    validate_task,
)
from bashenv.grading.verdict import Verdict
from bashenv.images import ensure_task_image

from .conftest import TASKS_DIR, rid

RUN = rid("validate")
CORE = "tests/test_core.py::"


def _variant(task, **tests):
    return task.model_copy(update={"tests": task.tests.model_copy(update=tests)})


def test_a_sound_task_has_no_problems(textkit):
    report = validate_task(textkit, RUN, ensure_task_image)
    assert report.ok, report.problems
    assert report.base.outcome == "unresolved" and report.gold.outcome == "resolved"


def test_each_unsound_test_is_reported_with_its_reason(textkit):
    task = _variant(
        textkit,
        fail_to_pass=[f"{CORE}test_truncate_never_longer_than_widht",  # misspelt
                      f"{CORE}test_slugify_basic",  # passes before the fix
                      f"{CORE}test_word_count"],  # also in PASS_TO_PASS
        pass_to_pass=[f"{CORE}test_truncate_custom_suffix",  # fails before the fix
                      f"{CORE}test_word_count"],
        files={"textkit/helpers.py": "X = 1\n"})  # not a test file
    problems = validate_task(task, RUN, ensure_task_image).problems
    expected = [
        f"{CORE}test_word_count is in both FAIL_TO_PASS and PASS_TO_PASS",
        "the hidden tests change textkit/helpers.py, which is not a test file",
        f"{CORE}test_truncate_never_longer_than_widht never ran (missing); nearest existing id: "
        f"{CORE}test_truncate_never_longer_than_width",
        f"FAIL_TO_PASS {CORE}test_slugify_basic is passed before the gold patch (must fail)",
        f"FAIL_TO_PASS {CORE}test_word_count is passed before the gold patch (must fail)",
        f"PASS_TO_PASS {CORE}test_truncate_custom_suffix is failed before the gold patch (must pass)",
    ]
    for reason in expected:
        assert any(p.startswith(reason) for p in problems), (reason, problems)
    assert len(problems) == len(expected), problems


def test_a_gold_patch_that_does_not_fix_is_reported(textkit):
    half = textkit.gold_patch.replace("width - len(suffix)", "width")
    task = textkit.model_copy(update={"gold_patch": half})
    problems = validate_task(task, RUN, ensure_task_image).problems
    assert problems and all("with the gold patch (must pass)" in p for p in problems), problems


def test_a_broken_task_file_is_reported_and_the_others_are_checked(tmp_path):
    good = tmp_path / "good"
    shutil.copytree(TASKS_DIR / "textkit-truncate-width", good)
    spec = yaml.safe_load((good / "task.yaml").read_text())
    spec["repo"] = str(TASKS_DIR / "repos/textkit")
    (good / "task.yaml").write_text(yaml.safe_dump(spec))
    (tmp_path / "a-broken").mkdir()
    (tmp_path / "a-broken/task.yaml").write_text("id: broken\nrepo: .\n")
    seen = []
    reports = validate_path(tmp_path, RUN, ensure_task_image, seen.append)
    assert [r.task_id for r in reports] == [r.task_id for r in seen] == ["a-broken",
                                                                         "textkit-truncate-width"]
    broken, sound = reports
    assert not broken.loaded and "problem_statement" in broken.problems[0]
    assert sound.ok, sound.problems


def test_test_paths_and_static_problems_need_no_container(textkit):
    assert is_test_path("tests/test_x.py") and is_test_path("pkg/tests/helpers.py")
    assert is_test_path("test_a.py") and is_test_path("a/b_test.py") and is_test_path("conftest.py")
    assert not is_test_path("pkg/core.py") and not is_test_path("testing_utils.py")
    assert static_problems(textkit) == []
    twice = _variant(textkit, pass_to_pass=[f"{CORE}test_word_count"] * 2)
    assert static_problems(twice) == [f"{CORE}test_word_count is listed twice in PASS_TO_PASS"]


def test_causes_are_named_and_summed_up(textkit):
    """Pure logic on hand-made verdicts: a crash that hides FAIL_TO_PASS before the fix is
    fine (SWE-bench counts a missing test as failed); a must-pass test failing among
    connection errors is put down to the network; the summary groups by first cause."""
    f2p, p2p = textkit.tests.fail_to_pass[0], textkit.tests.pass_to_pass[0]
    base = Verdict(textkit.id, "unresolved", fail_to_pass={f2p: "missing"},
                   pass_to_pass={p2p: "passed"})
    gold = Verdict(textkit.id, "resolved", fail_to_pass={f2p: "passed"}, pass_to_pass={p2p: "passed"})
    assert run_problems(textkit, base, gold, []) == []
    offline = Verdict(textkit.id, "unresolved", fail_to_pass={f2p: "passed"},
                      pass_to_pass={p2p: "failed"},
                      log="E   requests.exceptions.ConnectTimeout: HTTPConnectionPool(host='10.255.255.1')")
    problems = run_problems(textkit, base, offline, [])
    assert [p.cause for p in problems] == ["needs network"], problems
    assert "ConnectTimeout" in problems[0]
    never = Verdict(textkit.id, "unresolved", fail_to_pass={f2p: "missing"}, pass_to_pass={p2p: "passed"})
    early = Verdict(textkit.id, "unresolved", fail_to_pass={f2p: "passed"}, pass_to_pass={p2p: "passed"})
    assert [p.cause for p in run_problems(textkit, base, never, [f2p + "x"])] == ["test id never ran"]
    assert [p.cause for p in run_problems(textkit, early, gold, [])] == [
        "FAIL_TO_PASS passes before gold"]
    from bashenv.grading.validate import TaskReport

    reports = [TaskReport("a", "-"), TaskReport("b", "-", run_problems(textkit, base, offline, [])),
               TaskReport("c", "-", static_problems(_variant(textkit, pass_to_pass=[p2p, p2p])))]
    assert summarize(reports) == {"behaves": ["a"], "needs network": ["b"],
                                  "test lists overlap": ["c"]}
    assert reports[1].to_dict()["causes"] == ["needs network"]


def test_parallel_validation_reports_in_file_order(tmp_path):
    for name in ("textkit-truncate-width", "textkit-truncate-width-2"):
        shutil.copytree(TASKS_DIR / "textkit-truncate-width", tmp_path / name)
        spec = yaml.safe_load((tmp_path / name / "task.yaml").read_text())
        spec["repo"] = str(TASKS_DIR / "repos/textkit")
        spec["id"] = name
        (tmp_path / name / "task.yaml").write_text(yaml.safe_dump(spec))
    (tmp_path / "a-broken").mkdir()
    (tmp_path / "a-broken/task.yaml").write_text("id: broken\nrepo: .\n")
    seen = []
    reports = validate_path(tmp_path, RUN, ensure_task_image, seen.append, workers=2)
    assert [r.task_id for r in reports] == ["a-broken", "textkit-truncate-width",
                                            "textkit-truncate-width-2"]
    assert sorted(r.task_id for r in seen) == sorted(r.task_id for r in reports)
    assert reports[0].causes == ["task file does not load"]
    assert reports[1].ok and reports[2].ok, (reports[1].problems, reports[2].problems)
