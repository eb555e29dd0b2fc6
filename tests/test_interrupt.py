"""Ctrl-C and SIGTERM of a running `bashenv run`: no leaked container, no partial result line."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from bashenv.sandbox.engine import client

from .conftest import TASKS_DIR


def _boxes_of(pid: int) -> list[str]:
    """Sparse listing: a container removed while we look is simply not there (the full
    listing inspects each one and fails with NotFound on a container removed meanwhile)."""
    return [c["Id"] for c in client().api.containers(all=True, filters={"label": f"bashenv.pid={pid}"})]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_leaks_nothing_writes_no_partial_line_and_resumes(tmp_path, sig):
    script = tmp_path / "cmds.txt"
    script.write_text("sleep 120\n")
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "bashenv.cli", "run", str(TASKS_DIR), "--agent", "replay",
           "--replay", str(script), "--workers", "2", "--output", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while len(_boxes_of(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_boxes_of(proc.pid)) == 2, "episodes did not start"
        time.sleep(1)  # let the commands get going
        proc.send_signal(sig)
        output = proc.communicate(timeout=60)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    assert "interrupted" in output
    assert not _boxes_of(proc.pid)
    assert not out.exists() or out.read_text() == ""
    script.write_text("true\n")  # resume: the same command finishes every task
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert len(out.read_text().splitlines()) == 3


ASYNC_LOOP = """
import asyncio, sys
from bashenv.env import BashSWEEnv
from bashenv.sandbox.pool import WarmPool

async def episode(env):
    await env.areset()
    await env.astep("sleep 300")

async def main():
    pool = WarmPool(size=2)
    envs = [BashSWEEnv(sys.argv[1], warm_pool=pool) for _ in range(8)]
    await asyncio.gather(*(episode(e) for e in envs))

asyncio.run(main())
"""


def test_ctrl_c_of_an_async_loop_with_a_warm_pool_leaks_nothing(tmp_path):
    """The RL-loop shape: many episodes in one event loop, a pool refilling behind them."""
    script = tmp_path / "loop.py"
    script.write_text(ASYNC_LOOP)
    proc = subprocess.Popen([sys.executable, str(script), str(TASKS_DIR / "textkit-truncate-width")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while len(_boxes_of(proc.pid)) < 10 and time.monotonic() < deadline:  # 8 + the pool
            time.sleep(0.2)
        assert len(_boxes_of(proc.pid)) >= 10, "episodes did not start"
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=60)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "KeyboardInterrupt" in output
    assert not _boxes_of(proc.pid), output
