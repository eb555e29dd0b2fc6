"""Test-log parsers as SWE-bench's harness reads logs, and the adapter that makes them
grading parsers (`runner: swebench:OWNER/NAME` or `runner: swebench:<parser name>`).

Decision: SWE-bench's own log parsers are used whenever its package is around (installed,
or the wheel/sdist $BASHENV_SWEBENCH_SPECS names; bashenv.swebench.swebench_parsers loads
them without importing the package). Without it, the built-ins below stand in: one small
function per parser family with the same semantics (SWE-bench 4.1.0), tested to give the
same maps on real logs (tests/test_swebench_parsers.py).

A parser maps a test id, as SWE-bench names it, to a status word: PASSED / FAILED /
SKIPPED / ERROR / XFAIL (or whatever word a line holds where SWE-bench reads one). The
last line about a test wins, as in SWE-bench: pytest's own suite prints inner sessions'
result lines before the outer summary, and the datasets' test lists were made that way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bashenv.swebench.swebench_parsers import LoadedParsers

STATUSES = ("FAILED", "PASSED", "SKIPPED", "ERROR", "XFAIL")  # SWE-bench's TestStatus values
# The grader's statuses, with SWE-bench's meaning: XFAIL counts as passed (its
# `test_passed`). A word SWE-bench reads as neither passed nor failed (SKIPPED, or any other
# word a loose line put there) is "skipped" here: not passed, and no evidence of tampering.
TO_GRADER = {"PASSED": "passed", "XFAIL": "passed", "FAILED": "failed", "ERROR": "error",
             "SKIPPED": "skipped"}
LogParser = Callable[[str], dict[str, str]]


def _result_line(line: str) -> list[str] | None:
    """The words of a pytest `-rA` summary line (`STATUS nodeid[ - message]`), or None.
    As SWE-bench reads them: a line *starting* with a status word (so `ERRORS` counts too),
    and on FAILED lines the ` - ` before the message dropped first."""
    if not line.startswith(STATUSES):
        return None
    if line.startswith("FAILED"):
        line = line.replace(" - ", " ")
    return line.split()


def parse_pytest(log: str) -> dict[str, str]:
    """`pytest -rA`: the short summary's `STATUS nodeid` lines."""
    statuses: dict[str, str] = {}
    for line in log.split("\n"):  # "\n" only, as SWE-bench splits: a "\r" stays in its line
        words = _result_line(line)
        if words and len(words) > 1:
            statuses[words[1]] = words[0]
    return statuses


def parse_pytest_options(log: str) -> dict[str, str]:
    """`pytest -rA`, a parametrized id whose option is an absolute path cut to the path's
    last part (`t[/abs/dir/f.dcm]` → `t[/f.dcm]`; not `//x` or a glob), so ids do not depend
    on where the repository lies. Anything after the option's last `]` is dropped."""
    statuses: dict[str, str] = {}
    for line in log.split("\n"):
        words = _result_line(line)
        if not words or len(words) < 2:
            continue
        test = words[1]
        # The option runs from the first `[` to the last `]` (SWE-bench's `(.*?)\[(.*)\]`,
        # found here without the regex, whose backtracking is quadratic in a long id).
        start, end = test.find("["), test.rfind("]")
        if 0 <= start < end:
            value = test[start + 1:end]
            if value.startswith("/") and not value.startswith("//") and "*" not in value:
                value = "/" + value.rsplit("/", 1)[-1]
            test = f"{test[:start]}[{value}]"
        statuses[test] = words[0]
    return statuses


_COLOUR = re.compile(r"\[\d+m")
_CONTROL = str.maketrans("", "", "".join(map(chr, range(1, 32))))  # tabs and "\r" too


def parse_pytest_v2(log: str) -> dict[str, str]:
    """`pytest -rA`, coloured or not, and older pytest's verbose `nodeid STATUS` lines:
    colour codes (`[32m`, one number only) and control characters are taken out first."""
    statuses: dict[str, str] = {}
    for raw in log.split("\n"):
        line = _COLOUR.sub("", raw).translate(_CONTROL)
        words = _result_line(line)
        if words is not None:
            if len(words) > 1:
                statuses[words[1]] = words[0]
        elif line.endswith(STATUSES):
            words = line.split()
            if len(words) > 1:
                statuses[words[0]] = words[1]  # the second word, as SWE-bench reads it
    return statuses


def parse_seaborn(log: str) -> dict[str, str]:
    """`pytest -rA` as seaborn's tests are read: FAILED and PASSED only (summary lines and
    verbose `nodeid PASSED` lines); errors, skips and xfails are not recorded."""
    statuses: dict[str, str] = {}
    for line in log.split("\n"):
        words = line.split()
        # A bare status word is skipped (SWE-bench 4.1.0 raises IndexError on it; later
        # releases skip it too).
        if line.startswith("FAILED"):
            if len(words) > 1:
                statuses[words[1]] = "FAILED"
        elif " PASSED " in line:
            if len(words) > 1 and words[1] == "PASSED":
                statuses[words[0]] = "PASSED"
        elif line.startswith("PASSED") and len(words) > 1:
            statuses[words[1]] = "PASSED"
    return statuses


def parse_matplotlib(log: str) -> dict[str, str]:
    """`pytest -rA`, with MouseButton.LEFT / .RIGHT in ids read as 1 / 3 (ids as Python
    3.11+ prints that IntEnum, whatever Python ran the tests)."""
    return parse_pytest(log.replace("MouseButton.LEFT", "1").replace("MouseButton.RIGHT", "3"))


_DJANGO_PASSED = (" ... ok", " ... OK", " ...  OK")
# A test's `ok` that came on a later line, after output Django printed in between: SWE-bench
# reads `^<test>\s...\s<what Django printed>` ending in a line `ok` with three patterns,
# found here by _late_oks without their backtracking (quadratic on a crafted log).
_TESTING_AGAINST = "Testing against Django installed in "
_SILENCED = " silenced).\nok"
_SERVER_ERROR = "Internal Server Error: /"
_SYSTEM_CHECK = "System check identified no issues (0 silenced)\nok"
_DJANGO_FAILURES = ((" ... FAIL", "FAIL:", "FAILED"), (" ... ERROR", "ERROR:", "ERROR"))
# django__django-7188's log runs a migration's output into the test's line.
_DJANGO_7188 = "Applying sites.0002_alter_domain_unique...test_no_migrations"


def parse_django(log: str) -> dict[str, str]:
    """`tests/runtests.py --verbosity 2`: `test (module.Class) ... ok|skipped|FAIL|ERROR`
    lines and the `FAIL: test` / `ERROR: test` headers (their first word only). `expected
    failure` and `unexpected success` are not recorded. An `ok` line later on belongs to
    the last test whose line had no result."""
    statuses: dict[str, str] = {}
    pending = None
    for raw in log.split("\n"):
        line = raw.strip()
        if "--version is equivalent to version" in line:
            statuses["--version is equivalent to version"] = "PASSED"
        if " ... " in line:
            pending = line.split(" ... ")[0]
        ending = next((e for e in _DJANGO_PASSED if line.endswith(e)), None)
        if ending:
            if line.startswith(_DJANGO_7188):
                line = line.split("...", 1)[-1].strip()  # the rest of the checks see this
            statuses[line.rsplit(ending, 1)[0]] = "PASSED"
        if " ... skipped" in line:
            statuses[line.split(" ... skipped")[0]] = "SKIPPED"
        words = line.split()
        for marker, header, status in _DJANGO_FAILURES:
            if line.endswith(marker):
                statuses[line.split(marker)[0]] = status
            # A header naming nothing is skipped (SWE-bench 4.1.0 raises IndexError on it).
            if line.startswith(header) and len(words) > 1:
                statuses[words[1]] = status
        if pending is not None and line.startswith("ok"):
            statuses[pending] = "PASSED"
    for test in _late_oks(log):
        statuses[test] = "PASSED"
    return statuses


def _late_oks(log: str) -> list[str]:
    """The tests SWE-bench's three late-`ok` patterns name, pattern by pattern, each read
    left to right without overlaps (as re.finditer does). In SWE-bench's terms, a line start,
    `(.*?)\\s\\.\\.\\.\\s`, then `Testing against Django installed in (?s:.*?) silenced\\)\\.\\nok$`,
    `Internal Server Error: \\/(.*)\\/\\nok$` or `System check identified no issues \\(0
    silenced\\)\\nok$`; `\\s` may be a newline, `.` is not one."""
    size = len(log)

    def ok_line(at: int) -> bool:  # `ok$`: "ok" at `at`, then the end or a newline
        return log.startswith("ok", at) and (at + 2 == size or log[at + 2] == "\n")

    silenced = _forward_finder(log, _SILENCED, lambda t: ok_line(t + len(_SILENCED) - 2))
    newline = _forward_finder(log, "\n", lambda t: True)

    def after_testing(at: int) -> int | None:  # lazy: the first ` silenced).\nok$` from at
        t = silenced(at)
        return t + len(_SILENCED) if t >= 0 else None

    def after_error(at: int) -> int | None:  # `(.*)/\nok$`: the line ends with "/", then ok
        end = newline(at)
        return end + 3 if end > at and log[end - 1] == "/" and ok_line(end + 1) else None

    def after_check(at: int) -> int | None:  # `$` right after the literal
        return at if at == size or log[at] == "\n" else None

    tests = []
    for literal, rest in ((_TESTING_AGAINST, after_testing), (_SERVER_ERROR, after_error),
                          (_SYSTEM_CHECK, after_check)):
        if literal not in log:
            continue
        start = 0  # line starts before this one are done with
        dots = log.find("...", 1)
        while dots >= 0:
            line = log.rfind("\n", 0, dots - 1) + 1  # the line `(.*?)\s` starts on
            if line < start:
                dots = log.find("...", dots + 1)
                continue
            line_end = log.find("\n", line)
            line_end = size if line_end < 0 else line_end
            end = None
            while dots >= 0 and dots <= line_end + 1 and end is None:
                if (log[dots - 1].isspace() and dots + 3 < size and log[dots + 3].isspace()
                        and log.startswith(literal, dots + 4)):
                    end = rest(dots + 4 + len(literal))
                    if end is not None:
                        tests.append(log[line:dots - 1])
                dots = log.find("...", dots + 1)
            if end is not None:  # the next match starts on a line after this one's end
                following = log.find("\n", end)
                start = size + 1 if following < 0 else following + 1
            else:
                start = line_end + 1
            dots = log.find("...", max(start + 1, dots)) if dots >= 0 else -1
    return tests


_SYMPY_ENDINGS = ((" E", "ERROR"), (" F", "FAILED"), (" ok", "PASSED"))


def parse_sympy(log: str) -> dict[str, str]:
    """`bin/test -C --verbose`: `path.py:test_name` from the failure headers (FAILED), then
    `test_name ok|F|E` lines (the line's first word).

    Decision: SWE-bench exactly, for agreement with its harness. So `f` (xfail), `s`, `X`,
    `T`, `K` lines are not recorded, and neither is the last test of a file, whose line
    ends with the file's verdict (`test_x ok    [OK]`): SWE-bench's sympy test lists were
    made by this parser, so such tests are not in them."""
    statuses: dict[str, str] = {}
    for raw in log.split("\n"):
        header = _sympy_header(raw)
        if header:
            statuses[header] = "FAILED"
    for raw in log.split("\n"):
        line = raw.strip()
        if not line.startswith("test_"):
            continue
        for ending, status in _SYMPY_ENDINGS:
            if line.endswith(ending):
                statuses[line.split()[0]] = status
    return statuses


def _forward_finder(log: str, needle: str, valid: Callable[[int], bool]
                    ) -> Callable[[int], int]:
    """first(at): where `needle` next occurs at or after `at` and is `valid` there, or -1.
    Asked with `at` never going back, as _late_oks does, it reads the log once in all."""
    last = -2

    def first(at: int) -> int:
        nonlocal last
        if last == -1 or last >= at:
            return last
        last = log.find(needle, at)
        while last >= 0 and not valid(last):
            last = log.find(needle, last + 1)
        return last
    return first


def _sympy_header(line: str) -> str | None:
    """What SWE-bench's `(_*) (.*)\\.py:(.*) (_*)` finds in one line (it never spans lines,
    nor matches twice in one): from the first space to the last `.py:` that still has a
    space after it, then to the last space. Without the regex, whose backtracking is
    quadratic in a long line of spaces (a test can print one)."""
    first, last = line.find(" "), line.rfind(" ")
    cut = line.rfind(".py:", first + 1, last) if first >= 0 else -1
    return f"{line[first + 1:cut]}.py:{line[cut + 4:last]}" if cut >= 0 else None


@dataclass(frozen=True)
class Family:
    """A style of log, and what bashenv knows of it beyond the parse."""

    parse: LogParser
    # The log is pytest's `-rA` output: a command that starts pytest is run hardened
    # (bashenv.grading.parsers.hardened: plugin, canaries, JUnit cross-check).
    reads_pytest_log: bool
    # The runner's own summary line; the last one in the log is the outer run's. Group 1:
    # the counts, checked for failures when the command exited 0.
    summary: re.Pattern[str]


_PYTEST_SUMMARY = re.compile(r"^=+ (.*\b(?:passed|failed|errors?|skipped|no tests ran)\b.*) "
                             r"in [\d.]+ ?s(?:econds)?\b.*=+$", re.MULTILINE)
FAMILIES = {  # keyed by SWE-bench's function names
    "parse_log_pytest": Family(parse_pytest, True, _PYTEST_SUMMARY),
    "parse_log_pytest_options": Family(parse_pytest_options, True, _PYTEST_SUMMARY),
    "parse_log_pytest_v2": Family(parse_pytest_v2, True, _PYTEST_SUMMARY),
    "parse_log_seaborn": Family(parse_seaborn, True, _PYTEST_SUMMARY),
    "parse_log_matplotlib": Family(parse_matplotlib, True, _PYTEST_SUMMARY),
    "parse_log_django": Family(parse_django, False, re.compile(r"^(OK|FAILED)\b.*$", re.MULTILINE)),
    "parse_log_sympy": Family(parse_sympy, False,
                              re.compile(r"tests finished: (.*)$", re.MULTILINE)),
}
# SWE-bench's per-repository names for the families (its 4.1.0 aliases).
ALIASES = {
    **dict.fromkeys(("astroid", "flask", "marshmallow", "pvlib", "pyvista", "sqlfluff",
                     "xarray"), "parse_log_pytest"),
    **dict.fromkeys(("pydicom", "requests", "pylint"), "parse_log_pytest_options"),
    **dict.fromkeys(("astropy", "scikit", "sphinx"), "parse_log_pytest_v2"),
}
BY_NAME = {**{n: n for n in FAMILIES}, **{f"parse_log_{a}": f for a, f in ALIASES.items()}}
# The 18 repositories SWE-bench 4.1.0 maps to a Python log parser, and which.
BY_REPO = {
    "astropy/astropy": "parse_log_pytest_v2", "django/django": "parse_log_django",
    "marshmallow-code/marshmallow": "parse_log_pytest",
    "matplotlib/matplotlib": "parse_log_matplotlib", "mwaskom/seaborn": "parse_log_seaborn",
    "pallets/flask": "parse_log_pytest", "psf/requests": "parse_log_pytest_options",
    "pvlib/pvlib-python": "parse_log_pytest", "pydata/xarray": "parse_log_pytest",
    "pydicom/pydicom": "parse_log_pytest_options", "pylint-dev/astroid": "parse_log_pytest",
    "pylint-dev/pylint": "parse_log_pytest_options", "pytest-dev/pytest": "parse_log_pytest",
    "pyvista/pyvista": "parse_log_pytest", "scikit-learn/scikit-learn": "parse_log_pytest_v2",
    "sqlfluff/sqlfluff": "parse_log_pytest", "sphinx-doc/sphinx": "parse_log_pytest_v2",
    "sympy/sympy": "parse_log_sympy",
}
# A repository SWE-bench does not map: its harness would stop with a KeyError; bashenv reads
# the log as pytest -rA (most Python projects), unless the task names a parser.
DEFAULT = "parse_log_pytest"
# The ANSI colour codes a coloured pytest summary line holds, taken out before matching it.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
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

    def __init__(self, runner: str, parse: LogParser, family: Family | None) -> None:
        self.runner = runner
        self.log_parser = parse
        # None: a parser of SWE-bench's that bashenv does not know (a newer release): its
        # log is read, but neither hardened nor checked against a summary line.
        self.family = family

    @property
    def reads_pytest_log(self) -> bool:
        return self.family is not None and self.family.reads_pytest_log

    def command(self, base: str, report_path: str) -> str:
        return f"set -o pipefail; {base} 2>&1 | tee {report_path}"

    def statuses(self, report: bytes) -> dict[str, str]:
        return self.log_parser(report.decode("utf-8", errors="replace"))

    def parse(self, report: bytes, test_ids: list[str]) -> dict[str, str]:
        found = self.statuses(report)
        return {tid: TO_GRADER.get(found[tid], "skipped") if tid in found else "missing"
                for tid in test_ids}

    def report_ids(self, report: bytes) -> list[str]:
        return sorted(self.statuses(report))

    def verify(self, report: bytes, exit_code: int, log: str) -> str | None:
        """Distrust a run that exited 0 without the runner's summary, or whose summary
        (the last one: the outer run's) reports failures."""
        if exit_code != 0 or self.family is None:
            return None  # failures are expected; the per-test statuses say which
        text = _ANSI.sub("", report.decode("utf-8", errors="replace"))
        summaries = self.family.summary.findall(text)
        if not summaries:
            return "the test command exited 0 without the runner's summary line"
        if _FAILURE_WORDS.search(summaries[-1]):
            return f"the test command exited 0 but its summary says: {summaries[-1].strip()}"
        return None


def for_runner(target: str) -> SwebenchLogParser:
    """The parser `runner: swebench:<target>` names: a repository (`OWNER/NAME`: the parser
    SWE-bench maps it to) or one of SWE-bench's parser functions by name (no `/`, e.g.
    `parse_log_pytest_v2`). SWE-bench's own function when its package is around, else
    bashenv's built-in of the same family. An unknown name is a KeyError naming it."""
    from bashenv.swebench.swebench_parsers import swebench_parsers

    loaded = swebench_parsers()
    runner = f"swebench:{target}"
    if "/" in target:
        if loaded is not None and target in loaded.by_repo:
            return _swebench_own(runner, loaded, loaded.by_repo[target][0])
        target = BY_REPO.get(target, DEFAULT)
    if loaded is not None and target in loaded.by_name:
        return _swebench_own(runner, loaded, loaded.by_name[target][0])
    if target not in BY_NAME:
        where = f" (nor in {loaded.where})" if loaded is not None else ""
        raise KeyError(f"no test-report parser {runner!r}: SWE-bench has no log parser "
                       f"{target!r}{where}; known: {', '.join(sorted(BY_NAME))}")
    family = FAMILIES[BY_NAME[target]]
    return SwebenchLogParser(runner, family.parse, family)


def _swebench_own(runner: str, loaded: LoadedParsers, name: str) -> SwebenchLogParser:
    """SWE-bench's function `name`: as bashenv's built-in when the loaded file is one the
    built-ins are proven equal to (they are linear), else run bounded in a child process."""
    from bashenv.swebench.swebench_parsers import bounded

    family = FAMILIES.get(BY_NAME.get(name, name))
    if family is not None and loaded.proven:
        return SwebenchLogParser(runner, family.parse, family)
    return SwebenchLogParser(runner, bounded(loaded, name, family.parse if family else None),
                             family)
