"""Many episodes in parallel: tasks × agent × workers → results JSONL (resumable by content),
with a trajectory and a cast per episode."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import os
import secrets
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bashenv.agents import Agent, EndpointError, agent_config, config_hash
from bashenv.env import BashSWEEnv
from bashenv.errors import BashenvError, DockerUnavailable, SandboxError
from bashenv.runner.results import AGENT_ERROR, INFRA_ERROR, Plan, ResultsFile, run_paths
from bashenv.runner.trajectory import TrajectoryWriter, iso_now
from bashenv.sandbox import PROCESS_RUN_ID, Backend, get_backend
from bashenv.task import Task

ENGINE_WAIT = 300.0  # seconds to wait for a restarting engine before giving up


class _AgentFailed(Exception):
    """An exception raised by agent code (carries the original)."""


def task_hash(task: Task) -> str:
    """The task's content (statement, tests, patches, limits, …): what resume compares."""
    dumped = json.dumps(task.model_dump(mode="json"), sort_keys=True, default=str)
    return hashlib.sha256(dumped.encode()).hexdigest()


def resolved_commit(task: Task) -> str | None:
    """Full sha of the task's base_commit in its source repository (None if unknown)."""
    from bashenv.task.source import resolve_commit

    try:
        return resolve_commit(task)[1]
    except Exception:  # the episode reports a broken source itself; this is metadata only
        return None


@functools.cache
def _version() -> str:
    try:
        return importlib.metadata.version("bashenv")
    except importlib.metadata.PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except (EndpointError, BashenvError):
        raise
    except Exception as exc:
        raise _AgentFailed() from exc


def _identity(agent: Agent, given: Mapping[str, Any] | None) -> dict[str, Any]:
    config = agent_config(agent, given)
    return {"agent_config": config, "agent_config_hash": config_hash(agent.name, config)}


def run_episode(task: Task, agent: Agent, run_id: str = PROCESS_RUN_ID,
                stop: threading.Event | None = None,
                backend: str | Backend | None = None, *,
                trajectories: Path | None = None, relative_to: Path | None = None,
                agent_settings: Mapping[str, Any] | None = None,
                commit: str | None = None) -> dict[str, Any]:
    """One episode to its end; returns the JSON-ready record. With `trajectories` (a
    directory) the episode's trajectory JSONL and cast go under <dir>/<task id>/; their
    paths in the record are relative to `relative_to` (the results file's directory)."""
    started = time.monotonic()
    episode_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    record: dict[str, Any] = {
        "task_id": task.id, "agent": agent.name, "episode_id": episode_id, "run_id": run_id,
        "bashenv_version": _version(), "started_at": iso_now(), "task_hash": task_hash(task),
        **_identity(agent, agent_settings), "model": getattr(agent, "model", None),
        "resolved_commit": commit, "image_tag": None, "model_patch": "", "truncation": None,
        "traceback": None, "trajectory": None, "cast": None}
    writer = None
    if trajectories is not None:
        writer = TrajectoryWriter(trajectories / task.id, episode_id)
        base = relative_to or trajectories
        record["trajectory"] = os.path.relpath(writer.path, base)
        record["cast"] = os.path.relpath(writer.cast_path, base)
    env = BashSWEEnv(task, run_id=run_id, backend=backend)
    steps = 0
    try:
        obs, _ = env.reset()
        if writer is not None:
            writer.header({k: record[k] for k in (
                "episode_id", "task_id", "task_hash", "agent", "agent_config", "agent_config_hash",
                "model", "run_id", "resolved_commit", "started_at")} | {
                "issue": task.problem_statement, "intro": str(obs["output"]),
                "limits": {"max_steps": task.limits.max_steps,
                           "command_timeout": task.limits.command_timeout,
                           "episode_timeout": task.limits.episode_timeout}})
        _call(agent.reset, task, obs)
        step_info = getattr(agent, "step_info", None)
        reward, done = 0.0, False
        info: dict[str, Any] = {}
        policy: dict[str, Any] | None = None
        while not done:
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt
            t0 = time.monotonic()
            action = _call(agent.act, obs)
            t1 = time.monotonic()
            obs, reward, terminated, truncated, info = env.step(action)
            t2 = time.monotonic()
            steps += 1
            done = terminated or truncated
            policy = step_info() if step_info is not None else None
            if writer is not None:
                writer.step(steps, action, obs, t1 - started, t1 - t0, t2 - t1, policy)
        verdict = info.get("verdict")
        outcome = INFRA_ERROR if not verdict or verdict["infra"] else verdict["outcome"]
        record.update(outcome=outcome, reward=reward, resolved=outcome == "resolved",
                      error=info.get("error") or (verdict or {}).get("error"), verdict=verdict,
                      model_patch=info.get("model_patch", ""), image_tag=info.get("image_tag"),
                      truncation=info.get("truncation") or (policy or {}).get("stop"))
    except _AgentFailed as failed:  # the agent's own bug: a result, counted, not retried
        cause = failed.__cause__ or failed
        record.update(outcome=AGENT_ERROR, reward=0.0, resolved=False, verdict=None,
                      error=f"{type(cause).__name__}: {cause}",
                      traceback="".join(traceback.format_exception(cause)))
    except (SandboxError, DockerUnavailable, EndpointError) as exc:  # the next run retries
        record.update(outcome=INFRA_ERROR, reward=0.0, resolved=False, error=str(exc),
                      verdict=None)
    except BashenvError as exc:  # the task or agent is broken (e.g. its image cannot build)
        record.update(outcome="error", reward=0.0, resolved=False, error=str(exc), verdict=None)
    except Exception as exc:  # the engine connection broke mid-call: retried too
        if stop is not None and stop.is_set():
            if writer is not None:
                writer.close()
            raise
        record.update(outcome=INFRA_ERROR, reward=0.0, resolved=False,
                      error=f"{type(exc).__name__}: {exc}", verdict=None)
    except BaseException:  # interrupted: the trajectory so far stays, with no end line
        if writer is not None:
            writer.close()
        raise
    finally:
        with contextlib.suppress(Exception):  # the engine may be gone; gc cleans up later
            env.close()
    usage = getattr(agent, "usage", None)
    totals = usage() if callable(usage) else {}
    record.update(steps=steps, ended_at=iso_now(), seconds=round(time.monotonic() - started, 3),
                  tokens=totals.get("tokens") or {"prompt": 0, "completion": 0, "total": 0},
                  cost=totals.get("cost"))
    if writer is not None:
        with contextlib.suppress(OSError):
            writer.end(record)
        writer.close()
    return record


def run_benchmark(tasks: list[Task], make_agent: Callable[[], Agent], results: Path, *,
                  workers: int = 2, run_id: str | None = None, infra_retries: int = 1,
                  on_done: Callable[[dict[str, Any]], None] | None = None,
                  backend: str | Backend | None = None,
                  trajectories: bool = True,
                  on_plan: Callable[[Plan], None] | None = None) -> list[dict[str, Any]]:
    """Run every task without a matching record in `results` (a .jsonl file or a run
    directory); returns the current record of every task (re-used and new).

    An earlier record counts only for the same task content, agent name and agent
    configuration (`ResultsFile.plan`). An episode that fails for infrastructure reasons
    (a killed container, a restarting engine, a failing model endpoint) is retried
    `infra_retries` times, after waiting for the engine to answer. On KeyboardInterrupt
    the running episodes' containers are removed, no partial record is written, and the
    exception propagates; a re-run resumes.
    """
    run_id = run_id or f"{PROCESS_RUN_ID}-{uuid.uuid4().hex[:6]}"
    results, run_dir = run_paths(results)
    sandboxes = get_backend(backend)
    store = ResultsFile(results)
    given = getattr(make_agent, "config", None)
    first = make_agent()
    agent_name, identity = first.name, _identity(first, given)
    hashes = {t.id: task_hash(t) for t in tasks}
    plan = store.plan(agent_name, identity["agent_config_hash"], hashes)
    if on_plan is not None:
        on_plan(plan)
    todo = [t for t in tasks if t.id in set(plan.todo)]
    stop = threading.Event()
    trajectory_dir = run_dir / "trajectories" if trajectories else None

    def episode(task: Task) -> dict[str, Any]:
        record: dict[str, Any] | None = None
        earlier: list[str] = []
        commit = resolved_commit(task)
        for attempt in range(1 + infra_retries):
            if not sandboxes.wait_until_ready(ENGINE_WAIT):  # a restarting engine: wait
                break
            sandboxes.retry_removals()  # sandboxes that could not be removed while it was down
            record = run_episode(task, make_agent(), run_id, stop, sandboxes,
                                 trajectories=trajectory_dir, relative_to=results.parent,
                                 agent_settings=given, commit=commit)
            record.update(attempts=attempt + 1, infra_errors=earlier)
            if record["outcome"] != INFRA_ERROR or stop.is_set():
                break
            earlier = [*earlier, record["error"]]
            time.sleep(2)  # let a dying engine finish dying before asking again
        if record is None:
            record = {"task_id": task.id, "agent": agent_name, "outcome": INFRA_ERROR,
                      "reward": 0.0, "resolved": False, "steps": 0, "verdict": None,
                      "seconds": 0.0, "task_hash": hashes[task.id], **identity,
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
    current = store.matching(agent_name, identity["agent_config_hash"], hashes)
    return [current[t] for t in sorted(current)]
