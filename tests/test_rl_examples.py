"""examples/policy_gradient.py runs as a user would run it (small), on the real engine."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from bashenv.sandbox.engine import LABEL, client

from .conftest import ROOT, rid


def test_policy_gradient_example_learns_from_every_episode_once(tmp_path: Path):
    run_id = rid("example-pg")
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "policy_gradient.py"), "--task",
         "textkit-truncate-width", "--episodes", "4", "--concurrency", "2", "--think", "0.05"],
        cwd=tmp_path, env={**os.environ, "BASHENV_RUN_ID": run_id}, capture_output=True,
        text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    episodes = [re.match(r"episode +(\d+) textkit-truncate-width +reward ([01]) versions \[([\d, ]+)\]"
                         r" ratio [\d.]+ -> version (\d+), p\(fix\) (0\.\d\d|1\.00)$", line)
                for line in lines[:4]]
    assert all(episodes), lines
    assert sorted(int(m.group(1)) for m in episodes if m) == [0, 1, 2, 3]  # each once
    assert [int(m.group(4)) for m in episodes if m] == [1, 2, 3, 4]  # one update per trajectory
    assert lines[4].startswith("done: 4 episodes, 4 updates, ")
    assert re.fullmatch(r"p\(fix\) textkit-truncate-width: (0\.\d\d|1\.00)", lines[5])
    assert not client().containers.list(all=True, sparse=True, filters={"label": f"{LABEL}={run_id}"})
