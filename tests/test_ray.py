"""bashenv on a real Ray cluster of several nodes on this machine (no mocked Ray).

Ray binds the machine's interface address unless it lives in a network namespace of its
own, so pytest (in the host namespace) runs this same file as a driver script under
`unshare --net`: it starts a head and three workers (one whose Docker engine does not
answer), runs the scenarios, writes what it saw to report.json and stops every process it
started, by pid. The tests below check that report. Containers carry this session's run
ids, so the suite's leak check covers whatever the nodes started.

A real Docker registry (Debian's `docker-registry`) serves on 127.0.0.1 in the host's
namespace, where dockerd pushes and pulls (Docker treats 127.0.0.0/8 as an insecure
registry by default); the nodes only name it, their engine's daemon does the transfers.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PORT = 6399
REGISTRY = shutil.which("docker-registry")  # scripts/bootstrap.sh installs it

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


def drive(out: Path, run_prefix: str, registry: str) -> None:
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

        # 7. `bashenv eval --ray`, a grading's worker killed; resumed; read back locally.
        report["eval"] = _guarded(_eval_scenario, out, cluster, tasks, f"{run_prefix}-eval")

        # 8. `bashenv run --ray --registry`: task images pulled by the nodes, not built.
        report["registry"] = _guarded(_registry_scenario, out, cluster.address, registry,
                                      f"{run_prefix}-registry")
        report["healthy_nodes"] = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
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


# 7. `bashenv eval --ray`: a worker killed mid-grading, then the run resumed and re-read locally

def _instance_files(run_dir: Path) -> dict[str, str]:
    return {str(f.relative_to(run_dir)): f.read_text() for f in sorted(run_dir.rglob("*"))
            if f.is_file()}


def _eval_scenario(out: Path, cluster: Any, tasks: list[Any], run_id: str) -> dict[str, Any]:
    from bashenv.cluster.local import _with_children
    from bashenv.sandbox.engine import LABEL, client

    by_id = {t.id: t for t in tasks}
    predictions = out / "preds.jsonl"
    predictions.write_text("".join(json.dumps({"instance_id": i, "model_name_or_path": "m",
                                               "model_patch": p}) + "\n" for i, p in [
        ("textkit-truncate-width", by_id["textkit-truncate-width"].gold_patch),
        ("durations-spaces-case", by_id["durations-spaces-case"].gold_patch),
        ("intervals-merge-unsorted", ""), ("nope__nope-1", "x")]))
    # A cache of its own: verdicts of the same patches cached by other tests stay unused.
    env = {**os.environ, "BASHENV_CACHE": str(out / "cache")}
    bashenv = str(Path(sys.executable).with_name("bashenv"))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([bashenv, "eval", str(predictions), "--tasks", str(ROOT / "tasks"),
                               *args], capture_output=True, text=True, timeout=600, env=env)

    command = [bashenv, "eval", str(predictions), "--tasks", str(ROOT / "tasks"), "--ray",
               cluster.address, "-o", str(out / "eval-ray"), "--run-id", run_id]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
    killed: dict[str, Any] = {}
    deadline = time.monotonic() + 300
    while not killed and first.poll() is None and time.monotonic() < deadline:
        workers = _with_children({r for r in cluster.raylets if Path(f"/proc/{r}").exists()})
        for box in client().api.containers(filters={"label": f"{LABEL}={run_id}"}):  # sparse
            pid = int((box.get("Labels") or {}).get("bashenv.pid", 0))
            if pid in workers:  # a Ray worker grading right now: it dies as a machine would
                os.kill(pid, signal.SIGKILL)
                killed = {"pid": pid, "container": box.get("Names")}
                break
        time.sleep(0.1)
    stdout, stderr = first.communicate(timeout=600)
    ray_dir = out / "eval-ray"
    found = {"killed": killed, "rc": first.returncode, "stdout": stdout, "stderr": stderr,
             "files": _instance_files(ray_dir) if ray_dir.exists() else {},
             "containers_left": _containers(run_id)}
    again = cli("--ray", cluster.address, "-o", str(ray_dir), "--run-id", run_id)
    found["again"] = {"rc": again.returncode, "out": again.stdout + again.stderr,
                      "files": _instance_files(ray_dir)}
    local = cli("-o", str(out / "eval-local"), "--run-id", run_id)
    found["local"] = {"rc": local.returncode, "out": local.stdout + local.stderr,
                      "files": _instance_files(out / "eval-local")}
    return found


# 8. `bashenv run --ray --registry`: the nodes pull the task images another node pushed

def _registry_tasks(out: Path) -> Path:
    """Copies of the bundled tasks whose setup step makes their task images' tags unique."""
    target = out / "registry-tasks"
    shutil.copytree(ROOT / "tasks", target)
    token = secrets.token_hex(4)
    for yaml_file in target.glob("*/task.yaml"):
        text = yaml_file.read_text()
        first, rest = text.split("\n", 1)
        assert first.startswith("id: ") and "\nenvironment:" not in text, yaml_file
        yaml_file.write_text(f"{first}-{token}\n{rest.rstrip()}\nenvironment:\n  setup:\n"
                             f"    - echo {token} > /tmp/bashenv-registry-probe\n")
    return target


def _registry_scenario(out: Path, address: str, registry: str, run_id: str) -> dict[str, Any]:
    from bashenv.cluster.images import ensure_image
    from bashenv.images.build import image_tags
    from bashenv.sandbox.engine import client
    from bashenv.task import load_tasks

    tasks = load_tasks(_registry_tasks(out))
    tags = [image_tags(t)[2] for t in tasks]
    found: dict[str, Any] = {"tags": tags, "ids": [t.id for t in tasks]}
    try:
        # One node's work, done here: build the task images and push them. Then they are
        # dropped from the engine, so a node that runs one must pull it (or build it again).
        found["pushed_by_first"] = [ensure_image(t, registry)[1] for t in tasks]
        for tag in tags:
            client().images.remove(tag)
        run = subprocess.run(
            [str(Path(sys.executable).with_name("bashenv")), "run", str(out / "registry-tasks"),
             "--ray", address, "--registry", registry, "--output", str(out / "registry.jsonl"),
             "--run-id", run_id], capture_output=True, text=True, timeout=600)
        found.update(rc=run.returncode, out=run.stdout + run.stderr,
                     records=_lines(out / "registry.jsonl")
                     if (out / "registry.jsonl").exists() else [])
        found["labels"] = [client().images.get(tag).labels for tag in tags]
        found["registry_names"] = [t for i in client().images.list() for t in i.tags
                                   if t.startswith(registry)]
    finally:
        for tag in tags:  # only this scenario's unique tags
            with contextlib.suppress(Exception):
                client().images.remove(tag, force=True)
    return found


# -- the tests: run the driver once, check what it saw --------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_registry(store: Path) -> Iterator[str]:
    """A Docker registry on 127.0.0.1 in this namespace, storing under `store`; its HOST:PORT."""
    assert REGISTRY, "docker-registry is missing: scripts/bootstrap.sh installs it"
    port = _free_port()
    store.mkdir(parents=True, exist_ok=True)
    config = store / "config.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {store / 'data'}\n"
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


@pytest.fixture(scope="module")
def report() -> Any:
    out = Path(tempfile.mkdtemp(prefix="bashenv-test-ray-"))
    try:
        with serve_registry(out / "registry") as registry:
            proc = subprocess.run(["unshare", "--net", sys.executable, __file__, str(out),
                                   rid("ray"), registry],
                                  capture_output=True, text=True, timeout=2100)
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


def _verdicts(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {name.split("/")[0]: json.loads(text) for name, text in files.items()
            if name.endswith("/verdict.json")}


def test_eval_on_ray_survives_a_killed_worker_and_writes_the_local_layout(report):
    ev = report["eval"]
    assert "error" not in ev, ev["error"]
    assert ev["rc"] == 0, ev["stdout"] + ev["stderr"]
    assert ev["killed"], "no grading was caught on a worker"
    assert "1 prediction(s) name no task" in ev["stderr"]
    run = json.loads(ev["files"]["report.json"])
    assert run["resolved_ids"] == ["durations-spaces-case", "textkit-truncate-width"], run
    assert run["empty_patch_ids"] == ["intervals-merge-unsorted"] and run["error_ids"] == []
    assert run["submitted_instances"] == 3 and run["completed_instances"] == 2
    verdicts = _verdicts(ev["files"])
    healthy = {n["id"] for n in report["nodes"] if n["ok"]}
    graded = [verdicts[i] for i in ("durations-spaces-case", "textkit-truncate-width")]
    assert all(v["node"]["node_id"] in healthy and v["node"]["host"] for v in graded), graded
    # The killed worker's grading came back once, from a second attempt, and says so.
    retried = [e for v in graded for e in v["infra_errors"]]
    assert len(retried) == 1 and "on node" in retried[0], retried
    assert ev["containers_left"] == []
    for instance in ("durations-spaces-case", "textkit-truncate-width", "intervals-merge-unsorted"):
        assert {f"{instance}/{n}" for n in ("patch.diff", "report.json", "test_output.txt",
                                            "verdict.json")} <= set(ev["files"])


def test_eval_on_ray_resumes_and_matches_a_local_eval_file_for_file(report):
    ev = report["eval"]
    assert "error" not in ev, ev["error"]
    again = ev["again"]
    assert again["rc"] == 0, again["out"]
    assert again["out"].count("(cached)") == 2, again["out"]  # nothing graded a second time
    assert again["files"] == ev["files"]
    local = ev["local"]
    assert local["rc"] == 0, local["out"]
    assert local["out"].count("(cached)") == 2, local["out"]  # one cache for both
    assert local["files"] == ev["files"]  # same layout, same report.json, byte for byte


def test_run_with_a_registry_pulls_the_task_images_on_the_nodes(report):
    reg = report["registry"]
    assert "error" not in reg, reg["error"]
    # The first node builds each task's images (its environment layer too, unless an
    # earlier task's is the same) and pushes what it built.
    assert all(p["built"] >= 1 and p["pushed"] == p["built"] for p in reg["pushed_by_first"]), reg
    assert reg["rc"] == 0, reg["out"]
    records = reg["records"]
    assert len(records) == 3 and all(r["resolved"] for r in records), records
    assert all(r["images"] == {"pulled": 1, "built": 0, "pushed": 0} for r in records), \
        [r["images"] for r in records]
    healthy = {n["id"] for n in report["nodes"] if n["ok"]}
    ran_on = {r["node"]["node_id"] for r in records}
    assert len(ran_on) >= 2 and ran_on <= healthy, ran_on
    assert [labels["bashenv.task"] for labels in reg["labels"]] == reg["ids"]  # labels kept
    assert reg["registry_names"] == []  # pulled images carry their own names only


def test_everything_started_is_stopped(report):
    assert report["left_processes"] == []


if __name__ == "__main__":
    os.environ.setdefault("BASHENV_RUN_ID", sys.argv[2])
    drive(Path(sys.argv[1]), sys.argv[2], sys.argv[3])
