"""Prediction files in the shapes SWE-bench's harness and the tools around it write: JSONL,
a JSON list, and a JSON object of instance_id → prediction (often pretty-printed), or one
prediction object; bad ones are named errors."""

from __future__ import annotations

import json

import pytest

from bashenv.errors import TaskError
from bashenv.swebench.evaluate import read_predictions
from tests.test_swebench_e2e import SAMPLE  # the sample, found beside any clone

USES_ENGINE = False


def _preds() -> list[dict]:
    lines = (SAMPLE / "preds-swe-agent-gpt4.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.parametrize("shape", ["jsonl", "list", "list-indented", "map", "map-indented"])
def test_every_shape_gives_the_same_predictions(tmp_path, shape):
    preds = _preds()
    path = tmp_path / "preds.json"
    indent = 2 if shape.endswith("indented") else None
    if shape == "jsonl":
        path.write_text("".join(json.dumps(p) + "\n" for p in preds))
    elif shape.startswith("list"):
        path.write_text(json.dumps(preds, indent=indent))
    else:
        path.write_text(json.dumps({p["instance_id"]: p for p in preds}, indent=indent))
    got = read_predictions(path)
    assert list(got) == [p["instance_id"] for p in preds]
    assert all(got[p["instance_id"]]["model_patch"] == p["model_patch"] for p in preds)


@pytest.mark.parametrize("indent", [None, 2])
def test_one_prediction_object(tmp_path, indent):
    pred = _preds()[0]
    (tmp_path / "one.json").write_text(json.dumps(pred, indent=indent))
    assert read_predictions(tmp_path / "one.json") == {pred["instance_id"]: pred}


@pytest.mark.parametrize(("text", "match"), [
    ('{"a": 1, "b": 2}', "instance_id → prediction objects"),
    ('{"instance_id": "x"}\n{"model_patch": "d"}\n', "prediction 2: no field 'instance_id'"),
    ('{"instance_id": "x"\n', "line 1: invalid JSON"),
])
def test_bad_prediction_files_are_named_errors(tmp_path, text, match):
    (tmp_path / "bad.jsonl").write_text(text)
    with pytest.raises(TaskError, match=match) as caught:
        read_predictions(tmp_path / "bad.jsonl")
    assert "bad.jsonl" in str(caught.value)
