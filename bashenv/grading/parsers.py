"""Test-report parsers, one per runner. Each maps task test ids to a status.

A parser says which options make its runner write a report file, and how to read it.
Statuses: passed, failed, error, skipped, missing (not in the report at all).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Protocol


class ReportParser(Protocol):
    def command(self, base: str, report_path: str) -> str: ...

    def parse(self, report: bytes, test_ids: list[str]) -> dict[str, str]: ...


def _pytest_key(test_id: str) -> str:
    """`tests/test_a.py::TestX::test_b[1]` → `tests.test_a.TestX::test_b[1]` (JUnit's shape)."""
    parts = test_id.split("::")
    module = parts[0].removesuffix(".py").replace("/", ".")
    return ".".join([module, *parts[1:-1]]) + "::" + parts[-1] if len(parts) > 1 else module


class PytestJUnit:
    """pytest's JUnit XML (xunit1 family: classname = dotted module path + classes)."""

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


PARSERS: dict[str, ReportParser] = {"pytest": PytestJUnit()}
