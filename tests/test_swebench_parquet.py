"""Instances as Hugging Face publishes SWE-bench datasets: parquet. The sample's instances,
written as parquet by pyarrow the way the hub's files hold them (every field a string) and
the way SWE-Gym-style datasets do (test lists as real lists, `created_at` a timestamp),
import to the same tasks as the JSON file they came from."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys

import pyarrow as pa  # the dev extra installs it
import pyarrow.parquet as pq
import pytest

from bashenv.errors import TaskError
from bashenv.swebench.instances import read_instances
from tests.test_swebench_e2e import SAMPLE  # the sample, found beside any clone

USES_ENGINE = False
IDS = "pallets__flask-4992,psf__requests-2317,pytest-dev__pytest-7373"


def _records() -> list[dict]:
    return json.loads((SAMPLE / "instances.json").read_text())


def _as_lists(record: dict) -> dict:
    return {**record, "FAIL_TO_PASS": json.loads(record["FAIL_TO_PASS"]),
            "PASS_TO_PASS": json.loads(record["PASS_TO_PASS"]),
            "created_at": datetime.datetime.fromisoformat(record["created_at"])}


@pytest.mark.parametrize("shape", ["strings", "lists"])
def test_parquet_gives_the_instances_of_the_json_file(tmp_path, shape):
    records = _records() if shape == "strings" else [_as_lists(r) for r in _records()]
    path = tmp_path / "test-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(records), path)
    got, want = read_instances(path), read_instances(SAMPLE / "instances.json")
    assert [i.instance_id for i in got] == [i.instance_id for i in want]
    for parquet, original in zip(got, want, strict=True):
        assert (parquet.fail_to_pass, parquet.pass_to_pass) == (original.fail_to_pass,
                                                                original.pass_to_pass)
        assert (parquet.base_commit, parquet.patch, parquet.test_patch) == (
            original.base_commit, original.patch, original.test_patch)
        assert parquet.created_at == original.created_at


def test_tasks_import_of_parquet_writes_the_tasks_json_writes(tmp_path):
    pq.write_table(pa.Table.from_pylist(_records()), tmp_path / "instances.parquet")
    outs = {}
    for name in ("instances.parquet", "instances.json"):
        source = tmp_path / name if name.endswith("parquet") else SAMPLE / name
        outs[name] = tmp_path / name.replace(".", "-")
        done = subprocess.run([sys.executable, "-m", "bashenv.cli", "tasks", "import",
                               str(source), "--repos", str(SAMPLE / "repos"), "--ids", IDS,
                               "-o", str(outs[name])], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    for iid in IDS.split(","):
        for file in ("task.yaml", "gold.patch", "tests.patch", "issue.md"):
            parquet = (outs["instances.parquet"] / iid / file).read_text()
            assert parquet == (outs["instances.json"] / iid / file).read_text(), (iid, file)


def test_a_parquet_file_that_is_not_one_is_named(tmp_path):
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(TaskError, match="broken.parquet"):
        read_instances(bad)
