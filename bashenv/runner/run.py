"""Many episodes in parallel: tasks × agent × workers → results JSONL (resumable)."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from bashenv.agents import Agent
from bashenv.env import BashSWEEnv
from bashenv.errors import BashenvError, DockerUnavailable, SandboxError
from bashenv.runner.results import INFRA_ERROR, ResultsFile
from bashenv.sandbox import PROCESS_RUN_ID, Backend, get_backend
from bashenv.task import Task

ENGINE_WAIT = 300.0  # seconds to wait for a restarting engine before giving up


def run_episode(task: Task, agent: Agent, run_id: str = PROCESS_RUN_ID,
                stop: threading.Event | None = None,
                backend: str | Backend | None = None) -> dict[str, Any]:
    """One episode to its end; returns the JSON-ready record."""
    started = time.monotonic()
    env = BashSWEEnv(task, run_id=run_id, backend=backend)
    record: dict[str, Any] = {"task_id": task.id, "agent": agent.name}
    try:
        obs, _ = env.reset()
        agent.reset(task, obs)
        steps, reward, done = 0, 0.0, False
        info: dict[str, Any] = {}
        while not done:
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt
            obs, reward, terminated, truncated, info = env.step(agent.act(obs))
            steps += 1
            done = terminated or truncated
        verdict = info.get("verdict")
        outcome = INFRA_ERROR if not verdict or verdict["infra"] else verdict["outcome"]
        record.update(outcome=outcome, reward=reward, resolved=outcome == "resolved",
                      steps=steps, error=info.get("error") or (verdict or {}).get("error"),
                      verdict=verdict)
    except (SandboxError, DockerUnavailable) as exc:  # not a result: the next run retries
        record.update(outcome=INFRA_ERROR, reward=0.0, resolved=False, steps=0, error=str(exc),
                      verdict=None)
    except BashenvError as exc:  # the task or agent is broken (e.g. its image cannot build)
        record.update(outcome="error", reward=0.0, resolved=False, steps=0, error=str(exc),
                      verdict=None)
    except Exception as exc:  # the engine connection broke mid-call: retried too
        if stop is not None and stop.is_set():
            raise
        record.update(outcome=INFRA_ERROR, reward=0.0, resolved=False, steps=0,
                      error=f"{type(exc).__name__}: {exc}", verdict=None)
    finally:
        with contextlib.suppress(Exception):  # the engine may be gone; gc cleans up later
            env.close()
    record["seconds"] = round(time.monotonic() - started, 3)
    return record


def run_benchmark(tasks: list[Task], make_agent: Callable[[], Agent], results: Path, *,
                  workers: int = 2, run_id: str | None = None, infra_retries: int = 1,
                  on_done: Callable[[dict[str, Any]], None] | None = None,
                  backend: str | Backend | None = None) -> list[dict[str, Any]]:
    """Run every task not already in `results`; returns all records (old and new).

    An episode that fails for infrastructure reasons (a killed container, a restarting
    engine) is retried `infra_retries` times, after waiting for the engine to answer.
    On KeyboardInterrupt the running episodes' containers are removed, no partial
    record is written, and the exception propagates; a re-run resumes.
    """
    run_id = run_id or f"{PROCESS_RUN_ID}-{uuid.uuid4().hex[:6]}"
    sandboxes = get_backend(backend)
    store = ResultsFile(results)
    agent_name = make_agent().name
    done_ids = store.finished(agent_name)
    todo = [t for t in tasks if t.id not in done_ids]
    stop = threading.Event()

    def episode(task: Task) -> dict[str, Any]:
        record: dict[str, Any] | None = None
        earlier: list[str] = []
        for attempt in range(1 + infra_retries):
            if not sandboxes.wait_until_ready(ENGINE_WAIT):  # a restarting engine: wait
                break
            sandboxes.retry_removals()  # sandboxes that could not be removed while it was down
            record = run_episode(task, make_agent(), run_id, stop, sandboxes)
            record.update(attempts=attempt + 1, infra_errors=earlier)
            if record["outcome"] != INFRA_ERROR or stop.is_set():
                break
            earlier = [*earlier, record["error"]]
            time.sleep(2)  # let a dying engine finish dying before asking again
        if record is None:
            record = {"task_id": task.id, "agent": agent_name, "outcome": INFRA_ERROR,
                      "reward": 0.0, "resolved": False, "steps": 0, "verdict": None,
                      "seconds": 0.0,
                      "error": f"the Docker engine did not answer for {ENGINE_WAIT:g}s"}
        if not stop.is_set():
            store.append(record)
        return record

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="bashenv-episode")
    try:
        pending: set[Future[dict[str, Any]]] = {pool.submit(episode, t) for t in todo}
        while pending:
            finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in finished:
                if on_done is not None:
                    on_done(future.result())
    except BaseException:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        sandboxes.remove_all()  # running episodes fail fast; nothing is recorded for them
        raise
    pool.shutdown(wait=True)
    sandboxes.collect(run_id)  # sandboxes whose creation answer was lost, if any
    wanted = {t.id for t in tasks}
    return [r for task_id, r in sorted(store.latest(agent_name).items()) if task_id in wanted]
