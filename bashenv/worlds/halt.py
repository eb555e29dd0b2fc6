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
"""

from __future__ import annotations

import inspect
import json
import logging
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
from bashenv.worlds.programs import FAMILIES, MIN_BUDGET, Program, generate

log = logging.getLogger("bashenv.worlds")

MAX_TEXT = 100_000
MAX_OUTPUT = 4000
MAX_BUDGET = 10**9
RUNNER = inspect.getsource(halt_runner)


class HaltEnv(gym.Env[dict[str, Any], Any]):
    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(self, *, step_budget: int = 20_000, halting_share: float = 0.5,
                 output_credit: float = 0.0, families: tuple[str, ...] = FAMILIES,
                 wall_timeout: float = 60.0, image: str | None = None,
                 run_id: str = PROCESS_RUN_ID, backend: str | Backend | None = None,
                 render_mode: str | None = None) -> None:
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
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', not {render_mode!r}")
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
            self.program = generate(self.np_random, self.step_budget, self.halting_share,
                                    self.families)
        self._last = ""
        return self._obs(), {"family": self.program.family}

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self.program is None:
            raise RuntimeError("call reset() before step()")
        halts, output = _parse_action(action)  # a malformed action keeps the episode
        program, self.program = self.program, None  # one decision per episode
        info: dict[str, Any] = {"family": program.family}
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

    def run_programs(self, programs: list[Program]) -> list[dict[str, Any]]:
        """Run programs in this env's sandbox (one fresh python3 process for the batch) and
        return each one's {"status": halted|budget|wall_timeout, "steps", "output", "error"}."""
        jobs = [{"source": p.source, "input": p.input, "budget": self.step_budget,
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
