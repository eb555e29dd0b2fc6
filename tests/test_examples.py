"""The scripts in examples/ run as a user would run them (their own small defaults), on
the real engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT, TASKS_DIR, rid

EXAMPLES = ROOT / "examples"


def run_example(name: str, *args: str, run_id: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=cwd,
                          env={**os.environ, "BASHENV_RUN_ID": run_id},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_random_policy_runs_an_episode_to_a_verdict(tmp_path: Path):
    out = run_example("random_policy.py", "--tasks", str(TASKS_DIR / "textkit-truncate-width"),
                      run_id=rid("example-random"), cwd=tmp_path)
    lines = out.splitlines()
    assert lines[0] == "episode 0: task textkit-truncate-width"
    assert [line.split("  -> ")[0].strip() for line in lines[1:5]][-1] == "$ submit"
    assert len([line for line in lines if line.startswith("  $ ")]) == 4  # 3 random + submit
    assert lines[-1] == "  reward 0.0 (unresolved)"  # random commands fix nothing


def test_collect_sft_writes_resolved_gold_dialogs(tmp_path: Path):
    out = run_example("collect_sft.py", "--out", "data/sft.jsonl", run_id=rid("example-sft"),
                      cwd=tmp_path)
    assert out.splitlines()[-1] == "wrote 2 of 2 episodes to data/sft.jsonl"
    records = [json.loads(line) for line in (tmp_path / "data" / "sft.jsonl").read_text().splitlines()]
    task_ids = {p.parent.name for p in TASKS_DIR.glob("*/task.yaml")}
    assert len(records) == 2
    for record in records:
        assert record["task_id"] in task_ids and record["reward"] == 1.0
        assert record["outcome"] == "resolved" and record["model_patch"].startswith("diff --git")
        roles = [m["role"] for m in record["messages"]]
        assert roles == ["system", "user", "assistant", "user", "assistant", "user", "assistant"]
        assert record["messages"][-1]["content"] == "```bash\nsubmit\n```"
        assert "git apply" in record["messages"][4]["content"]
