"""Sandbox slots per node and the guards of the Ray room that need no cluster."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bashenv.cli import app
from bashenv.cluster import SLOT_RESOURCE, default_slots, resources_json
from bashenv.cluster.local import LocalCluster, in_private_netns
from bashenv.errors import BashenvError
from bashenv.sandbox.backend import BACKENDS

USES_ENGINE = False


def test_slots_come_from_cores_and_memory_whichever_runs_out_first(monkeypatch):
    monkeypatch.delenv("BASHENV_SLOTS", raising=False)
    assert default_slots(cores=64, memory_gib=256) == 128
    assert default_slots(cores=64, memory_gib=32) == 16  # memory-bound
    assert default_slots(cores=2, memory_gib=256) == 4  # core-bound
    assert default_slots(cores=1, memory_gib=1) == 1  # never zero on a small node


def test_slots_are_overridable_and_a_bad_override_is_named(monkeypatch):
    monkeypatch.setenv("BASHENV_SLOTS", "7")
    assert default_slots(cores=64, memory_gib=256) == 7
    assert json.loads(resources_json()) == {SLOT_RESOURCE: 7}
    assert json.loads(resources_json(3)) == {SLOT_RESOURCE: 3}
    monkeypatch.setenv("BASHENV_SLOTS", "many")
    with pytest.raises(BashenvError, match="BASHENV_SLOTS='many'"):
        default_slots()


def test_cli_prints_the_ray_start_resources(monkeypatch):
    monkeypatch.setenv("BASHENV_SLOTS", "5")
    result = CliRunner().invoke(app, ["cluster", "resources"])
    assert result.exit_code == 0 and json.loads(result.stdout) == {SLOT_RESOURCE: 5}
    result = CliRunner().invoke(app, ["cluster", "resources", "--slots", "2"])
    assert json.loads(result.stdout) == {SLOT_RESOURCE: 2}


def test_ray_only_options_are_refused_without_ray(tmp_path):
    predictions = tmp_path / "preds.jsonl"
    predictions.write_text("")
    result = CliRunner().invoke(app, ["eval", str(predictions), "--tasks", str(tmp_path),
                                      "--registry", "127.0.0.1:5000"])
    assert result.exit_code == 2 and "--registry needs --ray" in result.output
    result = CliRunner().invoke(app, ["bench", "--no-local"])
    assert result.exit_code == 2 and "--no-local needs --ray" in result.output


def test_ray_backend_is_registered_lazily():
    assert BACKENDS["ray"] == "bashenv.cluster.backend:RayBackend"


@pytest.mark.skipif(in_private_netns(), reason="this check is about the host's namespace")
def test_a_local_cluster_refuses_the_hosts_network_namespace(tmp_path):
    with pytest.raises(BashenvError, match="unshare --net"):
        LocalCluster(tmp_path)
