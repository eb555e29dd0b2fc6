"""YAML → Task, with errors that name the file and the field."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import ValidationError

from bashenv.errors import TaskError
from bashenv.task.model import Task

TASK_FILE_PATTERNS = ("task.yaml", "task.yml", "*.task.yaml", "*.task.yml")


def _field(loc: Iterable[object]) -> str:
    # Pydantic puts union-branch names ("str", "FileRef") into locations; they confuse readers.
    parts = [str(p) for p in loc if p not in ("str", "FileRef", "function-after[_read_ref()]")]
    return ".".join(parts) or "(top level)"


def parse_task(data: object, source: Path) -> Task:
    """Validate already-parsed YAML data; `source` is the file it came from."""
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "nothing"
        raise TaskError(f"{source}: expected a mapping of task fields at the top level, got {kind}")
    try:
        task = Task.model_validate(data, context={"base_dir": source.parent})
    except ValidationError as exc:
        problems = "; ".join(f"field '{_field(e['loc'])}': {e['msg']}" for e in exc.errors())
        raise TaskError(f"{source}: {problems}") from None
    task._source_file = source
    return task


def load_task(path: str | Path) -> Task:
    """Load one task file."""
    source = Path(path)
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise TaskError(f"{source}: cannot read task file: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TaskError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise TaskError(f"{source}: invalid YAML{at}: {problem}") from None
    return parse_task(data, source)


def find_task_files(root: Path) -> list[Path]:
    found: set[Path] = set()
    for pattern in TASK_FILE_PATTERNS:
        found.update(root.rglob(pattern))
    return sorted(found)


def load_tasks(spec: str | Path | Task | Iterable[Task | str | Path]) -> list[Task]:
    """Tasks from a file, a directory (searched for task.yaml / *.task.yaml), or a list; by id."""
    if isinstance(spec, Task):
        tasks = [spec]
    elif isinstance(spec, (str, Path)):
        path = Path(spec)
        if path.is_dir():
            files = find_task_files(path)
            if not files:
                raise TaskError(f"{path}: no task files (task.yaml or *.task.yaml) in directory")
            tasks = [load_task(f) for f in files]
        elif path.exists():
            tasks = [load_task(path)]
        else:
            raise TaskError(f"{path}: no such task file or directory")
    else:
        tasks = [t for item in spec for t in load_tasks(item)]
    seen: dict[str, Task] = {}
    for task in tasks:
        if task.id in seen:
            raise TaskError(
                f"duplicate task id {task.id!r} in {seen[task.id].source_file} and {task.source_file}"
            )
        seen[task.id] = task
    return sorted(tasks, key=lambda t: t.id)
