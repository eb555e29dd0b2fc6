"""Reading SWE-bench instance files: a JSON list, JSONL, or parquet (format detected)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bashenv.errors import TaskError

REQUIRED = ("repo", "instance_id", "base_commit", "problem_statement", "FAIL_TO_PASS")


@dataclass(frozen=True)
class Instance:
    """One SWE-bench instance, normalised (test lists are real lists)."""

    instance_id: str
    repo: str  # OWNER/NAME
    base_commit: str
    problem_statement: str
    fail_to_pass: list[str]
    pass_to_pass: list[str]
    patch: str = ""  # gold
    test_patch: str = ""
    version: str = ""
    environment_setup_commit: str = ""
    created_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # every other field, kept for export


def _test_list(value: Any, where: str) -> list[str]:
    """SWE-bench stores test lists as JSON strings; SWE-Gym and others as real lists."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise TaskError(f"{where}: not a JSON list of test ids") from None
    if hasattr(value, "tolist"):  # a numpy array, as pyarrow hands out list columns
        value = value.tolist()
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise TaskError(f"{where}: expected a list of test ids")
    return value


def _timestamp(value: Any) -> str:
    """`created_at` as SWE-bench spells it (ISO 8601, UTC as Z), whether the file holds a
    string or, as parquet datasets may, a timestamp."""
    if hasattr(value, "isoformat"):
        return str(value.isoformat()).replace("+00:00", "Z")
    return str(value or "")


def _install_config(value: Any, where: str) -> Any:
    """An instance's own SWE-bench spec (SWE-rebench, SWE-bench-extra): a dict, or a JSON
    string of one; None or "" when there is none."""
    if value is None or value == "" or isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise TaskError(f"{where}: not a JSON object") from None
        if isinstance(value, dict):
            return value
    raise TaskError(f"{where}: expected an object of SWE-bench spec keys (python, install, "
                    "test_cmd, ...)")


def to_instance(raw: dict[str, Any], where: str) -> Instance:
    missing = [k for k in REQUIRED if not raw.get(k)]
    if missing:
        raise TaskError(f"{where}: missing field(s) {', '.join(missing)}")
    known = {"instance_id", "repo", "base_commit", "problem_statement", "FAIL_TO_PASS",
             "PASS_TO_PASS", "patch", "test_patch", "version", "environment_setup_commit",
             "created_at"}
    iid = str(raw["instance_id"])
    extra = {k: v for k, v in raw.items() if k not in known}
    if "install_config" in extra:
        extra["install_config"] = _install_config(extra["install_config"],
                                                  f"{where}: field 'install_config'")
    return Instance(
        instance_id=iid, repo=str(raw["repo"]), base_commit=str(raw["base_commit"]),
        problem_statement=str(raw["problem_statement"]),
        fail_to_pass=_test_list(raw["FAIL_TO_PASS"], f"{where}: field 'FAIL_TO_PASS'"),
        pass_to_pass=_test_list(raw.get("PASS_TO_PASS"), f"{where}: field 'PASS_TO_PASS'"),
        patch=str(raw.get("patch") or ""), test_patch=str(raw.get("test_patch") or ""),
        version=str(raw.get("version") or ""),
        environment_setup_commit=str(raw.get("environment_setup_commit") or ""),
        created_at=_timestamp(raw.get("created_at")),
        extra=extra,
    )


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON list, JSONL or parquet file (parquet needs pyarrow)."""
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq  # type: ignore[import-not-found,import-untyped,unused-ignore]
        except ImportError:
            raise TaskError(f"{path}: reading parquet needs pyarrow (pip install pyarrow), "
                            "or convert the file to JSON lines") from None
        try:
            return list(pq.read_table(path).to_pylist())
        except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
            raise TaskError(f"{path}: not a readable parquet file: {exc}") from None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TaskError(f"{path}: cannot read: {exc.strerror}") from None
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise TaskError(f"{path}: invalid JSON: {exc}") from None
        if not all(isinstance(r, dict) for r in data):
            raise TaskError(f"{path}: expected a JSON list of objects")
        return list(data)
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise TaskError(f"{path}: line {number}: invalid JSON: {exc}") from None
        if not isinstance(record, dict):
            raise TaskError(f"{path}: line {number}: expected a JSON object")
        records.append(record)
    return records


def read_instances(path: str | Path, ids: list[str] | None = None) -> list[Instance]:
    """Instances from `path`, only `ids` when given (each must be there)."""
    path = Path(path)
    records = read_records(path)
    instances = [to_instance(r, f"{path}: instance {r.get('instance_id', i)}")
                 for i, r in enumerate(records)]
    if ids:
        by_id = {i.instance_id: i for i in instances}
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise TaskError(f"{path}: no instance(s) {', '.join(unknown)}")
        instances = [by_id[i] for i in ids]
    return instances
