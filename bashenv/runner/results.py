"""Results as JSONL: one whole line per finished episode, appended atomically; resumable."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

INFRA_ERROR = "infra_error"  # the sandbox or engine broke: not a result, run again


class ResultsFile:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def load(self) -> list[dict[str, Any]]:
        """Finished records; a torn last line (crash mid-write) is ignored."""
        if not self.path.exists():
            return []
        records = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "task_id" in record:
                records.append(record)
        return records

    def latest(self, agent: str) -> dict[str, dict[str, Any]]:
        """Task id → the last record for `agent` (a re-run's record supersedes earlier ones)."""
        return {r["task_id"]: r for r in self.load() if r.get("agent") == agent}

    def finished(self, agent: str) -> set[str]:
        """Tasks with a result for `agent`; infrastructure failures do not count."""
        return {t for t, r in self.latest(agent).items() if r.get("outcome") != INFRA_ERROR}

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._repair_torn_tail()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def _repair_torn_tail(self) -> None:
        # A line cut by a crash would glue onto the next record; end it first.
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb+") as handle:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    handle.write(b"\n")
