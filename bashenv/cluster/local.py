"""A Ray cluster of several nodes on this one machine, for tests, the bench and trying
things: a head and workers, each a `ray start` with its own sandbox slots.

Ray binds the machine's own interface address even when told 127.0.0.1, so the cluster
must live in a network namespace of its own where only loopback exists: run the code
that uses this class under `unshare --net` (`in_private_netns()` checks). Everything it
starts names its --temp-dir on the command line; `stop()` ends those processes and their
children by pid, never `ray stop` (which would end every Ray on the machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bashenv.cluster.nodes import SLOT_RESOURCE
from bashenv.errors import BashenvError


def in_private_netns() -> bool:
    """True when loopback is the only network interface here (e.g. under unshare --net)."""
    names = [line.split(":")[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:]]
    return names == ["lo"]


def _ray_bin() -> str:
    return str(Path(sys.executable).with_name("ray"))


def _processes() -> dict[int, tuple[int, str]]:
    """pid → (parent pid, command line) of every process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            found[int(entry.name)] = (int(stat[1]), cmdline)
    return found


def _with_children(roots: set[int]) -> set[int]:
    table = _processes()
    found, grew = set(roots) & set(table), True
    while grew:
        grew = False
        for pid, (parent, _) in table.items():
            if parent in found and pid not in found:
                found.add(pid)
                grew = True
    return found


class LocalCluster:
    """`ray start --head` plus workers on this machine, in the caller's network namespace."""

    def __init__(self, temp_dir: Path, port: int = 6390) -> None:
        if not in_private_netns():
            raise BashenvError("a local Ray cluster needs a network namespace of its own "
                               "(run under `unshare --net`; see bashenv/cluster/local.py)")
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        self.temp_dir, self.port = Path(temp_dir), port
        self.address = f"127.0.0.1:{port}"
        self.raylets: list[int] = []  # per node, in start order (0 is the head)

    def _raylets_now(self) -> set[int]:
        return {pid for pid, (_, cmd) in _processes().items()
                if "/raylet/raylet " in cmd + " " and str(self.temp_dir) in cmd}

    def _start(self, args: list[str], slots: int, env: dict[str, str] | None) -> int:
        before = self._raylets_now()
        resources = json.dumps({SLOT_RESOURCE: slots})
        subprocess.run([_ray_bin(), "start", *args, "--num-cpus", "1",
                        f"--resources={resources}", "--disable-usage-stats"],
                       check=True, capture_output=True, env={**os.environ, **(env or {})})
        for _ in range(100):
            new = self._raylets_now() - before
            if new:
                self.raylets.append(new.pop())
                return len(self.raylets) - 1
            time.sleep(0.1)
        raise BashenvError("ray start returned but no new raylet appeared")

    def start_head(self, slots: int, env: dict[str, str] | None = None) -> int:
        return self._start(["--head", "--port", str(self.port), "--node-ip-address", "127.0.0.1",
                            "--temp-dir", str(self.temp_dir), "--include-dashboard", "false"],
                           slots, env)

    def add_worker(self, slots: int, env: dict[str, str] | None = None) -> int:
        """A worker node; `env` e.g. {"DOCKER_HOST": ...} for a node with another engine."""
        return self._start(["--address", self.address, "--node-ip-address", "127.0.0.1"],
                           slots, env)

    def kill_node(self, index: int) -> None:
        """What a machine dying does to a node: its raylet is SIGKILLed, its workers follow."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.raylets[index], signal.SIGKILL)

    def stop(self) -> None:
        """End every process of this cluster (command line names temp_dir) and their
        children: SIGTERM, then SIGKILL what is left after a few seconds."""
        roots = {pid for pid, (_, cmd) in _processes().items() if str(self.temp_dir) in cmd}
        pids = _with_children(roots | set(self.raylets)) - {os.getpid()}
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
                time.sleep(0.1)
            pids = {p for p in pids if Path(f"/proc/{p}").exists()}
            if not pids:
                return

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
