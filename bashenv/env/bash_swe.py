"""BashSWE-v0: fix an issue in a repository through a persistent bash shell.

Action: one bash command (str). The literal action `submit` ends the episode and
grades the repository's diff against hidden tests in a fresh container.
Observation: a dict with fixed keys, see `observation_space`.
Reward: 0.0 on every step but the last; 1.0 at the end iff the issue is resolved.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from bashenv.env.spaces import UnicodeText
from bashenv.errors import BashenvError, DockerUnavailable, SandboxError
from bashenv.grading import Rewarder, Verdict
from bashenv.images import TaskImage, ensure_task_image
from bashenv.images.specs import spec_for_task
from bashenv.sandbox import PROCESS_RUN_ID, Backend, BashSession, CommandResult, Sandbox, get_backend
from bashenv.sandbox.fork import can_fork, restore, snapshot
from bashenv.sandbox.pool import WarmPool, shared_pool
from bashenv.sandbox.runtime import runtime as process_runtime
from bashenv.sandbox.spec import SandboxSpec
from bashenv.task import SUBMIT, Task, load_tasks
from bashenv.trace.inbox import AGENT_TOOLS

MAX_ACTION_CHARS = 1_000_000
MAX_TEXT_CHARS = 2_000_000
MAX_STEPS = 100_000
T = TypeVar("T")


def _blocking_executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=64, thread_name_prefix="bashenv-async")


async def _in_thread(fn: Callable[[], T]) -> T:
    """Run blocking sandbox work off the event loop (a pool sized for many episodes, one
    per process: a runtime part, so a forked worker gets its own)."""
    executor = process_runtime().part("async-executor", _blocking_executor)
    return await asyncio.get_running_loop().run_in_executor(executor, fn)


def default_tasks_dir() -> Path:
    """$BASHENV_TASKS when set, else the example tasks bashenv ships (package data)."""
    from bashenv.bundled import bundled_dir

    override = os.environ.get("BASHENV_TASKS")
    return Path(override) if override else bundled_dir("tasks")


def resolve_tasks(tasks: Any, repos: str | Path | None = None) -> list[Task]:
    """A path, a Task, a task id from the default directory, a SWE-bench instances file
    (.json/.jsonl/.parquet; `repos`: its directory of OWNER__NAME.git), or a list of those."""
    if tasks is None:
        return load_tasks(default_tasks_dir())
    from bashenv.swebench.importer import instance_tasks, is_instances_file

    if isinstance(tasks, (str, Path)) and is_instances_file(tasks):
        return sorted(instance_tasks(tasks, repos), key=lambda t: t.id)
    if isinstance(tasks, str) and not Path(tasks).exists():
        matching = [t for t in load_tasks(default_tasks_dir()) if t.id == tasks]
        if not matching:
            raise BashenvError(f"{tasks!r} is neither a task file/directory nor a task id "
                               f"in {default_tasks_dir()}")
        return matching
    if isinstance(tasks, (list, tuple)):
        return sorted((t for item in tasks for t in resolve_tasks(item, repos)), key=lambda t: t.id)
    return load_tasks(tasks)


def _discard(box: Sandbox, shell: BashSession) -> None:
    shell.close()
    box.remove()


class BashSWEEnv(gym.Env[dict[str, Any], str]):
    # render_fps is required by gymnasium's checker; an ansi transcript has no frame rate.
    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(self, tasks: Any = None, *, render_mode: str | None = None,
                 grade_on_truncation: bool = True, max_steps: int | None = None,
                 command_timeout: float | None = None, episode_timeout: float | None = None,
                 run_id: str = PROCESS_RUN_ID, warm_pool: int | WarmPool = 0,
                 runtime: str | None = None, backend: str | Backend | None = None,
                 repos: str | Path | None = None) -> None:
        self.tasks = resolve_tasks(tasks, repos)  # repos: for a SWE-bench instances file
        if not self.tasks:
            raise BashenvError("BashSWEEnv needs at least one task")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', not {render_mode!r}")
        self.render_mode = render_mode
        self.grade_on_truncation = grade_on_truncation
        self.run_id = run_id
        self.runtime = runtime  # e.g. "runsc": overrides the tasks' sandbox.runtime
        self.backend = get_backend(backend)  # where sandboxes run: "docker", "module:Class"
        self.pool = shared_pool(warm_pool) if isinstance(warm_pool, int) else warm_pool
        self._overrides = {"max_steps": max_steps, "command_timeout": command_timeout,
                           "episode_timeout": episode_timeout}
        self.action_space = UnicodeText(MAX_ACTION_CHARS)
        self.observation_space = spaces.Dict({
            "issue": UnicodeText(MAX_TEXT_CHARS),
            "output": UnicodeText(MAX_TEXT_CHARS),
            "exit_code": spaces.Discrete(257, start=-1),  # -1: no command ran
            "timed_out": spaces.Discrete(2),
            "output_truncated": spaces.Discrete(2),
            "step": spaces.Discrete(MAX_STEPS + 1),
        })
        self.task: Task = self.tasks[0]
        self._images: dict[str, TaskImage] = {}
        self._rewarders: dict[str, Rewarder] = {}
        self._box: Sandbox | None = None
        self._shell: BashSession | None = None
        self._transcript: list[str] = []
        self._steps = 0
        self._started = 0.0
        self._done = False

    # -- gymnasium API -----------------------------------------------------------------------

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        self._close_sandbox()
        self.task = self._pick_task(options or {})
        self._steps, self._started, self._done = 0, time.monotonic(), False
        intro = (f"Repository: {self.task.workdir} (a git repository at the issue's base "
                 f"commit). Run one bash command per step; send `{SUBMIT}` when the issue is "
                 f"fixed. Limits: {self._limit('max_steps')} steps, "
                 f"{self._limit('command_timeout'):g}s per command, "
                 f"{self._limit('episode_timeout'):g}s for the episode.")
        self._transcript = [f"# task {self.task.id}\n{self.task.problem_statement}\n{intro}"]
        if self.pool is not None:  # warm start: a ready container makes this cheap
            self._ensure_sandbox()
        return self._obs(intro, -1), {"task_id": self.task.id}

    async def areset(self, *, seed: int | None = None,
                     options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """`reset` for asyncio (blocking Docker calls run in a worker thread)."""
        return await _in_thread(lambda: self.reset(seed=seed, options=options))

    def step(self, action: str) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        info = self._begin_step()
        if action.strip() == SUBMIT:
            return self._finish(self._obs("submitted", 0), info, terminated=True)
        try:
            result = self._ensure_sandbox().run(action, timeout=self._command_timeout())
        except SandboxError as exc:
            return self._infra_error(exc, info)
        obs, finish = self._after_command(action, result, info)
        return self._finish(obs, info, terminated=False) if finish else (obs, 0.0, False, False, info)

    async def astep(self, action: str) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """`step` for asyncio: the command's output is awaited on the socket, no thread."""
        info = self._begin_step()
        if action.strip() == SUBMIT:
            return await _in_thread(lambda: self._finish(self._obs("submitted", 0), info, True))
        try:
            shell = self._shell if self._shell is not None else await _in_thread(self._ensure_sandbox)
            result = await shell.arun(action, timeout=self._command_timeout())
        except SandboxError as exc:
            return await _in_thread(partial(self._infra_error, exc, info))
        obs, finish = self._after_command(action, result, info)
        if finish:
            return await _in_thread(lambda: self._finish(obs, info, terminated=False))
        return obs, 0.0, False, False, info

    @property
    def sandbox(self) -> Sandbox | None:
        """The episode's sandbox (None before the first command and after the episode)."""
        return self._box

    def fork(self) -> BashSWEEnv:
        """An independent copy of this episode: a new sandbox holding this one's files (the
        workdir and every other writable place) and a shell with its cwd, variables,
        functions and aliases; steps, transcript and RNG carry over. Each env is graded on
        its own tree and must be closed on its own. Background processes are not copied.
        (Through `gym.make`'s wrappers: `env.unwrapped.fork()`.)"""
        if self._done:
            raise BashenvError("cannot fork a finished episode (submitted, truncated or its "
                               "sandbox broke): call reset() first")
        if not can_fork(self.backend):
            raise BashenvError(f"cannot fork: the {self.backend.name!r} sandbox back-end does not "
                               "declare that its sandboxes have file systems of their own "
                               "(private_fs = True)")
        twin = copy.copy(self)
        twin._transcript = list(self._transcript)
        twin._overrides = dict(self._overrides)
        twin._np_random = copy.deepcopy(self._np_random)
        twin._box, twin._shell = None, None
        if self._box is None or self._shell is None:
            return twin  # no command ran yet: the twin starts its own box on its first one
        # The twin's box starts while this one is being archived.
        executor = process_runtime().part("async-executor", _blocking_executor)
        starting = executor.submit(self._start_twin_box)
        try:
            snap = snapshot(self._box, self._shell)
        except BashenvError:
            with contextlib.suppress(BashenvError):
                _discard(*starting.result())
            raise
        box, shell = starting.result()
        try:
            restore(box, shell, snap)
        except BashenvError:
            _discard(box, shell)
            raise
        shell.output_chars = self.task.limits.output_chars
        twin._box, twin._shell = box, shell
        return twin

    def render(self) -> str | None:
        return "\n".join(self._transcript) if self.render_mode == "ansi" else None

    def close(self) -> None:
        self._close_sandbox()
        self.backend.flush()
        super().close()

    # -- helpers ---------------------------------------------------------------------------

    def _limit(self, name: str) -> Any:
        override = self._overrides[name]
        return override if override is not None else getattr(self.task.limits, name)

    def _pick_task(self, options: dict[str, Any]) -> Task:
        if "task_id" in options:
            for task in self.tasks:
                if task.id == options["task_id"]:
                    return task
            raise BashenvError(f"unknown task_id {options['task_id']!r}")
        if "task_index" in options:
            return self.tasks[int(options["task_index"]) % len(self.tasks)]
        return self.tasks[int(self.np_random.integers(len(self.tasks)))]

    def _obs(self, output: str, exit_code: int, timed_out: bool = False,
             truncated: bool = False) -> dict[str, Any]:
        return {
            "issue": self.task.problem_statement[:MAX_TEXT_CHARS],
            "output": output[:MAX_TEXT_CHARS],
            "exit_code": np.int64(max(-1, min(255, exit_code))),
            "timed_out": np.int64(timed_out),
            "output_truncated": np.int64(truncated),
            "step": np.int64(min(self._steps, MAX_STEPS)),
        }

    def _begin_step(self) -> dict[str, Any]:
        if self._done:
            raise RuntimeError("the episode has ended: call reset() before step()")
        self._steps += 1
        return {"task_id": self.task.id}

    def _command_timeout(self) -> float:
        left = self._limit("episode_timeout") - (time.monotonic() - self._started)
        return max(0.1, min(self._limit("command_timeout"), left))

    def _after_command(self, action: str, result: CommandResult,
                       info: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The observation, and whether the episode ends here (truncation)."""
        self._transcript.append(f"$ {action}\n{result.output}[exit {result.exit_code}]")
        obs = self._obs(result.output, result.exit_code, result.timed_out, result.truncated)
        over_time = time.monotonic() - self._started >= self._limit("episode_timeout")
        if self._steps >= self._limit("max_steps") or over_time:
            info["truncation"] = "episode_timeout" if over_time else "max_steps"
            return obs, True
        return obs, False

    def _infra_error(self, exc: SandboxError,
                     info: dict[str, Any]) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """The sandbox broke (not the agent's fault): truncate with the error, no verdict."""
        self._done = True
        info["error"] = str(exc)
        self._close_sandbox()
        return self._obs(f"[bashenv: sandbox error: {exc}]", -1), 0.0, False, True, info

    def _image(self) -> TaskImage:
        if self.task.id not in self._images:
            self._images[self.task.id] = ensure_task_image(self.task)
        return self._images[self.task.id]

    def _rewarder(self) -> Rewarder:
        if self.task.id not in self._rewarders:
            self._rewarders[self.task.id] = Rewarder(self.task, self._image(), self.run_id,
                                                     self.pool, self.runtime, self.backend)
        return self._rewarders[self.task.id]

    async def afork(self) -> BashSWEEnv:
        """`fork` for asyncio (the copy runs in a worker thread)."""
        return await _in_thread(self.fork)

    def _start_twin_box(self) -> tuple[Sandbox, BashSession]:
        """A box with a shell for a fork: warm (seeded, wiped by the copy) or started now
        without the seed (the copy fills it)."""
        spec = self._agent_spec()
        if self.pool is not None:
            return self.pool.acquire_with_shell(spec)
        box = self.backend.start(replace(spec, seed=None))
        try:
            return box, BashSession(box)
        except BashenvError:
            box.remove()
            raise

    def _agent_spec(self) -> SandboxSpec:
        return spec_for_task(self.task, self._image().tag, "agent", self.run_id,
                             runtime=self.runtime, tools=AGENT_TOOLS)  # `trace`, read-only

    def _ensure_sandbox(self) -> BashSession:
        if self._shell is None:
            spec = self._agent_spec()
            if self.pool is not None:
                self._box, self._shell = self.pool.acquire_with_shell(spec)
            else:
                self._box = self.backend.start(spec)
                self._shell = BashSession(self._box)
            self._shell.output_chars = self.task.limits.output_chars
            self._rewarder().prefill()
        shell: BashSession = self._shell
        return shell

    def _finish(self, obs: dict[str, Any], info: dict[str, Any],
                terminated: bool) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        self._done = True
        verdict: Verdict | None = None
        if terminated or self.grade_on_truncation:
            verdict, info["model_patch"] = self._grade()
            info["verdict"] = verdict.to_dict()
            image = self._images.get(self.task.id)
            info["image_tag"] = image.tag if image else None
            self._transcript.append(f"# verdict: {verdict.outcome} (reward {verdict.reward})")
        self._close_sandbox()
        reward = verdict.reward if verdict else 0.0
        return obs, reward, terminated, not terminated, info

    def _grade(self) -> tuple[Verdict, str]:
        """The verdict, and the agent's change as a diff against the base commit (SWE-bench's
        model_patch, for results and predictions): the grader makes it from the tree it
        grades, with its own git (the agent's git settings and `.git` are never used)."""
        try:
            rewarder = self._rewarder()
            if self._box is None:
                return rewarder.grade(b""), ""
            # Stop everything the agent left running (daemons, a fork bomb: by cgroup, never
            # by name), then freeze the box, so that nothing it left (a process the sweep
            # cannot see, e.g. under gVisor) changes the tree while it is read from the host
            # side (the agent's git is not used). The box is removed frozen.
            swept = self._box.kill_all_but_init()
            try:
                self._box.freeze()
            except SandboxError:
                if not swept:  # nothing stopped what the agent left: no reading a moving tree
                    raise
            verdict, patch = rewarder.grade_workdir_with_patch(self._box)
            return verdict, patch[:MAX_TEXT_CHARS]
        except (SandboxError, DockerUnavailable) as exc:
            return Verdict(self.task.id, "error", error=str(exc), infra=True), ""
        except BashenvError as exc:
            return Verdict(self.task.id, "error", error=str(exc)), ""

    def _close_sandbox(self) -> None:
        if self._shell is not None:
            self._shell.close()
            self._shell = None
        if self._box is not None:
            self._box.remove_later()  # off the hot path; close() waits for it
            self._box = None
