"""bashenv tasks → SWE-bench instances (JSONL), so bashenv-authored tasks run in other
harnesses. Imported tasks give back the instance they came from (their `metadata`)."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any

import git

from bashenv.task.model import Task
from bashenv.task.source import _cache_repo, resolve_commit

_GITHUB = re.compile(r"github\.com[/:]([\w.-]+)/([\w.-]+?)(?:\.git)?/?$")
_LOCAL = re.compile(r"([\w.-]+)__([\w.-]+?)(?:\.git)?/?$")


def repo_name(task: Task) -> str:
    """OWNER/NAME: from the metadata, a GitHub URL, or an OWNER__NAME[.git] path."""
    if task.metadata.get("repo"):
        return str(task.metadata["repo"])
    for pattern in (_GITHUB, _LOCAL):
        match = pattern.search(task.repo)
        if match:
            return f"{match.group(1)}/{match.group(2)}"
    return f"bashenv/{Path(task.repo).name or task.id}"


def _files_as_patch(task: Task, sha: str) -> str:
    """`tests.files` (written verbatim by bashenv) as a diff against the base commit."""
    url, _ = resolve_commit(task)
    cache = _cache_repo(url)
    parts = []
    for path, content in sorted(task.tests.files.items()):
        try:
            old = cache.git.show(f"{sha}:{path}") + "\n"
        except git.GitCommandError:
            old = None
        lines = difflib.unified_diff((old or "").splitlines(keepends=True),
                                     str(content).splitlines(keepends=True),
                                     "/dev/null" if old is None else f"a/{path}", f"b/{path}")
        body = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                       for line in lines)
        if body:
            mode = "new file mode 100644\n" if old is None else ""
            parts.append(f"diff --git a/{path} b/{path}\n{mode}{body}")
    return "".join(parts)


def to_instance(task: Task) -> dict[str, Any]:
    meta = task.metadata
    _, sha = resolve_commit(task)
    test_patch = str(task.tests.patch or "") + (_files_as_patch(task, sha) if task.tests.files else "")
    known = {"source", "repo", "version", "environment_setup_commit", "created_at", "spec",
             "python_spec", "python", "notes"}
    return {
        "repo": repo_name(task),
        "instance_id": task.id,
        "base_commit": sha,
        "patch": str(task.gold_patch or ""),
        "test_patch": test_patch,
        "problem_statement": str(task.problem_statement),
        "hints_text": str(meta.get("hints_text", "")),
        "created_at": str(meta.get("created_at", "")),
        "version": str(meta.get("version", "")),
        "environment_setup_commit": str(meta.get("environment_setup_commit") or sha),
        # SWE-bench's own files store the test lists as JSON strings.
        "FAIL_TO_PASS": json.dumps(task.tests.fail_to_pass),
        "PASS_TO_PASS": json.dumps(task.tests.pass_to_pass),
        **{k: v for k, v in meta.items() if k not in known and k != "hints_text"},
    }


def export_tasks(tasks: list[Task], out: Path) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for task in tasks:
            handle.write(json.dumps(to_instance(task), ensure_ascii=False) + "\n")
    return len(tasks)
