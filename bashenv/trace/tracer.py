"""A line-level tracer that runs inside the sandbox, under the box's own Python (3.7+).

Standard library only: bashenv copies this file into the box at run time. It runs a
script, `-m module` or one pytest node id and writes one JSON event per executed line,
call, return and exception of the repository's own code, with the frame's local
variables as bounded reprs. A variable appears in an event only when its repr changed
since the previous event of the same frame. Python >= 3.12 is traced with
`sys.monitoring`, older ones with `sys.settrace`; both give the same events.

The trace goes to a file descriptor the caller opened (e.g. onto a root-only file
before dropping privileges), never to a path the traced code could guess.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import linecache
import os
import re
import reprlib
import sys
import textwrap
import threading
import time
import types
from collections.abc import Callable
from typing import Any

HASH_SEED = "0"
ADDRESS = re.compile(r"0x[0-9a-fA-F]{4,}")
DELETED = "<deleted>"
PLAIN = (int, float, bool, type(None), str)  # reprs with no address and a bounded length
FORMAT_VERSION = 1
SOURCE_LINES = 200  # of one function kept in the summary


class Bounds:
    def __init__(self, events: int = 10000, repr_chars: int = 120, seconds: float = 10.0,
                 depth: int = 64) -> None:
        self.events, self.repr_chars, self.seconds, self.depth = events, repr_chars, seconds, depth


class Tracer:
    """Collects events for code whose file is under `root` and matches the filters."""

    def __init__(self, out: Any, root: str, bounds: Bounds, include: list[str],
                 exclude: list[str], text: bool = False) -> None:
        self.out, self.root, self.bounds = out, os.path.realpath(root), bounds
        self.text: list[dict[str, Any]] | None = [] if text else None  # rendered at the end
        self.include, self.exclude = include, exclude
        self.skip_dirs = tuple(os.path.realpath(p) + os.sep for p in _library_dirs())
        self.count = 0
        self.hit: dict[str, Any] = {}
        self.frames: dict[int, list[Any]] = {}  # id(frame) -> [frame number, last reprs, depth]
        self.next_frame = 0
        self.wanted: dict[str, str | None] = {}  # co_filename -> relative path or None
        self.lock = threading.Lock()
        self.done = False
        self.started = time.monotonic()
        self.repr = reprlib.Repr()
        self.repr.maxstring = self.repr.maxother = bounds.repr_chars
        self.repr.maxlist = self.repr.maxtuple = self.repr.maxdict = self.repr.maxset = 20
        self.truncated = 0
        self.lines: dict[tuple[str, int], str] = {}  # (file, line) -> its source, stripped
        self.sources: dict[str, str] = {}  # "file:first line" -> the function's source

    # -- which code is traced ---------------------------------------------------------
    def relpath(self, filename: str) -> str | None:
        if filename not in self.wanted:
            self.wanted[filename] = self._decide(filename)
        return self.wanted[filename]

    def _decide(self, filename: str) -> str | None:
        if filename.startswith("<"):
            return None
        path = os.path.realpath(filename)
        if path == os.path.realpath(__file__) or path.startswith(self.skip_dirs):
            return None
        if not path.startswith(self.root + os.sep):
            return None
        rel = os.path.relpath(path, self.root)
        if self.include and not any(fnmatch.fnmatch(rel, p) for p in self.include):
            return None
        if any(fnmatch.fnmatch(rel, p) for p in self.exclude):
            return None
        return rel

    # -- events -----------------------------------------------------------------------
    def event(self, kind: str, frame: types.FrameType, value: Any = None) -> None:
        """Record one event of a frame whose code is wanted."""
        if self.done:
            return
        key = id(frame)
        state = self.frames.get(key)
        if state is None:
            # A frame first seen mid-way (tracing started inside it) is the outermost.
            depth = len(self.frames) if kind == "call" else 0
            state = self.frames[key] = [self.next_frame, {}, depth]
            self.next_frame += 1
        number, last, depth = state
        if depth >= self.bounds.depth:
            self._note("depth", f"frames deeper than {self.bounds.depth} not traced")
            if kind == "return":
                del self.frames[key]
            return
        if self.count >= self.bounds.events:
            self._note("events", f"stopped after {self.bounds.events} events")
            self.stop()
            return
        if not self.count & 255 and time.monotonic() - self.started > self.bounds.seconds:
            self._note("seconds", f"stopped after {self.bounds.seconds:g} s")
            self.stop()
            return
        code = frame.f_code
        lineno = frame.f_lineno if kind != "call" else code.co_firstlineno
        if lineno is None:
            lineno = code.co_firstlineno
        record: dict[str, Any] = {
            "i": self.count, "event": kind, "frame": number, "depth": depth,
            "function": getattr(code, "co_qualname", code.co_name),
            "file": self.relpath(code.co_filename), "line": lineno,
            "source": self._line(code.co_filename, lineno),
            "locals": self._changed(frame, last),
        }
        if kind in ("return", "exception"):
            record["value"] = self.safe_repr(value)
        elif kind == "call":
            self._keep_source(code, record["file"])
        self.count += 1
        self.write(record)
        if kind == "return":
            del self.frames[key]

    def _keep_source(self, code: types.CodeType, rel: str) -> None:
        """Each traced function's source, once, for the summary (what a reader sees)."""
        key = f"{rel}:{code.co_firstlineno}"
        if key in self.sources or code.co_name == "<module>":
            return
        try:
            import inspect
            lines = inspect.getsourcelines(code)[0][:SOURCE_LINES]
            self.sources[key] = textwrap.dedent("".join(lines))
        except (OSError, TypeError, IndexError):
            self.sources[key] = ""

    def _changed(self, frame: types.FrameType, last: dict[str, str]) -> dict[str, str]:
        module_level = frame.f_code.co_name == "<module>"
        now = {}
        for name, value in list(dict(frame.f_locals).items()):
            if name.startswith("@") or (module_level and _boring_global(name, value)):
                continue  # pytest's assertion temporaries; a module's imports and defs
            now[name] = self.safe_repr(value)
        changed = {k: v for k, v in now.items() if last.get(k) != v}
        changed.update({k: DELETED for k in last if k not in now})
        last.clear()
        last.update(now)
        return changed

    def _line(self, filename: str, lineno: int) -> str:
        key = (filename, lineno)
        if key not in self.lines:
            self.lines[key] = linecache.getline(filename, lineno).strip()
        return self.lines[key]

    def safe_repr(self, value: Any) -> str:
        plain = type(value) in PLAIN
        try:
            if plain and (type(value) is not str or len(value) < self.bounds.repr_chars):
                text = repr(value)  # the common case, without reprlib's machinery
            else:
                text = self.repr.repr(value)
        except Exception as exc:  # a __repr__ that raises (or a 5000-digit int)
            text = f"<repr failed: {type(exc).__name__}>"
        if not plain:
            text = ADDRESS.sub("0x?", text)
        if len(text) > self.bounds.repr_chars:
            text = text[: self.bounds.repr_chars] + "..."
            self.truncated += 1
        elif not plain and "..." in text:  # reprlib shortened a long string or container
            self.truncated += 1
        return text

    def write(self, record: dict[str, Any]) -> None:
        with self.lock:
            if self.text is not None:
                self.text.append(record)
            else:
                self.out.write(json.dumps(record, ensure_ascii=False) + "\n")

    def _note(self, bound: str, message: str) -> None:
        if bound not in self.hit:
            self.hit[bound] = message

    # -- start / stop -----------------------------------------------------------------
    def start(self) -> None:
        self.started = time.monotonic()
        if sys.version_info >= (3, 12):
            _MonitoringBackend(self).start()
        else:
            _SettraceBackend(self).start()
        self._watchdog = threading.Timer(self.bounds.seconds + 1.0, self._timeout)
        self._watchdog.daemon = True
        self._watchdog.start()

    def stop(self) -> None:
        if not self.done:
            self.done = True
            if not self.backend_intact():
                self._note("tampered", "the traced code removed or replaced the tracer: "
                           "events after that are missing")
            self.stop_backend()

    def stop_backend(self) -> None:  # replaced by the backend
        pass

    def backend_intact(self) -> bool:  # replaced by the backend
        return True

    def _timeout(self) -> None:
        """The program ran past the wall-time bound (e.g. a loop in C): end it here."""
        self._note("seconds", f"stopped after {self.bounds.seconds:g} s")
        self.stop()
        self.finish({"outcome": "timeout"})
        os._exit(124)

    def finish(self, result: dict[str, Any]) -> None:
        if self.truncated:
            self._note("repr", f"{self.truncated} reprs shortened to about "
                       f"{self.bounds.repr_chars} chars")
        end = {"event": "end", "events": self.count, "bounds_hit": self.hit,
               "backend": "monitoring" if sys.version_info >= (3, 12) else "settrace",
               "python": "{}.{}".format(*sys.version_info[:2]), "format": FORMAT_VERSION, **result,
               "functions": self.sources}
        self.write(end)
        with self.lock:
            if self.text is not None:
                self.out.write(to_text(self.text) + "\n")
            self.out.flush()


def _boring_global(name: str, value: Any) -> bool:
    return (name.startswith("__") or isinstance(value, (types.ModuleType, types.FunctionType,
                                                        type, types.BuiltinFunctionType)))


def _library_dirs() -> list[str]:
    import sysconfig
    dirs = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs.update(p for p in sys.path if "site-packages" in p or "dist-packages" in p)
    return sorted(d for d in dirs if d)


class _SettraceBackend:
    def __init__(self, tracer: Tracer) -> None:
        self.t = tracer

    def start(self) -> None:
        self.t.stop_backend = self.stop  # type: ignore[method-assign]
        self.t.backend_intact = self.intact  # type: ignore[method-assign]
        sys.settrace(self.global_trace)
        threading.settrace(self.global_trace)

    def stop(self) -> None:
        sys.settrace(None)
        threading.settrace(None)

    def intact(self) -> bool:
        return sys.gettrace() == self.global_trace

    def global_trace(self, frame: types.FrameType, event: str, arg: Any) -> Callable | None:
        if self.t.done or self.t.relpath(frame.f_code.co_filename) is None:
            return None
        self.t.event("call", frame)
        return self.local_trace

    def local_trace(self, frame: types.FrameType, event: str, arg: Any) -> Callable | None:
        if self.t.done:
            return None
        if event == "line":
            self.t.event("line", frame)
        elif event == "return":
            self.t.event("return", frame, arg)
        elif event == "exception":
            self.t.event("exception", frame, arg[1])
        return self.local_trace


class _MonitoringBackend:
    """sys.monitoring (3.12+): events for unwanted code are disabled where they fire."""

    def __init__(self, tracer: Tracer) -> None:
        self.t = tracer
        self.m: Any = sys.monitoring  # type: ignore[attr-defined]
        self.tool = self.m.DEBUGGER_ID

    def start(self) -> None:
        m, ev = self.m, self.m.events
        m.use_tool_id(self.tool, "bashenv-trace")
        self.t.stop_backend = self.stop  # type: ignore[method-assign]
        self.t.backend_intact = self.intact  # type: ignore[method-assign]
        callbacks = {ev.PY_START: self.on_start, ev.PY_RESUME: self.on_start,
                     ev.LINE: self.on_line, ev.PY_RETURN: self.on_return,
                     ev.PY_YIELD: self.on_return, ev.PY_UNWIND: self.on_unwind,
                     ev.RAISE: self.on_raise, ev.RERAISE: self.on_raise}
        for event, callback in callbacks.items():
            m.register_callback(self.tool, event, callback)
        mask = 0
        for event in callbacks:
            mask |= event
        m.set_events(self.tool, mask)
        self.mask = mask

    def intact(self) -> bool:
        m = self.m
        return bool(m.get_tool(self.tool) == "bashenv-trace"
                    and m.get_events(self.tool) == self.mask)

    def stop(self) -> None:
        if self.m.get_tool(self.tool) == "bashenv-trace":
            self.m.set_events(self.tool, 0)
            self.m.free_tool_id(self.tool)

    def _frame(self, code: types.CodeType) -> types.FrameType | None:
        if self.t.done or self.t.relpath(code.co_filename) is None:
            return None
        frame = sys._getframe(2)
        while frame is not None and frame.f_code is not code:
            frame = frame.f_back  # type: ignore[assignment]
        return frame

    def on_start(self, code: types.CodeType, offset: int) -> Any:
        frame = self._frame(code)
        if frame is None:
            return self.m.DISABLE if not self.t.done else None
        self.t.event("call", frame)
        return None

    def on_line(self, code: types.CodeType, line: int) -> Any:
        frame = self._frame(code)
        if frame is None:
            return self.m.DISABLE if not self.t.done else None
        self.t.event("line", frame)
        return None

    def on_return(self, code: types.CodeType, offset: int, value: Any) -> Any:
        frame = self._frame(code)
        if frame is None:
            return self.m.DISABLE if not self.t.done else None
        self.t.event("return", frame, value)
        return None

    def on_unwind(self, code: types.CodeType, offset: int, exc: BaseException) -> None:
        frame = self._frame(code)
        if frame is not None:  # leaving a frame by an exception: settrace says "return None"
            self.t.event("return", frame, None)

    def on_raise(self, code: types.CodeType, offset: int, exc: BaseException) -> None:
        frame = self._frame(code)
        if frame is not None:
            self.t.event("exception", frame, exc)


# -- running the target ------------------------------------------------------------------
class _PytestOutcome:
    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.failed:
            self.outcomes[report.nodeid] = "failed" if report.when == "call" else "error"
        elif report.skipped:
            self.outcomes.setdefault(report.nodeid, "skipped")
        elif report.when == "call":
            self.outcomes.setdefault(report.nodeid, "passed")


def run_target(args: argparse.Namespace, tracer: Tracer) -> dict[str, Any]:
    import runpy
    if args.test:
        import pytest  # the box's pytest, imported before tracing starts
        plugin = _PytestOutcome()
        sys.path[0] = os.getcwd()
        tracer.start()
        try:
            code = pytest.main([args.test, "-q", "-p", "no:cacheprovider", *args.rest],
                               plugins=[plugin])
        finally:
            tracer.stop()
        outcome = plugin.outcomes.get(args.test) or next(iter(plugin.outcomes.values()), "not run")
        return {"outcome": outcome, "exit_code": int(code)}
    if args.module:
        sys.argv = [args.module, *args.rest]
        sys.path[0] = os.getcwd()
    else:
        sys.argv = [args.script, *args.rest]
        sys.path[0] = os.path.dirname(os.path.abspath(args.script))
    tracer.start()
    try:
        if args.module:
            runpy.run_module(args.module, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(args.script, run_name="__main__")
        code, outcome = 0, "passed"
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        outcome = "passed" if code == 0 else "failed"
    except BaseException as exc:
        tracer.stop()
        sys.stderr.write(f"{type(exc).__name__}: {exc}\n")
        code, outcome = 1, "failed"
    finally:
        tracer.stop()
    return {"outcome": outcome, "exit_code": code}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="trace", description="Trace a Python script, module or "
                                "pytest test: local variables line by line.")
    p.add_argument("--fd", type=int, help="write the JSONL trace to this open descriptor")
    p.add_argument("--format", choices=("jsonl", "text"), default="jsonl")
    p.add_argument("--root", default=".", help="trace files under this directory (default: cwd)")
    p.add_argument("--include", action="append", default=[], help="glob of files to trace")
    p.add_argument("--exclude", action="append", default=[], help="glob of files to skip")
    p.add_argument("--max-events", type=int, default=10000)
    p.add_argument("--max-repr", type=int, default=120)
    p.add_argument("--max-seconds", type=float, default=10.0)
    p.add_argument("--max-depth", type=int, default=64)
    p.add_argument("-m", dest="module", help="run a module as a script")
    p.add_argument("--test", help="a pytest node id")
    p.add_argument("script", nargs="?")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    if (args.module and args.test) or not (args.module or args.test or args.script):
        p.error("give exactly one of: a script, -m MODULE, --test NODEID")
    if (args.module or args.test) and args.script:  # the first of the target's arguments
        args.rest.insert(0, args.script)
        args.script = None
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if os.environ.get("PYTHONHASHSEED") != HASH_SEED:  # set-iteration order must not vary
        os.environ["PYTHONHASHSEED"] = HASH_SEED
        os.execv(sys.executable, [sys.executable, "-s", os.path.abspath(__file__), *argv])
    args = parse_args(argv)
    if args.fd is not None:
        out = os.fdopen(os.dup(args.fd), "w", encoding="utf-8")
        os.close(args.fd)  # only the duplicate, not inherited by children, stays open
    else:
        out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    bounds = Bounds(args.max_events, args.max_repr, args.max_seconds, args.max_depth)
    tracer = Tracer(out, args.root, bounds, args.include, args.exclude, text=args.format == "text")
    result = run_target(args, tracer)
    sys.stdout.flush()
    tracer.finish(result)
    return int(result["exit_code"]) if isinstance(result["exit_code"], int) else 1


# -- the text form -----------------------------------------------------------------------
def state_text(values: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in values.items()) + "}"


def to_text(events: list[dict[str, Any]]) -> str:
    """The form a language model reads: each line, then the frame's state after it ran.

    A line's state shows once the frame's next event comes, so the calls a line makes
    appear (indented) between the line and its state."""
    out: list[str] = []
    open_line: dict[int, bool] = {}
    for e in events:
        if e.get("event") == "end":
            hit = e.get("bounds_hit") or {}
            out.append(f"=== end: {e.get('outcome')}, {e.get('events')} events"
                       + "".join(f"; bound hit: {m}" for m in hit.values()))
            continue
        pad = "  " * e["depth"]
        frame, kind, changed = e["frame"], e["event"], e["locals"]
        if open_line.pop(frame, False) or (kind != "call" and changed):
            out.append(pad + state_text(changed))
        if kind == "call":
            out.append(f"{pad}--- call {e['function']} ({e['file']}:{e['line']})")
            out.append(pad + state_text(changed))
        elif kind == "line":
            out.append(f"{pad}---\n{pad}{e['source']}")
            open_line[frame] = True
        elif kind == "return":
            out.append(f"{pad}--- return {e['value']}")
        else:
            out.append(f"{pad}--- exception {e['value']} (line {e['line']})")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
