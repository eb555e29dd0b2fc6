"""Task YAML loading and schema (pure logic: no containers)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bashenv.errors import TaskError
from bashenv.task import json_schema, load_task, load_tasks
from bashenv.task.model import Environment, HiddenTests, Limits, SandboxPolicy

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


NESTED_INVALID = [
    ("limits", "memory", "lots"), ("limits", "memory", "2 g"), ("limits", "memory", "-1g"),
    ("limits", "cpus", 0), ("limits", "cpus", -1.5), ("limits", "pids", 3),
    ("limits", "file_size_mb", 0), ("limits", "disk_mb", -1), ("limits", "max_steps", 0),
    ("limits", "command_timeout", 0), ("limits", "episode_timeout", -5),
    ("limits", "output_chars", 10), ("tests", "timeout", 0), ("tests", "runner", "nose"),
    ("tests", "fail_to_pass", []), ("tests", "fail_to_pass", "tests/test_a.py::test_x"),
    ("tests", "files", {"/etc/passwd": "x"}), ("tests", "files", {"../outside.py": "x"}),
    ("tests", "protect_config", "sometimes"), ("tests", "pass_to_pass", [["nested"]]),
    ("sandbox", "user", 5), ("sandbox", "network", "maybe"), ("sandbox", "runtime", ["runsc"]),
    ("environment", "python_packages", "six"), ("environment", "env", {"A": ["b"]}),
    ("environment", "setup", [None]),
]


@pytest.mark.parametrize(("section", "key", "value"), NESTED_INVALID,
                         ids=[f"{s}.{k}={v!r}" for s, k, v in NESTED_INVALID])
def test_invalid_nested_value_is_rejected_naming_the_field(tmp_path, section, key, value):
    base = MINIMAL.get(section, {})
    path = write(tmp_path, {**MINIMAL, section: {**base, key: value}})
    with pytest.raises(TaskError, match=rf"task\.yaml: field '{section}\.{key}(\.|')"):
        load_task(path)


def test_invalid_top_level_values_are_named(tmp_path):
    for key, value in (("workdir", "relative/dir"), ("workdir", "/with space"), ("id", ""),
                       ("repo", None), ("problem_statement", {"file": 3})):
        with pytest.raises(TaskError, match=rf"field '{key}"):
            load_task(write(tmp_path, {**MINIMAL, key: value}))


def test_valid_nested_values_are_kept_exactly(tmp_path):
    limits = {"memory": "512m", "cpus": 0.25, "pids": 64, "file_size_mb": 3, "disk_mb": None,
              "max_steps": 7, "command_timeout": 1.5, "episode_timeout": 30, "output_chars": 300}
    task = load_task(write(tmp_path, {**MINIMAL, "limits": limits,
                                      "sandbox": {"user": "root", "runtime": "runsc"}}))
    assert task.limits.model_dump() == limits
    assert (task.sandbox.user, task.sandbox.runtime, task.sandbox.network) == ("root", "runsc", False)


SECTION_KEYS = {name: sorted(model.model_fields) for name, model in (
    ("limits", Limits), ("tests", HiddenTests), ("sandbox", SandboxPolicy),
    ("environment", Environment))}
_SCALARS = (st.none() | st.booleans() | st.integers(-10**6, 10**6)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
            | st.sampled_from(["2g", "512m", "0", "-1", "runsc", "tests/t.py::test_x", "/abs"]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


@st.composite
def _documents(draw):
    """Task documents that reach every nested key: MINIMAL, with sections whose keys come
    from the model (plus unknown ones) and values of any shape."""
    document = dict(MINIMAL)
    for section, keys in SECTION_KEYS.items():
        if draw(st.booleans()):
            base = dict(document.get(section, {}))
            extra = draw(st.dictionaries(st.sampled_from([*keys, "bogus"]), _VALUES, max_size=4))
            document[section] = {**base, **extra}
    if draw(st.booleans()):
        document[draw(st.sampled_from([*MINIMAL, "workdir", "base_commit", "x"]))] = draw(_VALUES)
    return document


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_documents())
def test_fuzzed_nested_documents_give_a_valid_task_or_an_error_naming_file_and_field(tmp_path,
                                                                                   document):
    path = write(tmp_path, yaml.safe_dump(document), "fuzz.yaml")
    try:
        task = load_task(path)
    except TaskError as exc:
        assert "fuzz.yaml" in str(exc)
        assert "field '" in str(exc) or "expected a mapping" in str(exc), str(exc)
        return
    # What loads satisfies the schema's bounds (a lost pattern or bound lets bad values in).
    limits = task.limits
    assert re.fullmatch(r"\d+[kmg]?", limits.memory), limits.memory
    assert limits.cpus > 0 and limits.pids > 16 and limits.file_size_mb > 0
    assert limits.disk_mb is None or limits.disk_mb > 0
    assert limits.max_steps > 0 and limits.command_timeout > 0 and limits.output_chars >= 200
    assert task.tests.fail_to_pass and task.tests.timeout > 0
    assert all(not p.startswith("/") and ".." not in p.split("/") for p in task.tests.files)
    assert task.workdir.startswith("/")
    for section, keys in SECTION_KEYS.items():  # nothing given was silently dropped
        given_keys = set(document.get(section, {}))
        assert given_keys <= set(keys)


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
