"""Task YAML loading and schema (pure logic: no containers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bashenv.errors import TaskError
from bashenv.task import json_schema, load_task, load_tasks

from .conftest import TASKS_DIR

USES_ENGINE = False  # pure logic: runs without a Docker engine (conftest)

MINIMAL = {
    "id": "demo-1",
    "repo": ".",
    "problem_statement": "it is broken",
    "tests": {"fail_to_pass": ["tests/test_a.py::test_x"]},
}


def write(tmp_path: Path, data: object, name: str = "task.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_bundled_tasks_load_with_texts_resolved():
    tasks = load_tasks(TASKS_DIR)
    assert len(tasks) >= 3
    for task in tasks:
        assert task.problem_statement.strip() and task.gold_patch.startswith("diff --git")
        assert task.tests.patch.startswith("diff --git")
        assert task.tests.fail_to_pass and task.tests.pass_to_pass


def test_minimal_task_gets_defaults(tmp_path):
    task = load_task(write(tmp_path, MINIMAL))
    assert task.base_commit == "HEAD" and task.limits.command_timeout == 60
    assert task.environment.base == "python-bookworm" and task.source_file == tmp_path / "task.yaml"


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "id: x\nrepo: [unclosed\n")
    with pytest.raises(TaskError, match=r"task\.yaml: invalid YAML at line \d+"):
        load_task(path)


def test_unknown_field_is_named(tmp_path):
    path = write(tmp_path, {**MINIMAL, "limits": {"max_stpes": 3}})
    with pytest.raises(TaskError, match=r"task\.yaml: field 'limits\.max_stpes'"):
        load_task(path)


def test_wrong_type_is_named(tmp_path):
    path = write(tmp_path, {**MINIMAL, "limits": {"max_steps": "many"}})
    with pytest.raises(TaskError, match=r"field 'limits\.max_steps'"):
        load_task(path)


def test_missing_required_field(tmp_path):
    data = {k: v for k, v in MINIMAL.items() if k != "tests"}
    with pytest.raises(TaskError, match=r"field 'tests': Field required"):
        load_task(write(tmp_path, data))


def test_missing_referenced_file_is_named(tmp_path):
    path = write(tmp_path, {**MINIMAL, "gold_patch": {"file": "nope.patch"}})
    with pytest.raises(TaskError, match=r"field 'gold_patch'.*nope\.patch"):
        load_task(path)


def test_non_utf8_task_file(tmp_path):
    path = tmp_path / "task.yaml"
    path.write_bytes(b"id: caf\xe9\n")
    with pytest.raises(TaskError, match=r"task\.yaml: not UTF-8"):
        load_task(path)


def test_non_utf8_referenced_file(tmp_path):
    (tmp_path / "issue.md").write_bytes(b"\xff\xfe broken")
    with pytest.raises(TaskError, match=r"problem_statement.*not UTF-8"):
        load_task(write(tmp_path, {**MINIMAL, "problem_statement": {"file": "issue.md"}}))


def test_top_level_not_a_mapping(tmp_path):
    with pytest.raises(TaskError, match="expected a mapping"):
        load_task(write(tmp_path, "- just\n- a list\n"))


def test_bad_id_and_duplicate_ids(tmp_path):
    with pytest.raises(TaskError, match="field 'id'"):
        load_task(write(tmp_path, {**MINIMAL, "id": "has space"}))
    for sub in ("dups/a", "dups/b"):
        (tmp_path / sub).mkdir(parents=True)
        write(tmp_path / sub, MINIMAL)
    with pytest.raises(TaskError, match="duplicate task id 'demo-1'"):
        load_tasks(tmp_path / "dups")


def test_empty_directory_is_an_error(tmp_path):
    with pytest.raises(TaskError, match="no task files"):
        load_tasks(tmp_path)


def test_json_schema_exports():
    schema = json_schema()
    assert schema["title"] == "Task"
    assert {"id", "repo", "problem_statement", "tests"} <= set(schema["required"])
    json.dumps(schema)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from([*MINIMAL, "limits", "tests", "x"]), inner,
                                      max_size=5), max_leaves=15))
def test_fuzzed_documents_give_task_errors_only(tmp_path, document):
    """Whatever the YAML holds, loading gives a Task or a TaskError naming the file."""
    path = write(tmp_path, yaml.safe_dump(document), "fuzz.yaml")
    try:
        load_task(path)
    except TaskError as exc:
        assert "fuzz.yaml" in str(exc)
