"""Containers die with their owner, whatever kills it, without any gc (the dead-man's switch).

A subprocess holds 8 envs with started containers and a warm pool; it also forks twice: a
child that exits (which must not take its parent's containers along) and a child that
outlives the parent (which must not keep them alive). Then the parent is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from bashenv.sandbox import Container, SandboxSpec
from bashenv.sandbox.engine import LABEL, client
from bashenv.sandbox.lifecycle import DEADMAN_LABEL, OWNER_LABEL

from .conftest import TASKS_DIR, rid

HOLDER = """
import os, sys, time
from bashenv.env import BashSWEEnv
from bashenv.sandbox.pool import WarmPool

pool = WarmPool(size=2)
envs = [BashSWEEnv(sys.argv[1], warm_pool=pool) for _ in range(8)]
for env in envs:
    env.reset()
    env.step("true")  # the container runs from here on
child = os.fork()
if child == 0:
    sys.exit(0)  # a worker ending normally: its exit handlers run in the child
os.waitpid(child, 0)
dead = [env._box.why_dead() for env in envs if env._box.why_dead()]
print("after child exit:", dead or "all alive", flush=True)
survivor = os.fork()
if survivor == 0:
    time.sleep(600)  # a worker that outlives its parent
    os._exit(0)
print("survivor", survivor, flush=True)
print("ready", flush=True)
time.sleep(600)
"""


def _boxes(run_id: str) -> list[str]:
    """Sparse listing: a container removed while we look is simply not there."""
    return [c["Id"] for c in client().api.containers(all=True, filters={"label": f"{LABEL}={run_id}"})]


def _volumes(run_id: str) -> list[str]:
    found = client().api.volumes(filters={"label": f"{LABEL}={run_id}"}).get("Volumes") or []
    return [v["Name"] for v in found]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_killed_owner_leaves_no_container_and_no_volume(tmp_path, sig):
    run_id = rid(f"lifecycle-{sig.name}")
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    env = {**os.environ, "BASHENV_RUN_ID": run_id}
    proc = subprocess.Popen([sys.executable, str(script), str(TASKS_DIR / "textkit-truncate-width")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    survivor = 0
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("survivor "):
                survivor = int(line.split()[1])
            if line.strip() == "ready":
                break
        assert lines and lines[-1].strip() == "ready", "".join(lines)
        assert "after child exit: all alive" in "".join(lines), "".join(lines)
        deadline = time.monotonic() + 60
        while len(_boxes(run_id)) < 10 and time.monotonic() < deadline:  # 8 + the pool
            time.sleep(0.2)
        assert len(_boxes(run_id)) >= 10 and _volumes(run_id)
        time.sleep(1)  # the pool is full, nothing is being started
        os.kill(proc.pid, sig)
        proc.wait(timeout=10)
        killed = time.monotonic()
        while (_boxes(run_id) or _volumes(run_id)) and time.monotonic() - killed < 10:
            time.sleep(0.2)
        assert not _boxes(run_id) and not _volumes(run_id), \
            f"left after 10 s: {_boxes(run_id)}, volumes {_volumes(run_id)}"
        assert survivor and _alive(survivor)  # the forked worker held nothing that mattered
    finally:
        if proc.poll() is None:
            proc.kill()
        if survivor and _alive(survivor):
            os.kill(survivor, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_container_runs_only_while_its_switch_is_held(base_image):
    """The owner's stream ending (here: released without an API removal) stops the
    container, and the engine removes it with its volumes."""
    box = Container(SandboxSpec(image=base_image, run_id=rid("lifecycle-switch"), disk_mb=64))
    try:
        labels = client().api.inspect_container(box.id)["Config"]["Labels"]
        assert labels[DEADMAN_LABEL] == "stdin" and labels[OWNER_LABEL]
        assert _volumes(rid("lifecycle-switch"))
        assert box.why_dead() is None
        assert box._switch is not None
        box._switch.release()
        deadline = time.monotonic() + 10
        while (_boxes(rid("lifecycle-switch")) or _volumes(rid("lifecycle-switch"))) \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _boxes(rid("lifecycle-switch")) and not _volumes(rid("lifecycle-switch"))
        assert "exited" in (box.why_dead() or "")
    finally:
        box.remove()


def test_kill_all_but_init_spares_the_switch_not_an_impostor(base_image):
    """The agent cannot shelter a process from the host-side kill by naming it like the
    switch's process and handing it to init."""
    with Container(SandboxSpec(image=base_image, run_id=rid("lifecycle-kill"))) as box:
        quiet = ">/dev/null 2>&1"
        impostor = f"setsid sh -c 'dd of=/dev/null status=none </dev/zero {quiet} & exit' {quiet}"
        box.exec(["bash", "-c", f"{impostor}; sleep 300 {quiet} & exit 0"])
        assert box.kill_all_but_init()
        left = box.exec(["ps", "-eo", "args="]).text.splitlines()
        assert [line for line in left if line.startswith("dd ")] == ["dd of=/dev/null status=none"]
        assert not any("sleep" in line for line in left)
        assert box.why_dead() is None
