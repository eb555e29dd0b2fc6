"""bashenv on a real Ray cluster of several nodes on this machine (no mocked Ray).

Ray binds the machine's interface address unless it lives in a network namespace of its
own, so pytest (in the host namespace) runs this same file as a driver script under
`unshare --net`: it starts a head and three workers (one whose Docker engine does not
answer), runs the scenarios, writes what it saw to report.json and stops every process it
started, by pid. The tests below check that report. Containers carry this session's run
ids, so the suite's leak check covers whatever the nodes started.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PORT = 6399

if __name__ != "__main__":
    # Ray is in the dev extra: a broken install fails here instead of skipping the tests.
    import ray  # noqa: F401

    from tests.conftest import rid

    pytestmark = [pytest.mark.slow, pytest.mark.skipif(
        shutil.which("unshare") is None or os.geteuid() != 0,
        reason="needs root and unshare for the cluster's own network namespace")]


# -- the driver: runs inside the namespace ---------------------------------------------------

def _slow_gold() -> Any:
    """The gold agent after a pause, so that episodes are still running when a node dies."""
    from bashenv.agents import GoldAgent

    class SlowGold(GoldAgent):
        name = "slow-gold"

        def commands(self, task: Any) -> list[str]:
            return ["sleep 12", *super().commands(task)]

    return SlowGold()


def _containers(run_id: str) -> list[str]:
    from bashenv.sandbox.engine import LABEL, client

    # Sparse: the API's list, no inspect per container (one may go between the two).
    return [c["Id"] for c in client().api.containers(all=True, filters={"label": f"{LABEL}={run_id}"})]


def _guarded(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """fn's result, or {"error": traceback} so that one scenario's failure is reported and
    the scenarios after it still run."""
    try:
        return fn(*args, **kwargs)
    except Exception:
        return {"error": traceback.format_exc()[-3000:]}


def _until_episode_on(cluster: Any, index: int, run_id: str) -> float:
    """Seconds until a container of `run_id` is owned by a worker of node `index` (a child
    of its raylet: the container's bashenv.pid label names the owning worker)."""
    from bashenv.cluster.local import _with_children
    from bashenv.sandbox.engine import LABEL, client

    started = time.monotonic()
    while time.monotonic() - started < 300:
        workers = _with_children({cluster.raylets[index]})
        boxes = client().api.containers(filters={"label": f"{LABEL}={run_id}"})  # sparse
        if any(int((box.get("Labels") or {}).get("bashenv.pid", 0)) in workers for box in boxes):
            return round(time.monotonic() - started, 1)
        time.sleep(0.5)
    raise AssertionError(f"no episode of {run_id} started on node {index}")


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def drive(out: Path, run_prefix: str) -> None:
    from bashenv.cluster.jobs import run_on_ray
    from bashenv.cluster.local import LocalCluster
    from bashenv.task import load_tasks

    report: dict[str, Any] = {}
    tasks = load_tasks(ROOT / "tasks")
    cluster = LocalCluster(out / "ray", PORT)
    try:
        started = time.monotonic()
        cluster.start_head(1)
        cluster.add_worker(1)
        cluster.add_worker(1)
        cluster.add_worker(1, env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
        report["cluster_start_s"] = round(time.monotonic() - started, 1)
        from bashenv.cluster.nodes import connect, survey

        ray = connect(cluster.address)
        report["nodes"] = [n.__dict__ for n in survey(ray)]

        # 1. The CLI: the bundled tasks spread over the nodes, the broken node excluded.
        cli = subprocess.run(
            [str(Path(sys.executable).with_name("bashenv")), "run", str(ROOT / "tasks"),
             "--ray", cluster.address, "--output", str(out / "cli.jsonl"),
             "--run-id", f"{run_prefix}-cli"], capture_output=True, text=True, timeout=600)
        report["cli"] = {"rc": cli.returncode, "stdout": " ".join(cli.stdout.split()),
                         "stderr": " ".join(cli.stderr.split()), "records": _lines(out / "cli.jsonl")
                         if (out / "cli.jsonl").exists() else []}

        # 2. A node dies mid-run: its episode goes elsewhere, nothing lost or doubled.
        kill_run = f"{run_prefix}-kill"
        said: list[str] = []
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                result["records"] = run_on_ray(tasks, _slow_gold, out / "kill.jsonl",
                                               address=cluster.address, run_id=kill_run,
                                               say=said.append)
            except Exception as exc:
                result["error"] = repr(exc)

        worker = threading.Thread(target=run)
        worker.start()
        victim = ray.nodes()  # the node ids before the kill, to name the victim
        report["kill_waited_s"] = _until_episode_on(cluster, 2, kill_run)
        cluster.kill_node(2)
        killed_at = time.monotonic()
        worker.join(600)
        report["kill"] = {
            "error": result.get("error"), "said": said,
            "victim_raylet": cluster.raylets[2], "nodes_before": [n["NodeID"] for n in victim],
            "dead_nodes": [n["NodeID"] for n in ray.nodes() if not n["Alive"]],
            "lines": _lines(out / "kill.jsonl") if (out / "kill.jsonl").exists() else [],
            "seconds_after_kill": round(time.monotonic() - killed_at, 1),
            "containers_left": _containers(kill_run),
        }

        # 3. The env with backend="ray": its sandbox lives on a node, behind an actor.
        report["env"] = _env_scenario(tasks, f"{run_prefix}-env", cluster.address)

        # 4. The driver dies (SIGKILL) with a sandbox open on a node: nothing stays.
        report["driver_death"] = _guarded(_driver_death, f"{run_prefix}-orphan", cluster.address)

        # 5. The rollout example: N in flight, trajectories streamed as they finish.
        example = _guarded(
            subprocess.run,
            [sys.executable, str(ROOT / "examples" / "ray_rollouts.py"), str(ROOT / "tasks"),
             "--address", cluster.address, "--in-flight", "2", "--episodes", "4",
             "--run-id", f"{run_prefix}-rollouts"], capture_output=True, text=True, timeout=600)
        report["rollouts"] = example if isinstance(example, dict) else {
            "rc": example.returncode, "stdout": example.stdout, "stderr": example.stderr[-3000:]}

        # 6. Gradings as Ray tasks: the gold patch and no change, on the nodes.
        from bashenv.cluster.grading import grade_on_ray

        textkit = next(t for t in tasks if t.id == "textkit-truncate-width")
        verdicts = _guarded(grade_on_ray, [(textkit, textkit.gold_patch or ""), (textkit, "")],
                            address=cluster.address, run_id=f"{run_prefix}-grade")
        report["gradings"] = verdicts if isinstance(verdicts, dict) else [
            {"outcome": v["outcome"], "node": v["node"]["node_id"]} for v in verdicts]
    finally:
        cluster.stop()
        report["left_processes"] = [p for p, (_, cmd) in __import__(
            "bashenv.cluster.local", fromlist=["_processes"])._processes().items()
            if str(out / "ray") in cmd and p != os.getpid()]
        (out / "report.json").write_text(json.dumps(report, indent=1, default=str))


def _env_scenario(tasks: list[Any], run_id: str, address: str) -> dict[str, Any]:
    import gymnasium as gym

    import bashenv  # noqa: F401  (registers BashSWE-v0)
    from bashenv.agents import GoldAgent

    os.environ["BASHENV_RAY_ADDRESS"] = address
    task = next(t for t in tasks if t.id == "textkit-truncate-width")
    env = gym.make("BashSWE-v0", tasks=[task], backend="ray", run_id=run_id)
    try:
        obs, _ = env.reset(seed=0)
        obs, *_ = env.step("cd /repo && echo hello && pwd")
        first = obs["output"]
        latencies = []
        for _ in range(30):
            t = time.perf_counter()
            env.step("true")
            latencies.append((time.perf_counter() - t) * 1000)
        node = getattr(env.unwrapped.sandbox, "node", None)
        agent = GoldAgent()
        agent.reset(task, obs)
        reward, info = 0.0, {}
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step(agent.act(obs))
            done = terminated or truncated
        latencies.sort()
        return {"first_output": first, "reward": reward, "node": node,
                "outcome": (info.get("verdict") or {}).get("outcome"), "error": info.get("error"),
                "step_ms_p50": round(latencies[len(latencies) // 2], 2),
                "step_ms_p90": round(latencies[int(len(latencies) * 0.9)], 2)}
    except Exception as exc:
        return {"error": repr(exc)}
    finally:
        env.close()


ORPHAN_DRIVER = """
import os, sys, gymnasium as gym, bashenv
os.environ["BASHENV_RAY_ADDRESS"] = sys.argv[1]
env = gym.make("BashSWE-v0", tasks="textkit-truncate-width", backend="ray", run_id=sys.argv[2])
env.reset(seed=0)
env.step("sleep 1")
print("ready", flush=True)
sys.stdin.read()
"""


def _driver_death(run_id: str, address: str) -> dict[str, Any]:
    driver = subprocess.Popen([sys.executable, "-c", ORPHAN_DRIVER, address, run_id],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = driver.stdout.readline().strip() if driver.stdout else ""
    before = _containers(run_id)
    killed = time.monotonic()
    driver.kill()
    driver.wait()
    left = before
    while left and time.monotonic() - killed < 60:
        time.sleep(0.5)
        left = _containers(run_id)
    return {"ready": ready, "before": len(before), "left": left,
            "gone_after_s": round(time.monotonic() - killed, 1)}


# -- the tests: run the driver once, check what it saw --------------------------------------

@pytest.fixture(scope="module")
def report() -> Any:
    out = Path(tempfile.mkdtemp(prefix="bashenv-test-ray-"))
    try:
        proc = subprocess.run(["unshare", "--net", sys.executable, __file__, str(out), rid("ray")],
                              capture_output=True, text=True, timeout=1500)
        found = out / "report.json"
        assert found.exists(), f"driver failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        shutil.copyfile(found, Path(tempfile.gettempdir()) / "bashenv-test-ray-report.json")
        yield json.loads(found.read_text())
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_cli_spreads_the_bundled_tasks_over_nodes_and_excludes_a_node_without_docker(report):
    cli = report["cli"]
    assert cli["rc"] == 0, cli["stdout"] + cli["stderr"]
    records = cli["records"]
    assert sorted(r["task_id"] for r in records) == sorted(
        ["durations-spaces-case", "intervals-merge-unsorted", "textkit-truncate-width"])
    assert all(r["resolved"] for r in records), records
    broken = [n["id"] for n in report["nodes"] if not n["ok"]]
    assert len(broken) == 1 and "No Docker engine answers" in next(
        n["reason"] for n in report["nodes"] if not n["ok"])
    assert "excluded: No Docker engine answers" in cli["stderr"]  # said to the user
    ran_on = {r["node"]["node_id"] for r in records}
    assert len(ran_on) >= 2 and not ran_on & set(broken)  # spread, never on the broken node
    assert all(r["node"]["host"] for r in records)


def test_a_node_killed_mid_run_loses_and_doubles_nothing(report):
    kill = report["kill"]
    assert kill["error"] is None, kill
    lines = kill["lines"]
    ids = [r["task_id"] for r in lines]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 3, ids  # each task exactly once
    assert all(r["resolved"] for r in lines), lines
    assert len(kill["dead_nodes"]) == 1
    dead = kill["dead_nodes"][0]
    moved = [r for r in lines if r["infra_errors"]]
    assert moved, "no episode was rescheduled"
    assert all(r["node"]["node_id"] != dead for r in lines)  # finished elsewhere
    assert any(dead[:12] in e for r in moved for e in r["infra_errors"])
    assert any("lost" in line for line in kill["said"])
    assert kill["containers_left"] == []  # the dead worker's switches ended its containers


def test_env_with_ray_backend_runs_an_episode_on_a_node(report):
    env = report["env"]
    assert env.get("error") is None, env
    assert "hello" in env["first_output"] and "/repo" in env["first_output"]
    assert env["reward"] == 1.0 and env["outcome"] == "resolved"
    assert env["node"] and env["node"]["node_id"] in {n["id"] for n in report["nodes"] if n["ok"]}


def test_a_killed_driver_leaves_no_sandbox_on_the_nodes(report):
    death = report["driver_death"]
    assert "error" not in death, death["error"]
    assert death["ready"] == "ready" and death["before"] >= 1, death
    assert death["left"] == [], death


def test_rollout_example_streams_trajectories_with_n_in_flight(report):
    rollouts = report["rollouts"]
    assert "error" not in rollouts, rollouts["error"]
    assert rollouts["rc"] == 0, rollouts["stderr"]
    lines = [line for line in rollouts["stdout"].splitlines() if "reward=" in line]
    assert len(lines) == 4 and all("reward=1.0" in line for line in lines), rollouts["stdout"]


def test_gradings_run_on_healthy_nodes(report):
    gradings = report["gradings"]
    assert "error" not in gradings, gradings
    assert [g["outcome"] for g in gradings] == ["resolved", "unresolved"], gradings
    healthy = {n["id"] for n in report["nodes"] if n["ok"]}
    assert all(g["node"] in healthy for g in gradings)


def test_everything_started_is_stopped(report):
    assert report["left_processes"] == []


if __name__ == "__main__":
    os.environ.setdefault("BASHENV_RUN_ID", sys.argv[2])
    drive(Path(sys.argv[1]), sys.argv[2])
