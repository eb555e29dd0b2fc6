"""A task's limits and sandbox policy reach the containers exactly: the agent's and the grader's."""

from __future__ import annotations

import pytest

from bashenv.env import BashSWEEnv
from bashenv.grading import Rewarder
from bashenv.images.specs import spec_for_task
from bashenv.sandbox.engine import client

from .conftest import rid

LIMITS = {"memory": "768m", "cpus": 0.5, "pids": 99, "file_size_mb": 12, "disk_mb": 200}


@pytest.fixture(scope="module")
def limited(textkit):
    return textkit.model_copy(update={"limits": textkit.limits.model_copy(update=LIMITS)})


def _expected_host_config() -> dict:
    return {"Memory": 768 << 20, "MemorySwap": 768 << 20, "NanoCpus": 500_000_000,
            "PidsLimit": 99, "Ulimits": [{"Name": "fsize", "Soft": 12 << 20, "Hard": 12 << 20}]}


def test_spec_for_task_carries_every_limit(limited, textkit_image):
    for role in ("agent", "grader"):
        spec = spec_for_task(limited, textkit_image.tag, role)
        assert (spec.memory, spec.cpus, spec.pids, spec.file_size_mb, spec.disk_mb) == (
            "768m", 0.5, 99, 12, 200)
        assert spec.labels == {"bashenv.role": role, "bashenv.task": limited.id}
    rewarder = Rewarder(limited, textkit_image)
    assert (rewarder.spec.memory, rewarder.spec.pids, rewarder.spec.disk_mb) == ("768m", 99, 200)


def _run_in_agent_box(task, command: str) -> tuple[dict, dict]:
    """(the observation of `command`, the HostConfig of the agent's container)."""
    env = BashSWEEnv(task, run_id=rid("limits"))
    try:
        env.reset()
        obs, *_ = env.step(command)
        return obs, client().api.inspect_container(env.sandbox.id)["HostConfig"]
    finally:
        env.close()


def test_agent_container_host_config_holds_exactly_the_tasks_limits(limited):
    obs, host = _run_in_agent_box(limited, "df -m /repo | tail -1; ulimit -f; id -un")
    for key, value in _expected_host_config().items():
        assert host[key] == value, key
    assert host["ReadonlyRootfs"] and host["NetworkMode"] == "none"
    assert host["CapDrop"] == ["ALL"] and "no-new-privileges" in host["SecurityOpt"]
    size_options = [m["VolumeOptions"]["DriverConfig"]["Options"]["o"] for m in host["Mounts"]]
    assert any(o.startswith("size=200m,") for o in size_options), size_options
    disk, blocks, user = obs["output"].split("\n")[:3]
    assert disk.split()[1] == "200" and blocks == str(12 << 10) and user == "agent", obs["output"]


def test_sandbox_policy_reaches_the_container(textkit):
    rooted = textkit.model_copy(update={
        "sandbox": textkit.sandbox.model_copy(update={"user": "root"}),
        "limits": textkit.limits.model_copy(update={"disk_mb": None})})
    obs, host = _run_in_agent_box(rooted, "id -un")
    assert obs["output"] == "root\n"
    assert not host["ReadonlyRootfs"]
    # No bounded workdir volume: the only mount is the shared, read-only tools volume.
    mounts = host.get("Mounts") or []
    assert [(m["Target"], m["ReadOnly"]) for m in mounts] == [("/opt/bashenv/tools", True)], mounts
