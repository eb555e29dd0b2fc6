"""TracePredict-v0: predict what a function's local variables become, line by line.

Each episode is one call of a function from a real execution trace, computed by the
tracer in a sandbox (bashenv/trace): from the tasks' FAIL_TO_PASS tests before or after
the gold patch, from any Python files given, or read from a dataset `bashenv traces`
wrote. The truth never comes from the agent.

- mode "step": each step shows the trace so far and the next line; the action is the
  frame's state after that line in the trace's text form (`{z: 15}`: the variables that
  changed). The true state then joins the trace (teacher forcing).
- mode "trace": one step; the observation lists every executed line, the action gives
  one `{...}` state per line, in order (missing states count as wrong).

Rewards add up to the episode's score in [0, 1]: each state is worth 1/N, paid in full
when exact and, with `partial_credit` (default), as the share of variables in play
predicted right (see bashenv.trace.predict).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
from gymnasium import spaces

from bashenv.env.bash_swe import default_tasks_dir
from bashenv.env.spaces import UnicodeText
from bashenv.errors import BashenvError
from bashenv.sandbox import PROCESS_RUN_ID
from bashenv.task import load_tasks
from bashenv.task.model import Task
from bashenv.trace.dataset import jobs, read_dataset
from bashenv.trace.predict import Episode, episodes_from_events, predicted_states, score_state
from bashenv.trace.run import Bounds, Target, TaskTracer, Trace, trace_file

MAX_TEXT_CHARS = 200_000
MAX_STEPS = 256
TRIES = 8  # traces tried at reset before giving up on finding a function call in them


class TracePredictEnv(gym.Env[dict[str, Any], str]):
    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(self, tasks: Any = None, *, files: list[str | Path] | None = None,
                 dataset: str | Path | None = None, mode: str = "step",
                 partial_credit: bool = True, max_steps: int = 64,
                 bounds: Bounds = Bounds(events=5000, seconds=20.0), image: str | None = None,
                 render_mode: str | None = None, run_id: str = PROCESS_RUN_ID,
                 backend: Any = None) -> None:
        if mode not in ("step", "trace"):
            raise BashenvError(f"TracePredict mode must be 'step' or 'trace', not {mode!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', not {render_mode!r}")
        if not 1 <= max_steps <= MAX_STEPS:
            raise BashenvError(f"max_steps must be 1..{MAX_STEPS}, not {max_steps}")
        self.mode, self.partial_credit, self.max_steps = mode, partial_credit, max_steps
        self.bounds, self.image, self.run_id, self.backend = bounds, image, run_id, backend
        self.render_mode = render_mode
        self._sources = self._episode_sources(tasks, files, dataset)
        self._traces: dict[tuple[Any, ...], list[Episode]] = {}
        self._tracers: dict[str, TaskTracer] = {}
        self.action_space = UnicodeText(MAX_TEXT_CHARS)
        self.observation_space = spaces.Dict({
            "function": UnicodeText(MAX_TEXT_CHARS), "source": UnicodeText(MAX_TEXT_CHARS),
            "call": UnicodeText(MAX_TEXT_CHARS), "trace": UnicodeText(MAX_TEXT_CHARS),
            "line": UnicodeText(MAX_TEXT_CHARS), "step": spaces.Discrete(MAX_STEPS + 1),
            "steps": spaces.Discrete(MAX_STEPS + 1),
        })
        self.episode: Episode | None = None
        self._k = 0
        self._score = 0.0
        self._log: list[str] = []

    # -- where episodes come from -------------------------------------------------------
    def _episode_sources(self, tasks: Any, files: list[str | Path] | None,
                         dataset: str | Path | None) -> list[tuple[Any, ...]]:
        sources: list[tuple[Any, ...]] = []
        if dataset is not None:
            for i, record in enumerate(read_dataset(dataset)):
                sources.append(("record", i, record))
        for path in files or []:
            file = Path(path)
            if not file.is_file():
                raise BashenvError(f"TracePredict: no such Python file: {file}")
            sources.append(("file", str(file), file.read_text(encoding="utf-8")))
        if tasks is not None or not sources:
            task_list: list[Task] = load_tasks(tasks if tasks is not None else default_tasks_dir())
            sources += [("task", task, test_id, side) for task, test_id, side in jobs(task_list)]
        if not sources:
            raise BashenvError("TracePredict has nothing to trace: give tasks, files or a dataset")
        return sources

    def _episodes(self, source: tuple[Any, ...]) -> list[Episode]:
        key = source[:2] if source[0] != "task" else (source[0], source[1].id, *source[2:])
        if key not in self._traces:
            self._traces[key] = self._compute(source)
        return self._traces[key]

    def _compute(self, source: tuple[Any, ...]) -> list[Episode]:
        if source[0] == "record":
            record = source[2]
            origin = {k: record.get(k) for k in ("task_id", "commit", "test_id", "side")}
            return episodes_from_events(record.get("trace", []), record.get("functions", {}),
                                        origin)
        trace: Trace
        if source[0] == "file":
            trace = trace_file(source[2], Path(source[1]).name, image=self.image,
                               bounds=self.bounds, run_id=self.run_id, backend=self.backend)
            origin = {"file": source[1]}
        else:
            task, test_id, side = source[1:]
            if task.id not in self._tracers:
                self._tracers[task.id] = TaskTracer(task, run_id=self.run_id, backend=self.backend)
            trace = self._tracers[task.id].trace(Target("test", test_id), side, self.bounds)
            origin = {"task_id": task.id, "test_id": test_id, "side": side}
        return episodes_from_events(trace.events, trace.end.get("functions", {}), origin)

    # -- gymnasium API ------------------------------------------------------------------
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        candidates = self._sources
        if "source" in options:  # an index into the sources, for reproducible picks
            try:
                candidates = [self._sources[int(options["source"])]]
            except (TypeError, ValueError, IndexError):
                raise BashenvError(f"TracePredict: options['source'] must be an index into the "
                                   f"{len(self._sources)} sources, not {options['source']!r}") from None
        for _ in range(TRIES):
            source = candidates[int(self.np_random.integers(len(candidates)))]
            found = self._episodes(source)
            if "function" in options:
                found = [e for e in found if e.function == options["function"]]
            if found:
                break
        else:
            raise BashenvError("TracePredict: no traced function call found in "
                               f"{TRIES} tries (options {options})")
        chosen = found[int(self.np_random.integers(len(found)))]
        self.episode = Episode(chosen.function, chosen.file, chosen.source, chosen.call,
                               chosen.lines[: self.max_steps], chosen.changes[: self.max_steps],
                               chosen.before[: self.max_steps], chosen.returned, chosen.origin)
        self._k, self._score = 0, 0.0
        self._log = [self.episode.call_text()]
        return self._obs(), {"origin": dict(self.episode.origin), "steps": self._steps()}

    def step(self, action: str) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        episode = self.episode
        if episode is None or self._k >= self._steps():
            raise BashenvError("TracePredict: call reset() before step()")
        n = self._steps()
        if self.mode == "trace":
            guesses = predicted_states(action)
            results = [score_state(guesses[k] if k < len(guesses) else "", episode.changes[k],
                                   episode.before[k]) for k in range(n)]
            self._k = n
        else:
            results = [score_state(action, episode.changes[self._k], episode.before[self._k])]
            self._k += 1
        reward = sum(self._credit(r) for r in results) / n
        self._score += reward
        self._log.append(f"{action!r} -> {reward:.3f}")
        done = self._k >= n
        info = {"exact": [r[0] for r in results], "credit": [r[1] for r in results],
                "score": self._score}
        if done:
            info["returned"] = episode.returned
        return self._obs(), reward, done, False, info

    def render(self) -> str | None:
        return "\n".join(self._log) if self.render_mode == "ansi" else None

    # -- helpers --------------------------------------------------------------------------
    def _steps(self) -> int:
        return len(self.episode.lines) if self.episode else 0

    def _credit(self, result: tuple[bool, float]) -> float:
        exact, partial = result
        return partial if self.partial_credit else float(exact)

    def _obs(self) -> dict[str, Any]:
        episode = self.episode
        assert episode is not None
        n = self._steps()
        step = min(self._k, n - 1)
        whole = self.mode == "trace"
        trace = episode.trace_text(n, states=False) if whole else episode.trace_text(step)
        cap = MAX_TEXT_CHARS
        return {"function": episode.function[:cap], "source": episode.source[:cap],
                "call": episode.call_text()[:cap], "trace": trace[-cap:],
                "line": episode.lines[step][:cap], "step": min(self._k, n), "steps": n}
