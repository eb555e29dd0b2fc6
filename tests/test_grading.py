"""The rewarder against real containers: honest fixes pass, tricks do not."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bashenv.grading import Rewarder, changed_paths
from bashenv.sandbox.pool import WarmPool

from .conftest import TASKS_DIR, rid
from .gitdiff import committed_copy, git_diff

RUN = rid("grading")


@pytest.fixture(scope="module")
def rewarder(textkit, textkit_image):
    return Rewarder(textkit, textkit_image)


def test_gold_patch_resolves(rewarder, textkit):
    verdict = rewarder.grade(textkit.gold_patch)
    assert verdict.outcome == "resolved" and verdict.reward == 1.0
    assert set(verdict.fail_to_pass.values()) == {"passed"}
    assert set(verdict.pass_to_pass.values()) == {"passed"}


def test_no_change_is_unresolved(rewarder):
    verdict = rewarder.grade("")
    assert verdict.outcome == "unresolved" and verdict.reward == 0.0
    assert set(verdict.fail_to_pass.values()) == {"failed"}
    assert "failed" in verdict.log


FAKE_TESTS = """diff --git a/tests/test_core.py b/tests/test_core.py
--- a/tests/test_core.py
+++ b/tests/test_core.py
@@ -26,3 +26,15 @@ def test_truncate_negative_width():
 
 def test_word_count():
     assert word_count("  one two\\tthree\\n") == 3
+
+
+def test_truncate_never_longer_than_width():
+    pass
+
+
+def test_truncate_width_smaller_than_suffix():
+    pass
+
+
+def test_truncate_custom_suffix():
+    pass
"""

_TEST_FILE = (TASKS_DIR / "repos/textkit/tests/test_core.py").read_text().splitlines()
DELETE_TESTS = (
    "diff --git a/tests/test_core.py b/tests/test_core.py\ndeleted file mode 100644\n"
    f"--- a/tests/test_core.py\n+++ /dev/null\n@@ -1,{len(_TEST_FILE)} +0,0 @@\n"
    + "".join(f"-{line}\n" for line in _TEST_FILE)
)


def test_agent_writing_fake_passing_tests_gets_zero(rewarder):
    verdict = rewarder.grade(FAKE_TESTS)
    assert verdict.reward == 0.0 and verdict.outcome == "unresolved"
    assert verdict.touched_test_files == ["tests/test_core.py"]


def test_agent_deleting_tests_gets_zero(rewarder):
    verdict = rewarder.grade(DELETE_TESTS)
    assert verdict.outcome == "unresolved" and verdict.reward == 0.0
    assert verdict.touched_test_files == ["tests/test_core.py"]


def test_gold_fix_plus_deleted_tests_is_still_judged_on_the_real_tests(rewarder, textkit):
    verdict = rewarder.grade(textkit.gold_patch + DELETE_TESTS)
    assert verdict.outcome == "resolved"
    assert set(verdict.pass_to_pass.values()) == {"passed"}


def test_patch_that_does_not_apply(rewarder):
    bad = "diff --git a/nope.py b/nope.py\n--- a/nope.py\n+++ b/nope.py\n@@ -1 +1 @@\n-x\n+y\n"
    verdict = rewarder.grade(bad)
    assert verdict.outcome == "patch_failed" and verdict.reward == 0.0
    assert "nope.py" in verdict.log


def test_a_patch_failing_loudly_is_still_patch_failed(rewarder):
    """The script's error output (here git's, about 300 missing files) written just before
    its results must not land inside them: one pipe carries both (channel.BOOTSTRAP)."""
    bad = "".join(f"diff --git a/nope{i}.py b/nope{i}.py\n--- a/nope{i}.py\n+++ b/nope{i}.py\n"
                  "@@ -1 +1 @@\n-x\n+y\n" for i in range(300))
    for _ in range(3):
        verdict = rewarder.grade(bad)
        assert verdict.outcome == "patch_failed" and not verdict.infra, verdict.error
        assert "nope299.py" in verdict.log


def test_a_warm_grading_container_comes_with_its_process_started(textkit, textkit_image):
    pool, empty = WarmPool(size=1), WarmPool(size=0)
    grader = Rewarder(textkit, textkit_image, RUN, pool=pool)
    try:
        grader.prefill()
        deadline = time.monotonic() + 60
        while pool.ready(grader.spec) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        box, stream = pool.acquire_opened(grader.spec, lambda _: pytest.fail("opened again"))
        stream.close()
        box.remove()
        # Graded on warm containers (each refilled with its process) and on a cold one.
        verdicts = [grader.grade(textkit.gold_patch), grader.grade("")]
        cold = Rewarder(textkit, textkit_image, RUN, pool=empty).grade(textkit.gold_patch)
    finally:
        pool.close()
        empty.close()
    assert [v.outcome for v in verdicts] == ["resolved", "unresolved"]
    assert cold.outcome == "resolved", cold.error


def test_test_run_over_its_timeout(textkit, textkit_image):
    slow = textkit.model_copy(update={"tests": textkit.tests.model_copy(
        update={"command": "sleep 60; python3 -m pytest tests", "timeout": 2})})
    verdict = Rewarder(slow, textkit_image).grade(textkit.gold_patch)
    assert verdict.outcome == "timeout" and verdict.reward == 0.0


def test_command_that_writes_no_report_is_an_error(textkit, textkit_image):
    broken = textkit.model_copy(update={"tests": textkit.tests.model_copy(
        update={"command": "echo PASSED; true #"})})
    verdict = Rewarder(broken, textkit_image).grade(textkit.gold_patch)
    assert verdict.outcome == "error" and "no report" in verdict.error


def _git_diff(tmp_path, write) -> str:
    """A real `git diff --binary` of what `write(repo)` does to a copy of textkit."""
    return git_diff(committed_copy(TASKS_DIR / "repos/textkit", tmp_path / "repo"), write)


def test_binary_files_and_crlf_in_the_diff_apply(rewarder, textkit, tmp_path):
    def write(repo):
        (repo / "textkit/logo.bin").write_bytes(bytes(range(256)) * 64)
        (repo / "textkit/notes.txt").write_bytes(b"windows line\r\nanother\r\n")

    verdict = rewarder.grade(_git_diff(tmp_path, write) + textkit.gold_patch)
    assert verdict.outcome == "resolved", verdict.log


def test_a_very_large_diff_applies(rewarder, textkit, tmp_path):
    def write(repo):
        (repo / "textkit/table.py").write_text(
            "".join(f"ROW_{i} = {i!r}  # {'x' * 60}\n" for i in range(300_000)))

    diff = _git_diff(tmp_path, write)
    assert len(diff) > 20_000_000  # far past any command-line limit
    verdict = rewarder.grade(diff + textkit.gold_patch)
    assert verdict.outcome == "resolved", verdict.log[-2000:]


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.one_of(
    st.text(max_size=400),
    st.builds(lambda path, body: f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
                                 f"@@ -1,2 +1,2 @@\n{body}",
              st.sampled_from(["textkit/core.py", "tests/test_core.py", "../etc/passwd",
                               "/abs/path", "new dir/f.py"]),
              st.text(max_size=200)),
))
def test_fuzzed_diffs_never_pass_or_crash(rewarder, diff):
    verdict = rewarder.grade(diff)
    assert verdict.outcome in ("patch_failed", "unresolved", "error")
    assert verdict.reward == 0.0


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_changed_paths_accepts_any_text(text):
    assert isinstance(changed_paths(text), set)
