"""Loaded into the test process with `-p _bashenv_grader` (from the grader's own directory,
first on PYTHONPATH; the implicit-load scan removes any module of that name in the repo).

- Collection is limited to the files the task's test ids name, as SWE-bench runs them: a
  scratch test left in the repository, broken or not, is never imported.
- `python -m pytest` runs with PYTHONSAFEPATH=1 (Python 3.11+), so nothing in the
  repository can stand in for pytest or what it imports at start-up; the repository goes
  back to the front of sys.path here, where `-m` would have put it, for the code under test.
- A marker file says that pytest got as far as loading its plugins: a run that then ends
  without a report failed on the code under test, not on the grading machinery.
"""

import contextlib
import json
import os
import sys

import pytest

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugin.json")) as _handle:
    _CONF = json.load(_handle)

if os.path.basename(sys.argv[0] if sys.argv else "") == "__main__.py" and os.getcwd() not in sys.path:
    sys.path.insert(0, os.getcwd())

with contextlib.suppress(OSError), open(_CONF["started"], "w"):
    pass

_allowed = None


def _decide(path, config):
    """True (ignore) for a file or directory that holds none of the task's test files."""
    global _allowed
    if _allowed is None:
        root = str(getattr(config, "rootpath", None) or config.rootdir)
        _allowed = {os.path.abspath(os.path.join(base, rel))
                    for base in (_CONF["workdir"], root) for rel in _CONF["files"]}
    path = os.path.abspath(path)
    if path in _allowed:
        return None
    # A directory above a test file, or its package's __init__.py, is walked as usual.
    where = os.path.dirname(path) if os.path.basename(path) == "__init__.py" else path
    if os.path.isdir(where) and any(f.startswith(where + os.sep) for f in _allowed):
        return None
    return True


if int(pytest.__version__.split(".")[0]) >= 7:
    def pytest_ignore_collect(collection_path, config):
        return _decide(str(collection_path), config)
else:
    def pytest_ignore_collect(path, config):
        return _decide(str(path), config)
