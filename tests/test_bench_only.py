"""`bashenv bench --only`: a named selection of figure groups; a wrong name is a clear
error before anything starts (the figures themselves are measured by `bashenv bench`)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bashenv.bench import GROUPS, run_bench
from bashenv.errors import BashenvError

from .conftest import TASKS_DIR

USES_ENGINE = False


def test_an_unknown_group_is_named_with_the_choices(textkit):
    with pytest.raises(BashenvError, match="unknown figure group.*nope") as raised:
        run_bench([textkit], only={"grading", "nope"})
    assert all(group in str(raised.value) for group in GROUPS)


def test_the_cli_says_which_group_is_unknown():
    done = subprocess.run([sys.executable, "-c", "from bashenv.cli import main; main()",
                           "bench", str(TASKS_DIR), "--only", "grading,nope"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "unknown figure group(s) nope" in done.stderr + done.stdout
