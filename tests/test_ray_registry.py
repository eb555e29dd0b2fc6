"""Images on many nodes through a registry: the node that builds a task's images pushes
them, the next node pulls instead of building (bashenv/cluster/images.py).

A real registry (Debian's `docker-registry`) listens on 127.0.0.1 in the host network
namespace, where dockerd pushes and pulls (Docker treats 127.0.0.0/8 as an insecure
registry by default). The task is a throwaway copy of a bundled one whose setup step makes
its image tag unique; only that tag is removed afterwards.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from bashenv.cluster.images import ensure_image
from bashenv.images.build import image_tags
from bashenv.sandbox.engine import client

REGISTRY = shutil.which("docker-registry")  # scripts/bootstrap.sh installs it


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def registry(tmp_path: Path):
    assert REGISTRY, "docker-registry is missing: scripts/bootstrap.sh installs it"
    port = _free_port()
    config = tmp_path / "config.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'store'}\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    server = subprocess.Popen([str(REGISTRY), "serve", str(config)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def test_a_node_pulls_what_another_built_and_pushed(registry, textkit):
    token = secrets.token_hex(4)
    task = textkit.model_copy(update={
        "id": f"registry-probe-{token}",
        "environment": textkit.environment.model_copy(
            update={"setup": [f"echo {token} > /tmp/bashenv-registry-probe"]})})
    task_tag = image_tags(task)[2]
    try:
        image, first = ensure_image(task, registry)  # the first node: builds, pushes all three
        assert image.tag == task_tag
        assert first["built"] >= 1 and first["pushed"] >= 1, first
        client().images.remove(task_tag)  # the second node has the bases but not the task
        image, second = ensure_image(task, registry)
        assert second == {"pulled": 1, "built": 0, "pushed": 0}, second
        labels = client().images.get(task_tag).labels
        assert labels["bashenv.task"] == task.id and labels["bashenv.base_sha"] == image.base_sha
        names = [t for i in client().images.list() for t in i.tags]
        assert not any(t.startswith(registry) for t in names)  # no registry names left behind
    finally:
        with contextlib.suppress(Exception):
            client().images.remove(task_tag, force=True)
