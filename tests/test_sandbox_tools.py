"""Tools shared by every box through one read-only volume (bashenv/sandbox/tools.py)."""

from __future__ import annotations

import contextlib
import secrets

import docker.errors
import pytest

from bashenv.errors import SandboxError
from bashenv.sandbox import BashSession, Container, SandboxSpec, collect_garbage
from bashenv.sandbox.engine import client
from bashenv.sandbox.tools import TOOLS_LABEL, ToolSet

from .conftest import rid


@pytest.fixture
def tools():
    """A set of its own (new contents: a new volume), removed afterwards."""
    token = secrets.token_hex(4)
    made = ToolSet("/opt/bashenv/tools", (("hello-tool", f"#!/bin/sh\necho hello {token}\n".encode()),))
    yield made, token
    with contextlib.suppress(docker.errors.NotFound):
        client().api.remove_volume(made.volume)


def _labels(name: str) -> dict[str, str]:
    return client().api.inspect_volume(name).get("Labels") or {}


@pytest.mark.parametrize("disk_mb", [64, None], ids=["read-only root", "writable root"])
def test_tools_are_on_path_read_only_and_made_once(base_image, tools, disk_mb):
    toolset, token = tools
    spec = SandboxSpec(image=base_image, run_id=rid("tools"), tools=toolset, disk_mb=disk_mb)
    with Container(spec) as first, Container(spec) as second:
        shell = BashSession(second)
        try:
            assert shell.run("hello-tool", timeout=10).output.strip() == f"hello {token}"
            assert shell.run("command -v hello-tool", timeout=10).output.strip() \
                == "/opt/bashenv/tools/hello-tool"
            changed = shell.run("echo x > /opt/bashenv/tools/hello-tool || rm -f "
                                "/opt/bashenv/tools/hello-tool || echo refused", timeout=10)
            assert "refused" in changed.output
        finally:
            shell.close()
        as_root = first.exec(["sh", "-c", "touch /opt/bashenv/tools/new 2>&1; "
                              "stat -c '%U %a' /opt/bashenv/tools/hello-tool"], user="root")
        assert "Read-only file system" in as_root.text and "root 755" in as_root.text
    assert _labels(toolset.volume) == {TOOLS_LABEL: toolset.digest}
    assert len(client().api.volumes(filters={"label": f"{TOOLS_LABEL}={toolset.digest}"})
               ["Volumes"]) == 1


def test_a_removed_volume_fails_the_next_start_loudly_then_is_made_again(base_image, tools):
    """Removed behind this process's back (`gc --all`, by hand): the next box does not
    start with an empty tools directory, and the one after gets the volume made anew."""
    toolset, token = tools
    spec = SandboxSpec(image=base_image, run_id=rid("tools"), tools=toolset, disk_mb=64)
    Container(spec).remove()
    client().api.remove_volume(toolset.volume)
    with pytest.raises(SandboxError, match="cannot start"):
        Container(spec)
    with Container(spec) as box:
        assert box.exec(["/opt/bashenv/tools/hello-tool"]).text.strip() == f"hello {token}"
    assert _labels(toolset.volume) == {TOOLS_LABEL: toolset.digest}


def test_a_volume_of_that_name_that_is_not_ours_is_refused_and_kept(base_image, tools):
    toolset, _ = tools
    client().api.create_volume(toolset.volume)  # no label: someone else's
    with pytest.raises(SandboxError, match="not bashenv's"):
        Container(SandboxSpec(image=base_image, run_id=rid("tools"), tools=toolset))
    assert client().api.inspect_volume(toolset.volume)["Name"] == toolset.volume


def test_gc_keeps_tools_volumes_unless_told_all(base_image, tools):
    toolset, _ = tools
    Container(SandboxSpec(image=base_image, run_id=rid("tools"), tools=toolset)).remove()
    assert toolset.volume not in collect_garbage(dry_run=True).volumes
    assert toolset.volume in collect_garbage(everything=True, dry_run=True).volumes
