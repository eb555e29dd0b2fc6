"""Test-report parsers, one per runner. Each maps task test ids to a status.

A parser says which options make its runner write a report file, and how to read it.
Statuses: passed, failed, error, skipped, missing (not in the report at all).
"""

from __future__ import annotations

import importlib
import re
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Protocol

_SUMMARY = re.compile(r"^[= ]*((?:\d+ [a-z]+(?:, )?)+) in [\d.]+s", re.MULTILINE)


class ReportParser(Protocol):
    def command(self, base: str, report_path: str) -> str: ...

    def parse(self, report: bytes, test_ids: list[str]) -> dict[str, str]: ...

    def verify(self, report: bytes, exit_code: int, log: str) -> str | None:
        """Why the report cannot be trusted (it disagrees with the exit code or the log)."""
        ...

    def report_ids(self, report: bytes) -> list[str]:
        """Every test the report lists, as a task would name it (for suggestions)."""
        ...


def _pytest_key(test_id: str) -> str:
    """`tests/test_a.py::TestX::test_b[1]` → `tests.test_a.TestX::test_b[1]` (JUnit's shape)."""
    parts = test_id.split("::")
    module = parts[0].removesuffix(".py").replace("/", ".")
    return ".".join([module, *parts[1:-1]]) + "::" + parts[-1] if len(parts) > 1 else module


class PytestJUnit:
    """pytest's JUnit XML (xunit1 family: classname = dotted module path + classes)."""

    runs_pytest = True  # the grader loads its collection plugin and hardens the run

    def command(self, base: str, report_path: str) -> str:
        return (f"{base} -p no:cacheprovider -o junit_family=xunit1 "
                f"--junitxml={report_path}")

    def parse(self, report: bytes, test_ids: list[str]) -> dict[str, str]:
        root = ET.fromstring(report)
        seen: dict[str, str] = {}
        for case in root.iter("testcase"):
            key = f"{case.get('classname', '')}::{case.get('name', '')}"
            status = "passed"
            for child in case:
                if child.tag in ("failure", "error"):
                    status = "failed" if child.tag == "failure" else "error"
                elif child.tag == "skipped":
                    status = "skipped"
            # A test that appears twice (e.g. a forged duplicate) counts as its worst result.
            if seen.get(key, "passed") == "passed":
                seen[key] = status
        return {tid: seen.get(_pytest_key(tid), "missing") for tid in test_ids}

    def report_ids(self, report: bytes) -> list[str]:
        ids = []
        for case in ET.fromstring(report).iter("testcase"):
            file, classname, name = case.get("file"), case.get("classname") or "", case.get("name")
            if not file or not name or not classname:
                continue  # collection errors name no test
            module = file.removesuffix(".py").replace("/", ".")
            classes = classname[len(module) + 1:].split(".") if classname != module else []
            ids.append("::".join([file, *[c for c in classes if c], name]))
        return ids

    def verify(self, report: bytes, exit_code: int, log: str) -> str | None:
        cases = list(ET.fromstring(report).iter("testcase"))
        keys = Counter(f"{c.get('classname')}::{c.get('name')}" for c in cases)
        if any(n > 1 for n in keys.values()):
            return "the report lists a test more than once"
        failed = sum(1 for c in cases if any(x.tag == "failure" for x in c))
        errors = sum(1 for c in cases if any(x.tag == "error" for x in c))
        passed = sum(1 for c in cases if len(c) == 0 or all(x.tag in ("system-out", "system-err",
                                                                         "properties") for x in c))
        # A module that cannot be collected stops pytest before any test runs: exit 2.
        collection_errors = sum(1 for c in cases if not c.get("classname")
                                and any(x.tag == "error" for x in c))
        expected_rc = (2 if collection_errors else 1 if failed or errors
                       else 0 if cases else 5)
        if exit_code != expected_rc:
            return f"pytest exited {exit_code} but its report implies {expected_rc}"
        summaries = _SUMMARY.findall(log)
        if not summaries:
            return "no pytest summary line in the test log"
        counts = {word.rstrip("s") if word.endswith("s") and word != "s" else word: int(n)
                  for n, word in (part.split(" ", 1) for part in summaries[-1].split(", "))}
        said_passed = counts.get("passed", 0) + counts.get("xpassed", 0)
        if said_passed != passed or counts.get("failed", 0) != failed:
            return (f"the log says {said_passed} passed/{counts.get('failed', 0)} failed, "
                    f"the report {passed}/{failed}")
        return None


# A command that starts pytest itself (env assignments first are fine): `pytest ...`,
# `python -m pytest ...`, `/opt/venv/bin/python3.11 -m pytest ...`.
_STARTS_PYTEST = re.compile(r"^\s*(?:[A-Za-z_]\w*=\S*\s+)*(?:\S*/)?(?:py\.test|pytest|"
                            r"python[\d.]*\s+-m\s+pytest)(?:\s|$)")
_JUNIT_HEADER = re.compile(rb"^bashenv-junit (-1|\d+)\n")


class PytestLogAndJUnit:
    """A pytest `-rA` log read by another parser (SWE-bench's, `runner: swebench:...`),
    from a run the grader hardens like its own: its plugin, the environment's plugins by
    name, canaries (`runs_pytest`). pytest also writes a JUnit report beside the log, read
    only to cross-check it: the statuses stay the log parser's (SWE-bench's meaning), but a
    test the log calls passed and the report failed (or the other way), or a log of passes
    with no report, is not trusted: lines printed by the code under test
    (`PASSED tests/test_x.py::test_y`) cannot pass a test."""

    runs_pytest = True

    def __init__(self, log: ReportParser) -> None:
        self.log = log

    def command(self, base: str, report_path: str) -> str:
        # The report: a header line with the JUnit report's size, the report, then the log.
        junit, log = f"{report_path}.junit", f"{report_path}.log"
        run = self.log.command(f"{base} -o junit_family=xunit1 --junitxml={junit}", log)
        return (f"{run}; rc=$?; if [ -f {junit} ]; then n=$(wc -c <{junit}); else n=-1; fi; "
                f"{{ echo bashenv-junit $n; cat {junit} 2>/dev/null; cat {log}; }} >{report_path}; "
                "exit $rc")

    @staticmethod
    def split(report: bytes) -> tuple[bytes | None, bytes]:
        """(JUnit report or None, log) from the report the command wrote."""
        header = _JUNIT_HEADER.match(report)
        if not header:
            return None, report
        size, rest = int(header.group(1)), report[header.end():]
        return (None, rest) if size < 0 else (rest[:size], rest[size:])

    def parse(self, report: bytes, test_ids: list[str]) -> dict[str, str]:
        return self.log.parse(self.split(report)[1], test_ids)

    def report_ids(self, report: bytes) -> list[str]:
        return self.log.report_ids(self.split(report)[1])

    def verify(self, report: bytes, exit_code: int, log: str) -> str | None:
        junit, text = self.split(report)
        distrust = self.log.verify(text, exit_code, log)
        if distrust:
            return distrust
        ids = [i for i in self.log.report_ids(text) if "::" in i]
        logged = self.log.parse(text, ids)
        if junit is None:
            return ("pytest wrote no JUnit report beside a log of passed tests"
                    if "passed" in logged.values() else None)
        try:
            reported = PytestJUnit().parse(junit, ids)
            reported.update(self._junit_as_logged(junit, [t for t in ids
                                                          if reported[t] == "missing"]))
        except ET.ParseError as exc:
            return f"pytest's JUnit report is unreadable: {exc}"
        for tid in ids:
            if {logged[tid], reported[tid]} == {"passed", "failed"}:
                return (f"the test log says {tid} {logged[tid]}, "
                        f"pytest's JUnit report that it {reported[tid]}")
        return None

    def _junit_as_logged(self, junit: bytes, ids: list[str]) -> dict[str, str]:
        """JUnit statuses for log ids the log parser rewrote (SWE-bench's: a path option cut
        to its last part, MouseButton.LEFT read as 1, an id cut at a space): each JUnit
        test's id as the parser reads `PASSED <its id>`; a log id that more than one JUnit
        test turns into is left out (which one the log means is unknown)."""
        junit_parser = PytestJUnit()
        nodes = list(dict.fromkeys(junit_parser.report_ids(junit)))
        statuses = junit_parser.parse(junit, nodes)
        found: dict[str, list[str]] = {}
        for node in nodes:
            for logged in self.log.report_ids(f"PASSED {node}\n".encode()):
                found.setdefault(logged, []).append(statuses[node])
        return {tid: found[tid][0] for tid in ids if len(found.get(tid, ())) == 1}


def hardened(parser: ReportParser, command: str) -> ReportParser:
    """The parser a task's run is read with: a parser of pytest `-rA` logs (it says so with
    `reads_pytest_log`) whose command starts pytest itself becomes PytestLogAndJUnit, so the
    run gets the grader's plugin and canaries; any other parser is used as it is."""
    if getattr(parser, "runs_pytest", False) or not getattr(parser, "reads_pytest_log", False):
        return parser
    return PytestLogAndJUnit(parser) if _STARTS_PYTEST.match(command) else parser


def parser_for(name: str) -> ReportParser:
    """A parser by its `runner:` name: pytest / pytest-junit (JUnit XML), swebench:OWNER/NAME
    (SWE-bench's log parser for that repository) or swebench:<parser function name> (e.g.
    swebench:parse_log_pytest_v2; both in bashenv.swebench.log_parsers: SWE-bench's own
    parsers when its package is around, else built-ins of the same semantics), or
    module:function (a function of no arguments returning a ReportParser). An unknown name
    is a KeyError naming it."""
    if name in ("pytest", "pytest-junit"):
        return PytestJUnit()
    # Imported by name, not at the top: bashenv.swebench sits above grading in the layers.
    module, _, function = ("bashenv.swebench.log_parsers:for_runner" if name.startswith("swebench:")
                           else name).partition(":")
    try:
        factory = getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as exc:
        raise KeyError(f"no test-report parser {name!r}: {exc}") from None
    return factory(name.removeprefix("swebench:")) if name.startswith("swebench:") else factory()


class _Registry(dict[str, ReportParser]):
    """PARSERS[name] for any name parser_for knows, made on first use."""

    def __missing__(self, name: str) -> ReportParser:
        self[name] = parser = parser_for(name)
        return parser


PARSERS: dict[str, ReportParser] = _Registry({"pytest": PytestJUnit()})
