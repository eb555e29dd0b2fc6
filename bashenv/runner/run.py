"""Many episodes in parallel: tasks × agent × workers → results JSONL (resumable)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from bashenv.agents import Agent
from bashenv.env import BashSWEEnv
from bashenv.errors import ImageBuildError, TaskError
from bashenv.runner.results import INFRA_ERROR, ResultsFile
from bashenv.sandbox import PROCESS_RUN_ID
from bashenv.sandbox.container import REGISTRY
from bashenv.task import Task


def run_episode(task: Task, agent: Agent, run_id: str = PROCESS_RUN_ID,
                stop: threading.Event | None = None) -> dict[str, Any]:
    """One episode to its end; returns the JSON-ready record."""
    started = time.monotonic()
    env = BashSWEEnv(task, run_id=run_id)
    record: dict[str, Any] = {"task_id": task.id, "agent": agent.name}
    try:
        obs, _ = env.reset()
        agent.reset(task, obs)
        steps, reward, info, done = 0, 0.0, {}, False
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
    except (TaskError, ImageBuildError) as exc:  # the task is broken: a result, not retried
        record.update(outcome="error", reward=0.0, resolved=False, steps=0, error=str(exc),
                      verdict=None)
    except Exception as exc:  # the engine or sandbox broke: retried by the next run
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
                  workers: int = 2, run_id: str = PROCESS_RUN_ID,
                  on_done: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run every task not already in `results`; returns all records (old and new).

    On KeyboardInterrupt the running episodes' containers are removed, no partial
    record is written, and the exception propagates; a re-run resumes.
    """
    store = ResultsFile(results)
    agent_name = make_agent().name
    done_ids = store.finished(agent_name)
    todo = [t for t in tasks if t.id not in done_ids]
    stop = threading.Event()

    def episode(task: Task) -> dict[str, Any]:
        record = run_episode(task, make_agent(), run_id, stop)
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
        REGISTRY.remove_all()  # running episodes fail fast; nothing is recorded for them
        raise
    pool.shutdown(wait=True)
    wanted = {t.id for t in tasks}
    latest = {r["task_id"]: r for r in store.load() if r.get("agent") == agent_name}
    return [r for task_id, r in sorted(latest.items()) if task_id in wanted]
