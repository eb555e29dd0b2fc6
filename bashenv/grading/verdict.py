"""The Verdict: what the grader decided, and the audit trail it decided from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# tampered: a canary test had the wrong outcome (see `canaries`): the run was forged.
OUTCOMES = ("resolved", "unresolved", "patch_failed", "timeout", "error", "tampered")
LOG_LIMIT = 20000
LIST_LIMIT = 500  # entries kept per audit list (a tree can hold many thousand changed files)


@dataclass
class Verdict:
    task_id: str
    outcome: str
    fail_to_pass: dict[str, str] = field(default_factory=dict)
    pass_to_pass: dict[str, str] = field(default_factory=dict)
    log: str = ""
    error: str | None = None  # why the grading itself failed (outcome error) or was refused
    # The audit trail, computed by the grader from the files after the change was applied
    # (never read from the test log): every changed path, the hidden-test files among them,
    # what was reverted or removed because pytest or Python would load it implicitly, and
    # the bytecode / compiled extensions removed.
    touched_test_files: list[str] = field(default_factory=list)
    reverted_config: list[str] = field(default_factory=list)
    removed_bytecode: list[str] = field(default_factory=list)
    changed_files: list[str] = field(default_factory=list)
    note: str | None = None  # why an unresolved run has no per-test results
    # How a diff went in (grading/apply.py's METHODS, or "failed"); None: no diff to apply
    # (empty, or an agent's working tree).
    apply_method: str | None = None
    # The tests ran with the grader's pytest plugin. False for a runner of the task's own
    # (`runner: swebench:<repo>` runs e.g. Django's runtests.py as is): nothing that rides
    # on the plugin applied to that run.
    grader_plugin: bool = True
    # Canary tests (grading/canary.py): {"used": True, "planted": n, "wrong": [{"id",
    # "expected", "got"}]} or {"used": False, "reason": ...}. Never in the per-test results.
    canaries: dict[str, Any] = field(default_factory=dict)
    # Why the change's non-test code looks like it reaches into the test machinery: flagged
    # for review, not failed.
    suspicious: list[str] = field(default_factory=list)
    test_seconds: float = 0.0
    seconds: float = 0.0
    infra: bool = False  # the error came from the sandbox or engine, not from the diff

    @property
    def resolved(self) -> bool:
        return self.outcome == "resolved"

    @property
    def reward(self) -> float:
        return 1.0 if self.resolved else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reward": self.reward, "resolved": self.resolved}


def tail(text: str, limit: int = LOG_LIMIT) -> str:
    return text if len(text) <= limit else f"[... {len(text) - limit} chars cut ...]\n" + text[-limit:]


def capped(paths: list[str]) -> list[str]:
    if len(paths) <= LIST_LIMIT:
        return paths
    return [*paths[:LIST_LIMIT], f"[... {len(paths) - LIST_LIMIT} more]"]
