"""Test-log parsers as SWE-bench's harness reads logs, one small function per runner style,
and the adapter that makes them grading parsers (`runner: swebench:OWNER/NAME`).

Each `parse_*` maps a test id (as SWE-bench names it) to PASSED / FAILED / SKIPPED /
ERROR / XFAIL. The grader's statuses follow SWE-bench's meaning: XFAIL counts as passed
(SWE-bench's `test_passed`), and the last line about a test wins.
"""

from __future__ import annotations

import re
from collections.abc import Callable

STATUSES = ("PASSED", "FAILED", "SKIPPED", "ERROR", "XFAIL")
TO_GRADER = {"PASSED": "passed", "XFAIL": "passed", "FAILED": "failed", "ERROR": "error",
             "SKIPPED": "skipped"}
LogParser = Callable[[str], dict[str, str]]


def _put(statuses: dict[str, str], test: str, status: str) -> None:
    # The last line about a test wins, as in SWE-bench's parsers: pytest's own suite prints
    # inner sessions' result lines before the outer summary, and SWE-bench's FAIL_TO_PASS /
    # PASS_TO_PASS lists were made by reading logs this way.
    statuses[test] = status


def parse_pytest(log: str) -> dict[str, str]:
    """`pytest -rA`: the short summary's `STATUS nodeid[ - message]` lines."""
    statuses: dict[str, str] = {}
    for line in log.splitlines():
        word = line.split(" ", 1)[0]
        if word in STATUSES:
            parts = line.replace(" - ", " ").split()
            if len(parts) > 1:
                _put(statuses, parts[1], word)
    return statuses


_DJANGO_RESULT = re.compile(r"^(.*?) \.\.\. +(ok|OK|skipped.*|FAIL|ERROR|expected failure|"
                            r"unexpected success)$")


def parse_django(log: str) -> dict[str, str]:
    """`tests/runtests.py --verbosity 2`: `test_x (module.Class) ... ok` lines, plus the
    `FAIL: test` / `ERROR: test` headers of the tracebacks."""
    statuses: dict[str, str] = {}
    previous = None
    for raw in log.splitlines():
        line = raw.strip()
        result = _DJANGO_RESULT.match(line)
        if result:
            test, word = result.groups()
            status = {"ok": "PASSED", "OK": "PASSED", "FAIL": "FAILED", "ERROR": "ERROR",
                      "expected failure": "XFAIL", "unexpected success": "FAILED"}.get(
                          word, "SKIPPED")
            _put(statuses, test, status)
            previous = None
            continue
        if " ... " in line:  # the result comes on a later line, after the test's output
            previous = line.split(" ... ")[0]
        elif previous and line == "ok":
            _put(statuses, previous, "PASSED")
            previous = None
        header = re.match(r"^(FAIL|ERROR): (\S+ \([\w.]+\))", line)
        if header:
            _put(statuses, header.group(2), "FAILED" if header.group(1) == "FAIL" else "ERROR")
    return statuses


_SYMPY_HEADER = re.compile(r"^_+ (\S+\.py):(\S+) _+$")


def parse_sympy(log: str) -> dict[str, str]:
    """`bin/test -C --verbose`: `test_name ok|F|E|f|s|w` lines, and the
    `____ path.py:test_name ____` headers of failures."""
    statuses: dict[str, str] = {}
    # Headers first, then the result lines (which win), in SWE-bench's order: a test that
    # raised has both a header and an `E` line, and is an error.
    for raw in log.splitlines():
        header = _SYMPY_HEADER.match(raw.strip())
        if header:
            _put(statuses, header.group(2), "FAILED")
    for raw in log.splitlines():
        line = raw.strip()
        if not line.startswith("test_"):
            continue
        # The last test of a file carries the file's verdict too: `test_x ok   [OK]`.
        parts = [p for p in line.split() if p not in ("[OK]", "[FAIL]")]
        if len(parts) < 2:
            continue
        word = parts[-1]
        status = {"ok": "PASSED", "F": "FAILED", "E": "ERROR", "f": "XFAIL", "s": "SKIPPED",
                  "w": "SKIPPED", "X": "FAILED", "T": "FAILED", "K": "FAILED"}.get(word)
        if status:
            _put(statuses, parts[0], status)
    return statuses


# Runner styles by the repositories SWE-bench knows to use them; any other repository is
# read as pytest -rA (most Python projects), or by the style its test command names.
BY_REPO = {"django/django": parse_django, "sympy/sympy": parse_sympy}
# The runner's own summary line; the last one in the log is the outer run's (pytest's own
# suite prints inner sessions' summaries first). Group 1: the counts, checked for failures.
_SUMMARIES: dict[LogParser, re.Pattern[str]] = {
    parse_pytest: re.compile(r"^=+ (.*\b(?:passed|failed|errors?|skipped|no tests ran)\b.*) in "
                             r"[\d.]+ ?s(?:econds)?\b.*=+$", re.MULTILINE),
    parse_django: re.compile(r"^(OK|FAILED)\b.*$", re.MULTILINE),
    parse_sympy: re.compile(r"tests finished: (.*)$", re.MULTILINE),
}
_FAILURE_WORDS = re.compile(r"\b(failed|FAILED|errors?|exceptions?)\b")


class SwebenchLogParser:
    """A grading parser (bashenv.grading.parsers.ReportParser) on a runner's console log:
    the task's own test command, exactly as SWE-bench runs it (its environment variables
    come from the task's environment), tees its output into the report file, which is then
    read as SWE-bench does."""

    # The grader adds nothing to a Django or sympy runner's command (it would reject the
    # grader's pytest plugin), so canaries do not apply there; Verdict.grader_plugin says so.
    # A pytest -rA log (`reads_pytest_log`) from a command that starts pytest is run hardened,
    # plugin and canaries included (bashenv.grading.parsers.hardened); this parser reads it.
    runs_pytest = False

    @property
    def reads_pytest_log(self) -> bool:
        return self.log_parser is parse_pytest

    def __init__(self, repo: str, parse: LogParser | None = None) -> None:
        self.repo = repo
        self.log_parser = parse or BY_REPO.get(repo, parse_pytest)

    def command(self, base: str, report_path: str) -> str:
        return f"set -o pipefail; {base} 2>&1 | tee {report_path}"

    def statuses(self, report: bytes) -> dict[str, str]:
        return self.log_parser(report.decode("utf-8", errors="replace"))

    def parse(self, report: bytes, test_ids: list[str]) -> dict[str, str]:
        found = self.statuses(report)
        return {tid: TO_GRADER[found[tid]] if tid in found else "missing" for tid in test_ids}

    def report_ids(self, report: bytes) -> list[str]:
        return sorted(self.statuses(report))

    def verify(self, report: bytes, exit_code: int, log: str) -> str | None:
        """Distrust a run that exited 0 without the runner's summary, or whose summary
        (the last one: the outer run's) reports failures."""
        if exit_code != 0:
            return None  # failures are expected; the per-test statuses say which
        summaries = _SUMMARIES[self.log_parser].findall(report.decode("utf-8", errors="replace"))
        if not summaries:
            return "the test command exited 0 without the runner's summary line"
        if _FAILURE_WORDS.search(summaries[-1]):
            return f"the test command exited 0 but its summary says: {summaries[-1].strip()}"
        return None


def for_repo(repo: str) -> SwebenchLogParser:
    """The parser `runner: swebench:<repo>` names."""
    return SwebenchLogParser(repo)
