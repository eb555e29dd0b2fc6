"""Diff in, verdict out: apply, restore hidden tests, run, parse."""

from bashenv.grading.diff import agent_diff, changed_paths
from bashenv.grading.parsers import PARSERS, PytestJUnit, ReportParser
from bashenv.grading.rewarder import OUTCOMES, Rewarder, Verdict, owned_test_paths

__all__ = [
    "OUTCOMES", "PARSERS", "PytestJUnit", "ReportParser", "Rewarder", "Verdict", "agent_diff",
    "changed_paths", "owned_test_paths",
]
