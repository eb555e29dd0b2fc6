"""Halt-v0: does this program halt within the step budget, and what does it print?

One decision per episode. Observation: a Python program, its stdin and the budget.
Action: {"halts": 0|1, "output": predicted stdout} (a bare 0/1 is taken as `halts`).
Ground truth: the program is run in a sandbox (no network, bounded memory, pids and
disk, an unprivileged user) under a budget of `line` events in its own code
(halt_runner.py): deterministic, whatever the machine's load. Wall time is only a safety
net: when it is hit the episode is truncated with `info["error"]`, never scored as "does
not halt". Reward: `1 - output_credit` for the right label, plus `output_credit` for the
exact output when the program halts (a right "does not halt" earns it too: there is no
output to predict). With the default `output_credit=0` the reward is the label's
correctness, so always answering "halts" scores the halting share.

With `tasks=` or `sources=`, a share of episodes (`mined_share`) shows a function mined
from those repositories with a loop bound mutated (bashenv/worlds/mining.py,
mutations.py). Their labels come from screening runs in the same sandbox: the episode's
label is drawn first, then drafts are run until one did that (or a generated program of
that label stands in), so the halting share holds however the repositories' code leans.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from bashenv.env.spaces import UnicodeText
from bashenv.errors import BashenvError, SandboxError
from bashenv.sandbox import PROCESS_RUN_ID, Backend, Sandbox, get_backend
from bashenv.sandbox.spec import AGENT_UID, SandboxSpec
from bashenv.trace.run import default_image
from bashenv.worlds import halt_runner
from bashenv.worlds.mining import Mined, mine, source_files
from bashenv.worlds.mutations import draft
from bashenv.worlds.programs import FAMILIES, MARGIN, MIN_BUDGET, Program, generate
from bashenv.worlds.task_mining import mine_tasks

log = logging.getLogger("bashenv.worlds")

MAX_TEXT = 100_000
MAX_OUTPUT = 4000
MAX_BUDGET = 10**9
RUNNER = inspect.getsource(halt_runner)
MINED_BATCH = 8  # drafts screened in one sandbox run
MINED_ROUNDS = 4  # batches tried before a generated program stands in
PROBES = 16  # drafts of one function screened to learn whether it goes both ways
SCREENED_CAP = 20_000  # screening results remembered (a seeded reset is then repeatable)
Source = str | Path | tuple[str | Path, str]


class HaltEnv(gym.Env[dict[str, Any], Any]):
    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(self, *, step_budget: int = 20_000, halting_share: float = 0.5,
                 output_credit: float = 0.0, families: tuple[str, ...] = FAMILIES,
                 wall_timeout: float = 60.0, image: str | None = None,
                 run_id: str = PROCESS_RUN_ID, backend: str | Backend | None = None,
                 render_mode: str | None = None, tasks: Any = None,
                 sources: Sequence[Source] | None = None, repos: str | Path | None = None,
                 mined_share: float = 0.5, mined_two_sided: bool = False) -> None:
        if not MIN_BUDGET <= step_budget <= MAX_BUDGET:
            raise BashenvError(f"Halt-v0: step_budget must be in [{MIN_BUDGET}, {MAX_BUDGET}], "
                               f"not {step_budget}")
        if not 0.0 <= halting_share <= 1.0:
            raise BashenvError(f"Halt-v0: halting_share must be in [0, 1], not {halting_share}")
        if not 0.0 <= output_credit <= 1.0:
            raise BashenvError(f"Halt-v0: output_credit must be in [0, 1], not {output_credit}")
        unknown = sorted(set(families) - set(FAMILIES))
        if unknown or not families:
            raise BashenvError(f"Halt-v0: unknown families {unknown}: choose from {list(FAMILIES)}")
        if not 0.0 <= mined_share <= 1.0:
            raise BashenvError(f"Halt-v0: mined_share must be in [0, 1], not {mined_share}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', not {render_mode!r}")
        if isinstance(sources, (str, Path)):
            sources = [sources]
        for source in sources or []:  # checked now, read at the first mined episode
            source_files(source)
        if tasks is not None:
            from bashenv.env.bash_swe import resolve_tasks

            tasks = resolve_tasks(tasks, repos)
        self.tasks, self.sources = list(tasks or []), list(sources or [])
        self.mined_share = mined_share if self.tasks or self.sources else 0.0
        self.mined_two_sided = mined_two_sided
        self._candidates: list[Mined] | None = None
        self._two_sided: dict[str, bool] = {}
        self._screened: dict[tuple[str, str], tuple[bool | None, int]] = {}
        self.step_budget, self.halting_share = step_budget, halting_share
        self.output_credit, self.families = output_credit, tuple(families)
        self.wall_timeout, self.render_mode = wall_timeout, render_mode
        self._image, self.run_id, self.backend = image, run_id, get_backend(backend)
        self.observation_space = spaces.Dict({
            "program": UnicodeText(MAX_TEXT),
            "input": UnicodeText(MAX_TEXT),
            "step_budget": spaces.Discrete(MAX_BUDGET + 1),
        })
        self.action_space = spaces.Dict({"halts": spaces.Discrete(2),
                                         "output": UnicodeText(MAX_OUTPUT)})
        self.program: Program | None = None
        self._box: Sandbox | None = None
        self._last = ""

    # -- gymnasium API -----------------------------------------------------------------------

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """A generated program, or yours: options={"program": source, "input": stdin}."""
        super().reset(seed=seed)
        options = options or {}
        if "program" in options:
            source = options["program"]
            if not isinstance(source, str) or len(source) > MAX_TEXT:
                raise BashenvError(f"Halt-v0: options['program'] must be a str of at most "
                                   f"{MAX_TEXT} characters")
            self.program = Program(source, str(options.get("input", "")), halts=False,
                                   family="given")
        else:
            halts = bool(self.np_random.random() < self.halting_share)
            mined = self._mined_program(halts) if self.mined_share and \
                self.np_random.random() < self.mined_share else None
            self.program = mined or generate(self.np_random, self.step_budget,
                                             families=self.families, halts=halts)
        self._last = ""
        return self._obs(), _info(self.program)

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self.program is None:
            raise RuntimeError("call reset() before step()")
        halts, output = _parse_action(action)  # a malformed action keeps the episode
        program, self.program = self.program, None  # one decision per episode
        info = _info(program)
        if program.mutation:
            info["mutation"] = program.mutation
        try:
            truth = self.run_programs([program])[0]
        except SandboxError as exc:
            info["error"] = str(exc)
            return self._obs(program), 0.0, False, True, info
        if truth["status"] == "wall_timeout":
            info["error"] = (f"the wall-time safety net ({self.wall_timeout:g}s) was hit before "
                             "the step budget: no verdict on halting (a loaded machine?)")
            return self._obs(program), 0.0, False, True, info
        really_halts = truth["status"] == "halted"
        info.update(halts=really_halts, steps=truth["steps"], output=truth["output"],
                    exception=truth["error"])
        if program.family != "given" and program.halts != really_halts:
            info["generator_mismatch"] = True  # a generator bug: the run is the truth
            log.warning("Halt-v0: %s program labelled halts=%s ran %s", program.family,
                        program.halts, truth["status"])
        right = halts == really_halts
        output_right = right and (not really_halts or output == truth["output"])
        reward = (1.0 - self.output_credit) * right + self.output_credit * output_right
        self._last = (f"{program.source}\n# input: {program.input!r}\n# predicted halts={halts}, "
                      f"actual halts={really_halts} after {truth['steps']} steps; reward {reward}")
        return self._obs(program), float(reward), True, False, info

    @property
    def sandbox(self) -> Sandbox | None:
        """The box ground truth runs in (None until the first step)."""
        return self._box

    def render(self) -> str | None:
        return self._last if self.render_mode == "ansi" else None

    def close(self) -> None:
        if self._box is not None:
            self._box.remove()
            self._box = None
        self.backend.flush()
        super().close()

    # -- ground truth ------------------------------------------------------------------------

    def run_programs(self, programs: list[Program],
                     budget: int | None = None) -> list[dict[str, Any]]:
        """Run programs in this env's sandbox (one fresh python3 process for the batch) and
        return each one's {"status": halted|budget|wall_timeout, "steps", "output", "error"}
        under `budget` line events (default: the step budget)."""
        jobs = [{"source": p.source, "input": p.input, "budget": budget or self.step_budget,
                 "max_output": MAX_OUTPUT} for p in programs]
        box = self._sandbox()
        ran = box.exec(["python3", "-S", "-c", RUNNER], timeout=self.wall_timeout,
                       user=box.spec.user, environment={"HALT_JOBS": json.dumps(jobs), "PYTHONHASHSEED": "0"})
        if ran.exit_code == 137:  # the safety net's SIGKILL (or out of memory)
            if box.why_dead():
                raise SandboxError(f"Halt-v0: the sandbox died: {box.why_dead()}")
            return [{"status": "wall_timeout", "steps": 0, "output": "", "error": None}
                    for _ in programs]
        try:
            results: list[dict[str, Any]] = json.loads(ran.text.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise SandboxError(f"Halt-v0: the runner failed (exit {ran.exit_code}): "
                               f"{ran.text[-500:]}") from None
        return results

    # -- mined programs ----------------------------------------------------------------------

    def mined_functions(self) -> list[Mined]:
        """The functions mined from `tasks` and `sources` (read once, on first use)."""
        if self._candidates is None:
            found = {m.source: m for m in mine_tasks(self.tasks)}
            for source in self.sources:
                for m in mine(source_files(source), origin=str(source)):
                    found.setdefault(m.source, m)
            self._candidates = list(found.values())
            if not self._candidates:
                log.warning("Halt-v0: no self-contained function with a loop in %d task(s) "
                            "and %d source(s): generated programs only",
                            len(self.tasks), len(self.sources))
        return self._candidates

    def _mined_program(self, halts: bool) -> Program | None:
        """A mined program that did what `halts` says in a screening run, or None when
        MINED_ROUNDS batches of drafts gave none (a generated program stands in)."""
        candidates = self.mined_functions()
        if not candidates:
            return None
        for _ in range(MINED_ROUNDS):
            picks = [candidates[int(i)] for i in
                     self.np_random.integers(len(candidates), size=MINED_BATCH)]
            if self.mined_two_sided:
                picks = [m for m in picks if self.goes_both_ways(m)]
            drafts = [draft(m, self.np_random, halts) for m in picks]
            for program, (label, steps) in zip(drafts, self.screen(drafts), strict=True):
                if label is halts:
                    return dataclasses.replace(program, halts=halts,
                                               estimated_steps=steps if halts else None)
        return None

    def goes_both_ways(self, mined: Mined) -> bool:
        """Whether PROBES drafts of the function (drawn from its own seed, so the answer
        is the function's, not the episode's) screened both halting and not: with
        `mined_two_sided`, only such functions are shown, so a function's name does not
        give its label away."""
        if mined.source not in self._two_sided:
            rng = np.random.default_rng(zlib.crc32(mined.source.encode()))
            probes = [draft(mined, rng, i % 2 == 0) for i in range(PROBES)]
            labels = {label for label, _ in self.screen(probes)}
            self._two_sided[mined.source] = {True, False} <= labels
        return self._two_sided[mined.source]

    def screen(self, programs: list[Program]) -> list[tuple[bool | None, int]]:
        """(label, steps) of each program, by a run under MARGIN times the step budget:
        True when it ended without an exception within 1/MARGIN of the budget, False when it
        was still running at MARGIN times it, None otherwise (an exception, near the
        budget, or the wall-time net): such a program is not used."""
        todo = list({(p.source, p.input): p for p in programs
                     if (p.source, p.input) not in self._screened}.values())
        if todo:
            if len(self._screened) > SCREENED_CAP:
                self._screened.clear()
            results = self.run_programs(todo, MARGIN * self.step_budget)
            for program, result in zip(todo, results, strict=True):
                label = None
                if result["status"] == "budget":
                    label = False
                elif result["status"] == "halted" and result["error"] is None:
                    label = True if result["steps"] * MARGIN <= self.step_budget else None
                self._screened[(program.source, program.input)] = (label, result["steps"])
        return [self._screened[(p.source, p.input)] for p in programs]

    def _sandbox(self) -> Sandbox:
        """One long-lived box per env: each batch runs in a new process, and the programs
        are the generator's or the user's, never the agent's."""
        if self._box is None or self._box.why_dead():
            spec = SandboxSpec(image=self._image or default_image(), workdir="/work",
                               memory="512m", pids=64, network=False, run_id=self.run_id,
                               labels={"bashenv.role": "halt"}, user=str(AGENT_UID),
                               file_size_mb=16, disk_mb=64)
            self._box = self.backend.start(spec)
        return self._box

    def _obs(self, program: Program | None = None) -> dict[str, Any]:
        program = program or self.program
        assert program is not None
        return {"program": program.source[:MAX_TEXT], "input": program.input[:MAX_TEXT],
                "step_budget": np.int64(self.step_budget)}


def _info(program: Program) -> dict[str, Any]:
    return {"family": program.family, **({"origin": program.origin} if program.origin else {})}


def _parse_action(action: Any) -> tuple[bool, str]:
    if isinstance(action, dict):
        if "halts" not in action:
            raise BashenvError("Halt-v0: the action needs a 'halts' key (0 or 1)")
        try:
            halts = bool(int(action["halts"]))
        except (TypeError, ValueError):
            raise BashenvError(f"Halt-v0: the action's 'halts' must be 0 or 1, not "
                               f"{action['halts']!r}") from None
        return halts, str(action.get("output", ""))
    if isinstance(action, (bool, int, np.integer)):
        return bool(action), ""
    raise BashenvError(f"Halt-v0: the action must be {{'halts': 0|1, 'output': str}} or 0/1, "
                       f"not {type(action).__name__}")
