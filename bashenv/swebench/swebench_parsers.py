"""SWE-bench's own Python log parsers, loaded from its package without importing it.

Found the way bashenv.swebench.specs finds SWE-bench's specs: the wheel or sdist that
$BASHENV_SWEBENCH_SPECS names (its `swebench/harness/log_parsers/python.py`, or the single
`log_parsers.py` of older releases, extracted once into bashenv's cache), else the
installed `swebench` package's file by path. A bare `constants/python.py` carries no
parsers (unless it lies in a swebench tree that has them): bashenv's built-ins are used.

The file imports only SWE-bench's `TestStatus` enum and `TestSpec` type (an annotation) from
the package, whose own __init__ pulls in docker, datasets and modal: it is run with small
stand-ins for those two names instead.
"""

from __future__ import annotations

import builtins
import enum
import functools
import hashlib
import importlib.util
import inspect
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bashenv.errors import TaskError
from bashenv.swebench.specs import EXTRACTED, extracted

PARSER_FILES = EXTRACTED["harness/log_parsers/python.py"]
MAP_NAMES = ("MAP_REPO_TO_PARSER_PY", "MAP_REPO_TO_PARSER")
Parse = Callable[[str], dict[str, str]]
# sha256 of the log-parser files whose functions bashenv's built-ins give identical maps to.
PROVEN = {"42f564edfee3c21751739bbf09d60cf3a3ecdc58ac5cf45717dc6b47a85d7459": "4.1.0"}
# A parse of SWE-bench's in a child process gets this long (s): the log is the tested code's
# output, and some of SWE-bench's regexes backtrack super-linearly on crafted lines.
PARSE_TIMEOUT_S = 120.0


class TestStatus(enum.Enum):
    """Stand-in for swebench.harness.constants.TestStatus (the values are what matters)."""

    FAILED = "FAILED"
    PASSED = "PASSED"
    SKIPPED = "SKIPPED"
    ERROR = "ERROR"
    XFAIL = "XFAIL"


_STAND_IN = SimpleNamespace(TestStatus=TestStatus, TestSpec=object)


@dataclass(frozen=True)
class LoadedParsers:
    """SWE-bench's parsers as (function name, parse(log)): by repository and by name."""

    by_repo: dict[str, tuple[str, Parse]]
    by_name: dict[str, tuple[str, Parse]]
    where: str  # as the user named it
    path: str  # the file run
    # The file is one bashenv's built-ins are tested to agree with (tests/data/swebench_logs,
    # randomized logs): its functions are then run as those built-ins, which are linear.
    proven: bool = False


def swebench_parsers() -> LoadedParsers | None:
    """SWE-bench's parsers from where its specs come from, or None (use the built-ins)."""
    given = os.environ.get("BASHENV_SWEBENCH_SPECS")
    path = _from_given(Path(given)) if given else _installed()
    if path is None:
        return None
    stat = path.stat()
    return _load(str(path), stat.st_mtime_ns, stat.st_size, given or str(path))


def source_digest() -> str:
    """What the loaded parsers' code is (for cache keys of verdicts): its file's hash, or
    "builtin" when bashenv's own parsers are used."""
    loaded = swebench_parsers()
    if loaded is None:
        return "builtin"
    return hashlib.sha256(Path(loaded.path).read_bytes()).hexdigest()


def _installed() -> Path | None:
    found = importlib.util.find_spec("swebench")
    if found is None or not found.submodule_search_locations:
        return None
    root = Path(next(iter(found.submodule_search_locations))).parent
    return next((root / f for f in PARSER_FILES if (root / f).is_file()), None)


def _from_given(path: Path) -> Path | None:
    """The parser file of the wheel/sdist/constants file $BASHENV_SWEBENCH_SPECS names."""
    if not path.is_file():
        raise TaskError(f"$BASHENV_SWEBENCH_SPECS: {path} is not a file")
    if path.suffix == ".py":  # a constants file: parsers only if its swebench tree has them
        harness = next((p for p in path.parents if p.name == "harness"), None)
        root = harness.parent.parent if harness is not None else None
        return next((root / f for f in PARSER_FILES if (root / f).is_file()), None) if root else None
    found = extracted(path) / "harness" / "log_parsers" / "python.py"
    return found if found.is_file() else None


@functools.cache
def _load(path: str, mtime_ns: int, size: int, where: str) -> LoadedParsers:
    """Run the parser file with the stand-ins; read its repository map. Cached per file
    version (mtime and size are part of the key)."""
    real_import = builtins.__import__

    def importer(name: str, globals: Any = None, locals: Any = None,
                 fromlist: Any = (), level: int = 0) -> Any:
        if name.split(".")[0] != "swebench":
            return real_import(name, globals, locals, fromlist, level)
        missing = [n for n in fromlist or () if not hasattr(_STAND_IN, n)]
        if not fromlist or missing:
            raise ImportError(f"{name} {', '.join(missing)} (bashenv stands in only for "
                              "TestStatus and TestSpec)")
        return _STAND_IN

    namespace: dict[str, Any] = {"__name__": "swebench_log_parsers", "__file__": path,
                                 "__builtins__": {**vars(builtins), "__import__": importer}}
    try:
        exec(compile(Path(path).read_text(), path, "exec"), namespace)
    except Exception as exc:
        raise TaskError(f"SWE-bench's log parsers ({where}) do not load: {exc}") from None
    table = next((namespace[n] for n in MAP_NAMES if isinstance(namespace.get(n), dict)), None)
    if table is None:
        raise TaskError(f"SWE-bench's log parsers ({where}): no {' or '.join(MAP_NAMES)}")
    by_name = {name: (fn.__name__, _one_argument(fn)) for name, fn in namespace.items()
               if name.startswith("parse_log_") and inspect.isfunction(fn)}
    by_repo = {repo: (fn.__name__, _one_argument(fn)) for repo, fn in table.items()}
    proven = hashlib.sha256(Path(path).read_bytes()).hexdigest() in PROVEN
    return LoadedParsers(by_repo, by_name, where, path, proven)


def _one_argument(fn: Callable[..., dict[str, str]]) -> Parse:
    """parse(log): 3.x/4.x parsers also take the instance's TestSpec (unused by the Python
    ones), older ones only the log."""
    if len(inspect.signature(fn).parameters) < 2:
        return fn
    return functools.wraps(fn)(lambda log: fn(log, None))


def bounded(loaded: LoadedParsers, name: str, fallback: Parse | None) -> Parse:
    """parse(log) by SWE-bench's function `name`, run in a child process with a time limit,
    so a log crafted to make its regexes backtrack cannot stall grading. Past the limit (or
    if the child fails) the log is read by `fallback`, bashenv's linear built-in of the same
    family, else it yields no statuses (every test missing: unresolved, never a pass)."""
    def parse(log: str) -> dict[str, str]:
        try:
            done = subprocess.run(
                [sys.executable, "-m", "bashenv.swebench.swebench_parsers", loaded.path, name],
                input=log.encode("utf-8", "surrogateescape"), capture_output=True,
                timeout=PARSE_TIMEOUT_S, check=True)
            statuses = json.loads(done.stdout)
        except (subprocess.SubprocessError, ValueError):
            return fallback(log) if fallback is not None else {}
        return {str(k): str(v) for k, v in statuses.items()} if isinstance(statuses, dict) else {}

    parse.__name__ = parse.__qualname__ = name
    return parse


def _child(path: str, name: str) -> None:
    """The child of `bounded`: the log on stdin, the statuses as JSON on stdout."""
    stat = Path(path).stat()
    _, parse = _load(path, stat.st_mtime_ns, stat.st_size, path).by_name[name]
    log = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    sys.stdout.write(json.dumps(parse(log)))


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
