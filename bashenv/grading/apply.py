"""Applying a diff (e.g. a prediction's model_patch) as SWE-bench's harness does: `git apply`, then
`git apply --reject`, then `patch --fuzz=5`; the method that worked is printed as
`bashenv-apply: <method>` on the grading script's own output (not the test log, which may
be cut), and the rewarder records it as `Verdict.apply_method`."""

from __future__ import annotations

import re
import shlex

from bashenv.sandbox.spec import copy_seed_command

METHODS = ("git apply", "git apply --reject", "patch --fuzz=5")
MARK = "bashenv-apply:"
_MARK_LINE = re.compile(rf"^{MARK} (.+)$", re.MULTILINE)


def apply_snippet(patch: str, git: str, seed: str, fail_code: int) -> str:
    """A shell snippet, run in the repository, that applies `patch` (when not empty) by the
    first method that works, each from the pristine tree (`seed`'s copy: a failed
    `--reject` leaves some hunks applied), and exits `fail_code` when none does."""
    p = shlex.quote(patch)
    restore = f"find . -mindepth 1 -delete && {copy_seed_command(seed, '.')}"
    attempts = [
        f"{git} apply --binary --whitespace=nowarn {p}",
        f"{restore} && {git} apply --binary --whitespace=nowarn --reject {p}",
        f"{restore} && patch --batch --fuzz=5 -p1 -i {p}",
    ]
    branches = [f"{'if' if i == 0 else 'elif'} {cmd} >/dev/null 2>&1; then "
                f"echo '{MARK} {method}'"
                for i, (cmd, method) in enumerate(zip(attempts, METHODS, strict=True))]
    # git apply refuses any path in `.git`, patch(1) does not: the grader's git (whose
    # config and info/attributes the hidden tests' `git apply` reads, as root: a smudge
    # filter there would run) is put back from the seed whatever the diff did to it.
    git_back = f"rm -rf .git && {copy_seed_command(seed, '.', git_only=True)} || exit {fail_code}"
    return (f"if [ -s {p} ]; then " + "; ".join(branches)
            + f"; else {git} apply --check {p}; echo '{MARK} failed'; exit {fail_code}; fi; "
            + f"{git_back}; fi")


def applied_with(log: str) -> str | None:
    """The method the snippet reported in a grading log (None: no patch, or not graded)."""
    found = _MARK_LINE.findall(log)
    return found[0].strip() if found else None
