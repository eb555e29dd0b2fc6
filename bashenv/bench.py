"""`bashenv bench`: speed and memory figures of bashenv beside the peer approaches.

Run on demand (not a test). Prints a table, or one JSON object with --json. The peer
figures use the same machine, image and command: a fresh `docker exec` per command
(what mini-swe-agent, R2E-Gym and SkyRL do), the docker SDK's `exec_run`, and
mini-swe-agent's own DockerEnvironment when it is installed (`pip install bashenv[bench]`).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bashenv.agents import GoldAgent
from bashenv.env import BashSWEEnv
from bashenv.errors import BashenvError
from bashenv.grading import Rewarder
from bashenv.images import build_images, ensure_task_image
from bashenv.sandbox import PROCESS_RUN_ID, SandboxSpec, get_backend
from bashenv.sandbox.engine import ENGINE_ERRORS, client
from bashenv.sandbox.pool import WarmPool
from bashenv.task import Task

BENCH_RUN = f"{PROCESS_RUN_ID}-bench"  # the container label when no run id is given

GOALS = {  # key: (goal, "<=")
    "step_p50_ms": 1.0, "step_p99_ms": 3.0, "reset_warm_p50_ms": 50.0,
    "reset_cold_p50_ms": 500.0, "grading_overhead_p50_s": 0.5, "canary_cost_p50_s": 0.1,
    "concurrent32_step_p50_ms": 5.0, "host_rss_per_env_mb": 5.0, "rebuild_unchanged_s": 1.0,
    "fork_cold_p50_ms": 500.0, "agent_loop_overhead_p50_ms": 1.0,
}


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _timed(fn: Callable[[], Any], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def _wait_ready(pool: WarmPool, env: BashSWEEnv) -> None:
    spec = env.sandbox.spec if env.sandbox else None
    deadline = time.monotonic() + 30
    while spec is not None and pool.ready(spec, with_shell=True) < 1 and time.monotonic() < deadline:
        time.sleep(0.02)


def bench_steps(task: Task, n: int, run_id: str = BENCH_RUN) -> dict[str, float]:
    env = BashSWEEnv(task, run_id=run_id, max_steps=n + 100)
    try:
        env.reset()
        for _ in range(20):
            env.step("true")
        samples = _timed(lambda: env.step("true"), n)
    finally:
        env.close()
    return {"step_p50_ms": _pct(samples, 0.5) * 1e3, "step_p99_ms": _pct(samples, 0.99) * 1e3}


def bench_resets(task: Task, n: int, run_id: str = BENCH_RUN) -> dict[str, float]:
    pool = WarmPool(size=2)
    warm_env = BashSWEEnv(task, warm_pool=pool, run_id=run_id)
    cold_env = BashSWEEnv(task, run_id=run_id)
    try:
        warm_env.reset()
        warm, cold = [], []
        for _ in range(n):
            _wait_ready(pool, warm_env)  # a warm pool is the premise of this figure
            warm += _timed(lambda: (warm_env.reset(), warm_env.step("true")), 1)
        cold_env.reset()
        cold_env.step("true")
        for _ in range(max(3, n // 2)):
            cold += _timed(lambda: (cold_env.reset(), cold_env.step("true")), 1)
    finally:
        warm_env.close()
        cold_env.close()
        pool.close()
    return {"reset_warm_p50_ms": statistics.median(warm) * 1e3,
            "reset_cold_p50_ms": statistics.median(cold) * 1e3}


def bench_grading(task: Task, n: int, run_id: str = BENCH_RUN) -> dict[str, float]:
    """The gold patch through the env: `submit` to verdict, less the test command's own
    time (measured in the box around it), from a warm pool."""
    pool = WarmPool(size=2)
    env = BashSWEEnv(task, warm_pool=pool, run_id=run_id)
    grader = Rewarder(task, ensure_task_image(task), run_id, pool=pool)  # the env's spec
    overheads, totals = [], []
    try:
        grader.prefill()
        for _ in range(n):
            obs, _ = env.reset()
            agent = GoldAgent()
            agent.reset(task, obs)
            for _ in range(2):
                obs, *_ = env.step(agent.act(obs))
            # The pool refilled (agent and grading containers), as between real episodes:
            # the premise of this figure, and no container start competing with it.
            spec = env.sandbox.spec if env.sandbox else None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (pool.ready(grader.spec) < pool.size or (
                    spec is not None and pool.ready(spec, with_shell=True) < pool.size)):
                time.sleep(0.02)
            time.sleep(0.2)
            started = time.perf_counter()
            *_, info = env.step("submit")
            total = time.perf_counter() - started
            assert info["verdict"]["outcome"] == "resolved", info["verdict"]
            totals.append(total)
            overheads.append(total - info["verdict"]["test_seconds"])
    finally:
        env.close()
        pool.close()
    return {"grading_overhead_p50_s": statistics.median(overheads),
            "grading_total_p50_s": statistics.median(totals)}


def bench_fork(task: Task, n: int, sizes_mb: tuple[int, ...] = (1, 10, 100),
               run_id: str = BENCH_RUN) -> dict[str, float]:
    """env.fork() mid-episode: into a cold box, into a warm one, and with `sizes_mb` MB
    of extra files in the repository (100 KB each, incompressible)."""
    figures: dict[str, float] = {}
    pool = WarmPool(size=1)
    for name, warm in (("cold", None), ("warm", pool)):
        env = BashSWEEnv(task, run_id=run_id, warm_pool=warm or 0)
        try:
            env.reset()
            env.step("cd /repo && echo changed >> README.md && export BENCH=1")
            samples = []
            for _ in range(n):
                if warm is not None:
                    _wait_ready(pool, env)
                started = time.perf_counter()
                twin = env.fork()
                samples.append(time.perf_counter() - started)
                twin.close()
            figures[f"fork_{name}_p50_ms"] = statistics.median(samples) * 1e3
            if warm is None:
                for size in sizes_mb:
                    env.step(f"mkdir -p /repo/bulk && for i in $(seq {size * 10}); do "
                             "head -c 102400 /dev/urandom > /repo/bulk/f$i; done")
                    sized = []
                    for _ in range(max(1, n // 3)):
                        started = time.perf_counter()
                        twin = env.fork()
                        sized.append(time.perf_counter() - started)
                        twin.close()
                    figures[f"fork_cold_{size}mb_p50_ms"] = statistics.median(sized) * 1e3
                    env.step("rm -rf /repo/bulk")
        finally:
            env.close()
    pool.close()
    return figures


def bench_canaries(task: Task, n: int, run_id: str = BENCH_RUN) -> dict[str, float]:
    """What canary tests add to a grading: the gold patch graded with and without them, in
    turns, from one warm pool (the first round pays for the image's probe, and is dropped)."""
    off = task.model_copy(update={"tests": task.tests.model_copy(update={"canaries": False})})
    pool = WarmPool(size=2)
    image = ensure_task_image(task)
    graders = [Rewarder(task, image, run_id, pool=pool), Rewarder(off, image, run_id, pool=pool)]
    seconds: list[list[float]] = [[], []]
    try:
        graders[0].prefill()
        for _ in range(n + 1):
            for grader, samples in zip(graders, seconds, strict=True):
                time.sleep(0.3)  # let the pool refill, as between real gradings
                verdict = grader.grade(task.gold_patch or "")
                assert verdict.outcome == "resolved", verdict
                samples.append(verdict.seconds)
    finally:
        pool.close()
    return {"canary_cost_p50_s": statistics.median(seconds[0][1:]) - statistics.median(seconds[1][1:])}


def bench_concurrency(task: Task, envs_n: int, rounds: int, run_id: str = BENCH_RUN) -> dict[str, float]:
    async def main() -> tuple[list[float], float]:
        rss_before = _rss_mb()
        envs = [BashSWEEnv(task, run_id=run_id, max_steps=rounds + 10) for _ in range(envs_n)]
        try:
            await asyncio.gather(*(e.areset() for e in envs))
            await asyncio.gather(*(e.astep("true") for e in envs))  # live shells
            rss_per_env = (_rss_mb() - rss_before) / envs_n

            async def timed_step(env: BashSWEEnv) -> float:
                started = time.perf_counter()
                await env.astep("true")
                return time.perf_counter() - started

            samples: list[float] = []
            for _ in range(rounds):
                samples += await asyncio.gather(*(timed_step(e) for e in envs))
            return samples, rss_per_env
        finally:
            for env in envs:
                env.close()

    samples, rss = asyncio.run(main())
    return {"concurrent32_step_p50_ms": _pct(samples, 0.5) * 1e3,
            "concurrent32_step_p99_ms": _pct(samples, 0.99) * 1e3, "host_rss_per_env_mb": rss}


def bench_threads(task: Task, envs_n: int, rounds: int, run_id: str = BENCH_RUN) -> dict[str, float]:
    """The same lock-step rounds with the sync API from a thread pool, one env per thread."""
    envs = [BashSWEEnv(task, run_id=run_id, max_steps=rounds + 10) for _ in range(envs_n)]
    try:
        with ThreadPoolExecutor(envs_n) as pool:
            list(pool.map(lambda e: (e.reset(), e.step("true")), envs))
            samples: list[float] = []
            for _ in range(rounds):
                samples += pool.map(lambda e: _timed(lambda: e.step("true"), 1)[0], envs)
    finally:
        for env in envs:
            env.close()
    return {"threads32_step_p50_ms": _pct(samples, 0.5) * 1e3}


def bench_rebuild(tasks: list[Task]) -> dict[str, float]:
    build_images(tasks)  # make sure everything exists first
    started = time.perf_counter()
    built = sum(build_images(tasks).values())
    return {"rebuild_unchanged_s": time.perf_counter() - started, "rebuild_unchanged_builds": built}


def bench_peers(image: str, n: int, run_id: str = BENCH_RUN) -> dict[str, float]:
    figures: dict[str, float] = {}
    box = get_backend("docker").start(SandboxSpec(image=image, run_id=run_id))
    try:
        cli = _timed(lambda: subprocess.run(["docker", "exec", box.id, "bash", "-c", "true"],
                                            check=True, capture_output=True), n)
        sdk = _timed(lambda: box.exec(["bash", "-c", "true"]), n)
    finally:
        box.remove()
    figures["peer_exec_step_p50_ms"] = statistics.median(cli) * 1e3
    figures["peer_sdk_exec_step_p50_ms"] = statistics.median(sdk) * 1e3
    try:
        from minisweagent.environments.docker import DockerEnvironment
    except ImportError:
        return figures
    mini = DockerEnvironment(image=image, cwd="/repo",
                             run_args=["--rm", "--network", "none", "--label", f"bashenv={run_id}"])
    try:
        samples = _timed(lambda: _mini_execute(mini, "true"), n)
        figures["minisweagent_step_p50_ms"] = statistics.median(samples) * 1e3
    finally:
        _remove_mini(mini)
    return figures


def _remove_mini(env: Any) -> None:
    """mini-swe-agent's own cleanup stops its container in the background (up to 10 s
    later); the benchmark removes it now so that it leaves nothing behind."""
    try:
        client().containers.get(env.container_id).remove(force=True)
    except (*ENGINE_ERRORS, AttributeError, TypeError):
        env.cleanup()


def _mini_execute(env: Any, command: str) -> Any:
    try:
        return env.execute(command)
    except (TypeError, AttributeError):  # mini-swe-agent 2.x takes an action dict
        return env.execute({"command": command})


def bench_agent_loop(task: Task, n: int) -> dict[str, float]:
    """What the llm agent and the runner add per step beyond the model call and the command:
    rendering prompts, parsing the reply, budgets, history upkeep and the trajectory/cast
    lines. The "model" here answers instantly in-process (its time is not ours to count)."""
    import tempfile

    try:
        from openai.types.chat import ChatCompletion
    except ImportError:  # the llm extra is not installed: no figure
        return {}

    from bashenv.agents.llm import LLMAgent
    from bashenv.runner.trajectory import TrajectoryWriter

    reply = ChatCompletion.model_validate({
        "id": "c", "object": "chat.completion", "created": 0, "model": "bench",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Look at the tests.", "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": "bash", "arguments": '{"command": "ls -la tests"}'}}]}}],
        "usage": {"prompt_tokens": 900, "completion_tokens": 20, "total_tokens": 920}})

    class Instant:  # the shape of openai.OpenAI().chat.completions.create
        def __init__(self) -> None:
            self.chat = self
            self.completions = self

        def create(self, **_: Any) -> ChatCompletion:
            return reply

    agent = LLMAgent(client=Instant(), model="bench",
                     budgets={"steps": None, "tokens": None, "seconds": None})
    obs = {"output": "total 8\n" + "-rw-r--r-- 1 agent agent 512 test_x.py\n" * 40,
           "exit_code": 0, "timed_out": 0, "output_truncated": 0}
    samples = []
    with tempfile.TemporaryDirectory() as tmp:
        writer = TrajectoryWriter(Path(tmp), "bench")
        writer.header({"task_id": task.id, "agent": "llm", "intro": "bench"})
        for i in range(n):
            if i % 100 == 0:  # episodes of 100 steps: the history grows as in real ones
                agent.reset(task, obs)
            started = time.perf_counter()
            action = agent.act(obs)
            writer.step(i + 1, action, obs, writer.elapsed(), 0.0, 0.0, agent.step_info())
            samples.append(time.perf_counter() - started)
        writer.close()
    return {"agent_loop_overhead_p50_ms": statistics.median(samples) * 1e3,
            "agent_loop_overhead_p99_ms": _pct(samples, 0.99) * 1e3}


def _tracing(task: Task, quick: bool, run_id: str) -> dict[str, float]:
    from bashenv.trace.measure import tracing_overhead

    return tracing_overhead(task, 2 if quick else 5, run_id)


GROUPS = ("rebuild", "steps", "resets", "grading", "canaries", "fork", "concurrency",
          "threads", "agent-loop", "tracing", "peers")
PER_TASK = ("resets", "grading")  # with --only, measured on every task given


def run_bench(tasks: list[Task], quick: bool = False, progress: Callable[[str], None] = print,
              run_id: str | None = None, only: set[str] | None = None) -> dict[str, float]:
    """Every figure (or the groups in `only`, see GROUPS); the containers carry the label
    `run_id` (default BENCH_RUN). Figures are of the first task; with `only`, the PER_TASK
    groups are measured on each task, their keys suffixed `@<task id>` when there are several."""
    unknown = sorted((only or set()) - set(GROUPS))
    if unknown:
        raise BashenvError(f"bench: unknown figure group(s) {', '.join(unknown)}; "
                           f"choose from {', '.join(GROUPS)}")
    rid = run_id or BENCH_RUN
    task = tasks[0]
    figures: dict[str, float] = {}
    steps: list[tuple[str, str, Callable[[], dict[str, float]]]] = [
        ("rebuild", "images: rebuild of unchanged tasks", lambda: bench_rebuild(tasks)),
        ("steps", "step round trips", lambda: bench_steps(task, 300 if quick else 2000, rid)),
        ("resets", "resets, warm and cold", lambda: bench_resets(task, 8 if quick else 20, rid)),
        ("grading", "grading overhead", lambda: bench_grading(task, 3 if quick else 8, rid)),
        ("canaries", "canary tests in a grading",
         lambda: bench_canaries(task, 3 if quick else 8, rid)),
        ("fork", "env.fork()", lambda: bench_fork(task, 4 if quick else 10,
                                                  (1, 10) if quick else (1, 10, 100), rid)),
        ("concurrency", "32 concurrent episodes",
         lambda: bench_concurrency(task, 32, 10 if quick else 40, rid)),
        ("threads", "32 episodes from a thread pool",
         lambda: bench_threads(task, 32, 10 if quick else 40, rid)),
        ("agent-loop", "llm agent loop (instant model)",
         lambda: bench_agent_loop(task, 200 if quick else 1000)),
        ("tracing", "tracing: a test plain and traced, events/s", lambda: _tracing(task, quick, rid)),
        ("peers", "peers: docker exec per command", lambda: bench_peers(
            ensure_task_image(task).tag, 15 if quick else 40, rid)),
    ]
    per_task = {"resets": lambda t: bench_resets(t, 8 if quick else 20, rid),
                "grading": lambda t: bench_grading(t, 3 if quick else 8, rid)}
    for group, name, step in steps:
        if only is not None and group not in only:
            continue
        if only is not None and group in PER_TASK and len(tasks) > 1:
            for each in tasks:
                progress(f"{name}: {each.id}")
                figures.update({f"{k}@{each.id}": v for k, v in per_task[group](each).items()})
                get_backend().flush()
            continue
        progress(name)
        figures.update(step())
        get_backend().flush()
    return {k: round(v, 4) for k, v in figures.items()}
