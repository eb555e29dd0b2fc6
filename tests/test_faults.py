"""Faults: a killed container, a restarted engine, failing and disk-full builds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import yaml

from bashenv.agents import GoldAgent, ReplayAgent
from bashenv.env import BashSWEEnv
from bashenv.errors import ImageBuildError
from bashenv.images import image_tags
from bashenv.images.build import build_task_image
from bashenv.runner import INFRA_ERROR, ResultsFile, run_benchmark
from bashenv.sandbox.engine import LABEL, client
from bashenv.task import load_task, load_tasks

from .conftest import ROOT, TASKS_DIR, rid
from .private_engine import PrivateEngine


def _agent_boxes(run_id: str, task_id: str | None = None) -> list:
    labels = [f"{LABEL}={run_id}", "bashenv.role=agent"]
    if task_id:
        labels.append(f"bashenv.task={task_id}")
    return client().containers.list(sparse=True, filters={"label": labels})


def _wait_for(predicate, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def test_container_killed_mid_episode_is_an_infra_error(textkit):
    env = BashSWEEnv(textkit, run_id=rid("faults"))
    try:
        env.reset()
        env.step("true")
        client().api.kill(env._box.id)
        obs, reward, terminated, truncated, info = env.step("echo hi")
        assert truncated and not terminated and reward == 0.0
        assert "verdict" not in info and "exited" in info["error"]
        assert "sandbox error" in obs["output"]
    finally:
        env.close()


def test_runner_goes_on_after_a_killed_container_and_retries_it(tmp_path):
    tasks = load_tasks(TASKS_DIR)
    script = tmp_path / "cmds.txt"
    script.write_text("sleep 3\n")
    results = tmp_path / "out.jsonl"
    victim = tasks[0].id

    def kill_victim() -> None:
        _wait_for(lambda: _agent_boxes(rid("faults"), victim))
        time.sleep(0.5)
        client().api.kill(_agent_boxes(rid("faults"), victim)[0].id)

    killer = threading.Thread(target=kill_victim)
    killer.start()
    records = run_benchmark(tasks, lambda: ReplayAgent(script), results, workers=3,
                            run_id=rid("faults"), infra_retries=0)
    killer.join()
    outcomes = {r["task_id"]: r["outcome"] for r in records}
    assert outcomes[victim] == INFRA_ERROR
    assert all(o == "unresolved" for t, o in outcomes.items() if t != victim)
    assert ResultsFile(results).finished("replay") == {t.id for t in tasks} - {victim}
    again = run_benchmark(tasks, lambda: ReplayAgent(script), results, workers=3)
    assert {r["task_id"]: r["outcome"] for r in again}[victim] == "unresolved"
    assert len(results.read_text().splitlines()) == len(tasks) + 1  # only the victim re-ran


@pytest.mark.skipif(shutil.which("dockerd") is None, reason="needs dockerd to start an engine")
def test_engine_restart_mid_run_is_reported_and_resumed(tmp_path, tasks):
    """On an engine of the test's own: restarting the shared one would kill others' work."""
    images = sorted({tag for task in tasks.values() for tag in image_tags(task)})
    script = tmp_path / "cmds.txt"
    script.write_text("sleep 4\n")
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "bashenv.cli", "run", str(TASKS_DIR), "--agent", "replay",
           "--replay", str(script), "--workers", "1", "--output", str(out)]
    with PrivateEngine(images) as private:
        env = {**os.environ, "DOCKER_HOST": private.url}
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT,
                                env=env)
        try:
            with private.client() as engine:
                _wait_for(lambda: engine.containers(
                    filters={"label": [f"bashenv.pid={proc.pid}", "bashenv.role=agent"]}), 120)
            private.restart()
            output = proc.communicate(timeout=300)[0].decode()
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, output
        first = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(first) == 3 and all(r["outcome"] == "unresolved" for r in first), first
        retried = [r for r in first if r["attempts"] == 2]
        assert len(retried) == 1 and retried[0]["infra_errors"], first  # the episode in flight
        assert "retried after an infrastructure error" in output
        rerun = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert len(out.read_text().splitlines()) == 3  # nothing finished is redone
        with private.client() as engine:
            assert not engine.containers(all=True, filters={"label": LABEL})


def _task_file(tmp_path, **extra) -> object:
    (tmp_path / "repo").mkdir(exist_ok=True)
    (tmp_path / "repo" / "mod.py").write_text("X = 1\n")
    spec = {"id": "fault-task", "repo": "repo", "problem_statement": "x",
            "tests": {"fail_to_pass": ["tests/test_a.py::test_a"]}, **extra}
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(spec))
    return load_task(tmp_path / "task.yaml")


def test_failing_build_step_is_named_and_the_run_goes_on(tmp_path, textkit):
    broken = _task_file(tmp_path, environment={"setup": ["echo preparing", "exit 3"]},
                        gold_patch="diff --git a/mod.py b/mod.py\n")
    def leftovers() -> set[str]:
        return {image.id for image in client().images.list(all=True) if not image.tags}

    before = leftovers()
    with pytest.raises(ImageBuildError, match=r"task fault-task failed at Step \d+/\d+ : RUN exit 3"):
        build_task_image(broken)
    assert leftovers() <= before  # the steps that did run left no images behind
    records = run_benchmark([broken, textkit], GoldAgent, tmp_path / "out.jsonl",
                            run_id=rid("faults"))
    outcomes = {r["task_id"]: r for r in records}
    assert outcomes["fault-task"]["outcome"] == "error"
    assert "RUN exit 3" in outcomes["fault-task"]["error"]
    assert outcomes[textkit.id]["outcome"] == "resolved"


def test_disk_full_while_building_names_the_task_and_step(tmp_path, monkeypatch):
    task = _task_file(tmp_path)
    (tmp_path / "repo" / "big.bin").write_bytes(b"\0" * (4 << 20))
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], check=True)
    try:
        monkeypatch.setattr(tempfile, "tempdir", str(small))
        with pytest.raises(ImageBuildError, match=r"task fault-task failed at step 'export the "
                                                  r"repository.*No space left"):
            build_task_image(task)
    finally:
        subprocess.run(["umount", str(small)], check=True)
