"""A Docker engine of the test's own: a second dockerd with its own socket, data root and
exec root, for tests that must stop or restart an engine. Killing the shared engine would
kill every other job's containers; this one holds only what the test put there."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import docker


def _wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


class PrivateEngine:
    """`with PrivateEngine(images) as engine:` a running dockerd holding copies of `images`
    (tags on the shared engine); `engine.url` for DOCKER_HOST, `engine.restart()`."""

    def __init__(self, images: list[str]) -> None:
        self.images = images
        # Short path: the socket path must fit in a sockaddr_un.
        self.root = Path(tempfile.mkdtemp(prefix="bashenv-dockerd-", dir="/tmp"))
        self.socket = self.root / "docker.sock"
        self.url = f"unix://{self.socket}"
        self.pid = 0

    def _start(self) -> None:
        config = self.root / "daemon.json"
        config.write_text(json.dumps({}))
        cmd = ["dockerd", "--data-root", str(self.root / "data"), "--exec-root",
               str(self.root / "exec"), "--pidfile", str(self.root / "dockerd.pid"),
               "-H", self.url, "--config-file", str(config),
               # No bridge, no iptables rules: nothing that touches the host's network.
               "--bridge=none", "--iptables=false", "--ip-masq=false"]
        with open(self.root / "dockerd.log", "ab") as log:
            self.pid = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True).pid
        _wait_for(self._answers, 60, "the private dockerd to answer")

    def _answers(self) -> bool:
        try:
            with docker.APIClient(base_url=self.url, timeout=5) as probe:
                return bool(probe.ping())
        except Exception:
            return False

    def _stop(self) -> None:
        if not self.pid:
            return
        os.kill(self.pid, signal.SIGTERM)
        _wait_for(lambda: not _alive(self.pid), 60, "the private dockerd to exit")
        self.pid = 0

    def restart(self) -> None:
        self._stop()
        self._start()

    def client(self) -> docker.APIClient:
        return docker.APIClient(base_url=self.url, timeout=120)

    def __enter__(self) -> PrivateEngine:
        try:
            self._start()  # copies of the shared engine's images: no rebuild (debootstrap) needed
            export = subprocess.Popen(["docker", "save", *self.images], stdout=subprocess.PIPE)
            load = subprocess.run(["docker", "-H", self.url, "load", "-q"], stdin=export.stdout,
                                  capture_output=True)
            assert export.wait() == 0 and load.returncode == 0, load.stderr
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        try:
            with self.client() as engine:  # its containers go with it
                for box in engine.containers(all=True):
                    engine.remove_container(box["Id"], force=True, v=True)
        except Exception:
            pass
        self._stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours counts as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    if state == "Z":
        os.waitpid(pid, os.WNOHANG)
        return False
    return True
