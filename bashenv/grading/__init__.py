"""A change in, a verdict out: apply, scan, restore hidden tests, run, parse."""

from bashenv.grading.diff import changed_paths
from bashenv.grading.parsers import PARSERS, PytestJUnit, ReportParser
from bashenv.grading.rewarder import Rewarder, owned_test_paths
from bashenv.grading.tree import AgentTree, TreeTooLarge, read_tree
from bashenv.grading.verdict import OUTCOMES, Verdict

__all__ = [
    "OUTCOMES", "PARSERS", "AgentTree", "PytestJUnit", "ReportParser", "Rewarder", "TreeTooLarge",
    "Verdict", "changed_paths", "owned_test_paths", "read_tree",
]
