#!/usr/bin/env python3
"""Mutation testing of the grading, env, task and image rooms: does the suite notice bugs?

Each mutant is one plausible bug, written as an exact text replacement in one file, with
the tests that should catch it. For each mutant the checkout is copied (without .git and
.venv), the bug is put in, and those tests run against the copy (PYTHONPATH points at it).
A mutant is *killed* when the tests fail, *survives* when they pass. Survivors are gaps in
the suite: write the test that fails for them, or explain why the bug is harmless.

    .venv/bin/python scripts/mutate.py                 # every mutant, one at a time
    .venv/bin/python scripts/mutate.py -k verify -k tag  # mutants whose id contains a word
    .venv/bin/python scripts/mutate.py --list          # the mutants, no run

Needs the Docker engine (most targets are engine tests) and the suite's images (run the
suite once first). Exit code: 0 when at most --allow mutants survive.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


def m(id: str, file: str, old: str, new: str, *tests: str) -> Mutant:
    return Mutant(id, file, old, new, tests)


R, P, D, C = ("bashenv/grading/rewarder.py", "bashenv/grading/parsers.py",
              "bashenv/grading/diff.py", "bashenv/grading/config_guard.py")
V, B, G, TR = ("bashenv/grading/verdict.py", "bashenv/grading/box_scan.py",
               "bashenv/grading/grader_plugin.py", "bashenv/grading/tree.py")
E, S, T = "bashenv/env/bash_swe.py", "bashenv/images/specs.py", "bashenv/task/model.py"
VERDICTS, GRADING = "tests/test_verdicts.py", "tests/test_grading.py"
PURE, LOADER, ENV = "tests/test_pure_logic.py", "tests/test_task_loader.py", "tests/test_env.py"
ADVERSARIAL, INTEGRITY = "tests/test_adversarial.py", "tests/test_integrity.py"

MUTANTS = [
    # grading: the verdict
    m("resolved-from-f2p-only", R, "elif all(s == \"passed\" for s in statuses.values()):",
      "elif all(statuses[t] == \"passed\" for t in tests.fail_to_pass):", VERDICTS),
    m("reward-unless-error", V,
      "return 1.0 if self.resolved else 0.0", "return 0.0 if self.outcome == 'error' else 1.0",
      VERDICTS),
    m("distrust-ignored", R, "        elif distrust:\n", "        elif False:\n",
      f"{ADVERSARIAL}::test_forged_junit_report_is_an_error_not_a_pass"),
    m("timeout-not-recognised", R, "if rc == 137 and", "if False and",
      f"{GRADING}::test_test_run_over_its_timeout"),
    m("patch-failure-as-setup", R, "if ran.exit_code == ERR_PATCH:", "if ran.exit_code == ERR_SETUP:",
      f"{GRADING}::test_patch_that_does_not_apply"),
    m("owned-files-not-restored", R, '"owned": sorted(self._owned)', '"owned": []',
      GRADING, "-k", "fake or deleting"),
    m("config-guard-off", B, 'if hit is None and job["protect_config"] and', "if False and",
      ADVERSARIAL, "-k", "conftest"),
    m("conftest-not-guarded", C, 'ALWAYS = (b"conftest.py", ', "ALWAYS = (",
      ADVERSARIAL, "-k", "conftest"),
    m("pth-not-guarded", C, 'or name.endswith(b".pth")', "", ADVERSARIAL, "-k", "pth or sitecustom"),
    # grading: what changed, what loads implicitly, how the tests run (issue 9)
    m("implicit-load-scan-off", B, "hit = implicit_load(rel, job)", "hit = None",
      INTEGRITY, "-k", "implicitly or unchecked"),
    m("shadow-scan-off", B, "shadow = shadowing(work, seed, rel, protected)", "shadow = None",
      INTEGRITY, "-k", "implicitly and (pytest_py or inspect or unittest or pluggy)"),
    m("bytecode-kept", B, 'if b"__pycache__" in parts or name.endswith(COMPILED):', "if False:",
      INTEGRITY, "-k", "unchecked"),
    m("extensions-kept", B, 'if name.endswith(EXTENSIONS) and not job.get("allow_extensions"):',
      "if False:", INTEGRITY, "-k", "compiled_extension"),
    m("same-size-edit-unseen", B, "elif a[2] != b[2] or not filecmp.cmp(",
      "elif a[2] != b[2] or not True or filecmp.cmp(", INTEGRITY, "-k", "same_size"),
    m("symlinks-followed-on-restore", B, "if os.path.islink(current) or (", "if (",
      INTEGRITY, "-k", "symlink"),
    m("plugin-autoload-on", R, '"PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 ', '"',
      INTEGRITY, "-k", "hardened"),
    m("repo-first-on-sys-path", R, "PYTHONSAFEPATH=1 ", "", INTEGRITY, "-k", "hardened"),
    m("collection-not-limited", G, "    return True\n", "    return None\n",
      INTEGRITY, "-k", "leftover"),
    m("tree-keeps-agent-git", TR, 'if not parts or parts == [""] or ".git" in parts:',
      'if not parts or parts == [""]:', INTEGRITY, "-k", "broken_git"),
    m("grading-kill-off", R, "swept = box.kill_all_but_init()", "swept = True",
      INTEGRITY, "-k", "reforking and runc"),
    m("grading-kill-fallback-off", R, "*([] if swept else [KILL_TEST_USER_ALL])",
      "*[]", INTEGRITY, "-k", "reforking and runsc"),
    m("exec-output-uncapped", "bashenv/sandbox/container.py",
      "_read_capped(api.exec_start(exec_id, socket=True), EXEC_OUTPUT_CAP)",
      "_read_capped(api.exec_start(exec_id, socket=True), 1 << 40)", INTEGRITY, "-k", "gibibyte"),
    m("canary-check-off", R, "        if wrong:  # a test whose outcome",
      "        if False:  # a test whose outcome",
      f"{ADVERSARIAL}::test_in_process_forgery_of_every_report_is_caught_by_canaries[canaries]"),
    m("canary-flip-not-evidence", "bashenv/grading/canary.py", "            bad = got != expected",
      "            bad = False", "tests/test_canary_logic.py", "-k", "forgeries"),
    m("no-report-always-error", R, 'if result.get("started") and rc != 0:', "if False:",
      INTEGRITY, "-k", "breaks_pytest"),
    # grading: reading reports
    m("verify-exit-code-off", P, "if exit_code != expected_rc:", "if False:", PURE, "-k", "verify"),
    m("verify-duplicates-off", P, "if any(n > 1 for n in keys.values()):", "if False:",
      PURE, "-k", "verify"),
    m("verify-summary-off", P, "if said_passed != passed or counts.get(\"failed\", 0) != failed:",
      "if False:", PURE, "-k", "verify"),
    m("verify-no-summary-ok", P, "return \"no pytest summary line in the test log\"", "return None",
      PURE, "-k", "verify"),
    m("collection-error-rc", P, "(2 if collection_errors else", "(1 if collection_errors else",
      PURE, "-k", "verify"),
    m("skip-counts-as-pass", P, 'status = "skipped"', 'status = "passed"', VERDICTS),
    m("error-counts-as-failure", P, 'status = "failed" if child.tag == "failure" else "error"',
      'status = "failed"', VERDICTS),
    m("duplicate-last-wins", P, 'if seen.get(key, "passed") == "passed":', "if True:", PURE,
      "-k", "junit"),
    m("class-dropped-from-id", P, '".".join([module, *parts[1:-1]])', "module", VERDICTS),
    # grading: which paths a diff touches
    m("diff-ignores-minus-plus-lines", D, 'elif line.startswith(("--- ", "+++ ")):', "elif False:",
      PURE, "-k", "changed_paths"),
    m("diff-ignores-renames", D, '"rename from ", "rename to ", ', "", PURE, "-k", "changed_paths"),
    m("diff-no-unquote", D, "return [_strip_prefix(unquote_path(p)) for p in parts[:2]]",
      "return [_strip_prefix(p) for p in parts[:2]]", PURE, "-k", "changed_paths"),
    m("diff-hunks-not-skipped", D, "if old_left > 0 or new_left > 0:", "if False:",
      PURE, "-k", "changed_paths"),
    # env
    m("exit-code-stuck-at-0", E, "obs = self._obs(result.output, result.exit_code,",
      "obs = self._obs(result.output, 0,", ENV, "-k", "exit_code or async"),
    m("timed-out-dropped", E, "result.exit_code, result.timed_out, result.truncated",
      "result.exit_code, False, result.truncated", ENV, "-k", "hung or async"),
    m("command-timeout-not-applied", E,
      'return max(0.1, min(self._limit("command_timeout"), left))', "return max(0.1, left)",
      ENV, "-k", "hung"),
    m("episode-clock-not-capping", E,
      'return max(0.1, min(self._limit("command_timeout"), left))',
      'return self._limit("command_timeout")', ENV, "-k", "wall_clock"),
    m("max-steps-ignored", E, 'if self._steps >= self._limit("max_steps") or over_time:',
      "if over_time:", ENV, "-k", "max_steps"),
    m("grade-on-truncation-ignored", E, "if terminated or self.grade_on_truncation:", "if True:",
      ENV, "-k", "truncation"),
    m("infra-error-terminates", E, 'return self._obs(f"[bashenv: sandbox error: {exc}]", -1), '
      "0.0, False, True, info", 'return self._obs(f"[bashenv: sandbox error: {exc}]", -1), '
      "0.0, True, False, info", "tests/test_faults.py::test_container_killed_mid_episode_is_an_infra_error"),
    m("output-cap-ignored", E, "self._shell.output_chars = self.task.limits.output_chars", "pass",
      ENV, "-k", "output_cap"),
    m("task-option-ignored", E, 'if "task_id" in options:', "if False:", ENV, "-k", "option"),
    # sandbox spec from the task
    m("memory-limit-dropped", S, '"memory": limits.memory,', '"memory": "2g",', "tests/test_limits.py"),
    m("pids-limit-dropped", S, '"pids": limits.pids,', '"pids": 512,', "tests/test_limits.py"),
    m("cpus-limit-dropped", S, '"cpus": limits.cpus,', '"cpus": 1.0,', "tests/test_limits.py"),
    m("fsize-limit-dropped", S, '"file_size_mb": limits.file_size_mb,', '"file_size_mb": 1024,',
      "tests/test_limits.py"),
    m("disk-limit-dropped", S, '"disk_mb": limits.disk_mb,', '"disk_mb": 1024,', "tests/test_limits.py"),
    # task schema
    m("memory-pattern-removed", T, 'pattern=r"^\\d+[kmg]?$", ', "", LOADER),
    m("pids-bound-loosened", T, "pids: int = Field(512, gt=16,", "pids: int = Field(512, gt=0,", LOADER),
    m("test-file-paths-unchecked", T, 'if path.startswith("/") or ".." in Path(path).parts:',
      "if False:", LOADER),
    m("unknown-fields-ignored", T, 'model_config = ConfigDict(extra="forbid", frozen=True)',
      'model_config = ConfigDict(extra="ignore", frozen=True)', LOADER),
    m("empty-fail-to-pass-allowed", T, "min_length=1, description=\"Test ids that fail",
      "description=\"Test ids that fail", LOADER),
    m("task-id-unchecked", T, "if not TASK_ID.match(value):", "if False:", LOADER),
    m("duplicate-ids-allowed", "bashenv/task/loader.py", "if task.id in seen:", "if False:", LOADER),
    # images
    m("tag-ignores-repo-content", "bashenv/images/build.py", "_digest(dockerfile, source_sha)",
      "_digest(dockerfile)", "tests/test_image_tags.py"),
]


def _copy_tree(dest: Path) -> None:
    ignore = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".pytest_cache",
                                    ".hypothesis", "results", "*.egg-info", "build", "dist")
    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)


def run_mutant(mutant: Mutant, timeout: float) -> tuple[str, float, str]:
    """('killed' | 'survived' | 'invalid' | 'timeout', seconds, last lines of output)."""
    with tempfile.TemporaryDirectory(prefix="bashenv-mutant-") as tmp:
        tree = Path(tmp) / "tree"
        _copy_tree(tree)
        target = tree / mutant.file
        text = target.read_text()
        if text.count(mutant.old) != 1:
            return "invalid", 0.0, f"{mutant.file}: the text to mutate occurs {text.count(mutant.old)} times"
        target.write_text(text.replace(mutant.old, mutant.new))
        env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
        where = subprocess.run([sys.executable, "-c", "import bashenv; print(bashenv.__file__)"],
                               env=env, cwd=tree, capture_output=True, text=True).stdout
        if not where.startswith(str(tree)):  # the mutant must be what the tests import
            return "invalid", 0.0, f"bashenv imported from {where.strip()!r}, not the copy"
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               "-o", "addopts=", *mutant.tests]
        started = time.monotonic()
        try:
            done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timeout", time.monotonic() - started, ""
        seconds = time.monotonic() - started
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        if done.returncode == 0:
            return "survived", seconds, tail
        if done.returncode == 1:
            return "killed", seconds, tail
        return "invalid", seconds, tail  # no tests collected, usage error, internal error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", action="append", default=[], help="only mutants whose id contains this")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per mutant")
    parser.add_argument("--allow", type=int, default=2, help="survivors tolerated")
    args = parser.parse_args()
    chosen = [mu for mu in MUTANTS if not args.k or any(word in mu.id for word in args.k)]
    if args.list:
        for mu in chosen:
            print(f"{mu.id:32} {mu.file:34} {' '.join(mu.tests)}")
        return 0
    results: dict[str, int] = {}
    survivors = []
    for i, mu in enumerate(chosen, 1):
        verdict, seconds, tail = run_mutant(mu, args.timeout)
        results[verdict] = results.get(verdict, 0) + 1
        summary = tail.splitlines()[-1] if tail else ""
        print(f"[{i}/{len(chosen)}] {verdict:8} {seconds:6.1f}s  {mu.id:32} {summary}", flush=True)
        if verdict != "killed":
            survivors.append(mu.id)
            print("    " + tail.replace("\n", "\n    "), flush=True)
    print(f"\n{len(chosen)} mutants: " + ", ".join(f"{n} {v}" for v, n in sorted(results.items())))
    if survivors:
        print("not killed: " + ", ".join(survivors))
    return 0 if len(survivors) <= args.allow else 1


if __name__ == "__main__":
    sys.exit(main())
