"""`bashenv traces`: every task's FAIL_TO_PASS tests traced before and after the gold patch.

One JSONL line per (task, test, side) with the events and the text form. Each line is
keyed by a digest of everything that decides the trace (the tracer, the bounds, the
task's image, patches and test id), so a re-run skips what is already written and
retraces what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bashenv import jsonl
from bashenv.errors import BashenvError
from bashenv.images.build import ensure_task_image
from bashenv.sandbox import PROCESS_RUN_ID, Backend, get_backend
from bashenv.task.model import Task
from bashenv.trace.run import SIDES, TRACER_SOURCE, Bounds, Target, TaskTracer

DATASET_FILE = "traces.jsonl"


def trace_key(task: Task, image_tag: str, test_id: str, side: str, bounds: Bounds) -> str:
    parts = [hashlib.sha256(TRACER_SOURCE).hexdigest(), asdict(bounds), task.id, image_tag,
             task.tests.patch, sorted(task.tests.files.items()), task.gold_patch, test_id, side]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def done_keys(path: Path) -> set[str]:
    """Keys of complete lines already in the dataset (a torn last line is ignored)."""
    keys = set()
    if path.exists():
        for line in jsonl.lines(path, errors="replace"):
            try:
                keys.add(json.loads(line)["key"])
            except (ValueError, KeyError, TypeError):
                continue
    return keys


def _drop_torn_tail(path: Path) -> None:
    """A line cut by a kill is dropped, so the next append starts on a line of its own."""
    if not path.exists() or not path.stat().st_size:
        return
    with path.open("rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) != b"\n":  # torn: the whole file is read only then
            f.seek(0)
            f.truncate(f.read().rfind(b"\n") + 1)


def read_dataset(path: str | Path) -> Iterator[dict[str, Any]]:
    """The records of a dataset file (or of DIR/traces.jsonl)."""
    path = Path(path)
    if path.is_dir():
        path = path / DATASET_FILE
    if not path.exists():
        raise BashenvError(f"no trace dataset at {path}")
    for line in jsonl.lines(path, errors="strict"):
        try:
            yield json.loads(line)
        except ValueError:
            continue


def jobs(tasks: list[Task]) -> list[tuple[Task, str, str]]:
    return [(task, test_id, side) for task in tasks if task.gold_patch
            for test_id in task.tests.fail_to_pass for side in SIDES]


def build_traces(tasks: list[Task], out_dir: str | Path, *, workers: int = 2,
                 bounds: Bounds = Bounds(), run_id: str | None = None,
                 backend: str | Backend | None = None,
                 on_done: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Trace what is not yet in OUT_DIR/traces.jsonl; returns counts and the errors."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / DATASET_FILE
    run_id = run_id or f"{PROCESS_RUN_ID}-{uuid.uuid4().hex[:6]}"
    sandboxes = get_backend(backend)
    _drop_torn_tail(path)
    have = done_keys(path)
    lock = threading.Lock()
    tracers: dict[str, TaskTracer] = {}
    todo = jobs(tasks)
    skipped = [t.id for t in tasks if not t.gold_patch]
    summary: dict[str, Any] = {"total": len(todo), "written": 0, "cached": 0, "errors": [],
                               "no_gold_patch": skipped}

    def tracer_for(task: Task) -> TaskTracer:
        with lock:
            if task.id not in tracers:
                tracers[task.id] = TaskTracer(task, ensure_task_image(task), run_id, sandboxes)
            return tracers[task.id]

    def one(task: Task, test_id: str, side: str) -> dict[str, Any]:
        try:
            tracer = tracer_for(task)
            key = trace_key(task, tracer.image.tag, test_id, side, bounds)
            if key in have:
                return {"task_id": task.id, "test_id": test_id, "side": side, "cached": True}
            trace = tracer.trace(Target("test", test_id), side, bounds)
        except BashenvError as exc:
            return {"task_id": task.id, "test_id": test_id, "side": side, "error": str(exc)}
        record = {"key": key, **trace.meta, "test_id": test_id, "outcome": trace.outcome,
                  "bounds_hit": trace.bounds_hit, "events": len(trace.events),
                  "python": trace.end.get("python"), "backend": trace.end.get("backend"),
                  "trace": trace.events, "functions": trace.end.get("functions", {}),
                  "text": trace.text(), "log": trace.log}
        with lock, path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        return {k: v for k, v in record.items() if k not in ("trace", "functions", "text", "log")}

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="bashenv-trace")
    try:
        pending: set[Future[dict[str, Any]]] = {pool.submit(one, *job) for job in todo}
        while pending:
            finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in finished:
                result = future.result()
                if result.get("error"):
                    summary["errors"].append(result)
                elif result.get("cached"):
                    summary["cached"] += 1
                else:
                    summary["written"] += 1
                if on_done is not None:
                    on_done(result)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        sandboxes.remove_all()
        raise
    pool.shutdown(wait=True)
    sandboxes.collect(run_id)
    return summary
