"""Halt-v0's program generator and its step-budget runner, without an engine: every
generated program's label agrees with a run under the budget (the same runner the
sandbox uses, here in-process), the halting share is what was asked, and all of it is
reproducible from the seed."""

from __future__ import annotations

import numpy as np
import pytest

from bashenv.errors import BashenvError
from bashenv.worlds.halt import HaltEnv, _parse_action
from bashenv.worlds.halt_runner import run
from bashenv.worlds.programs import FAMILIES, MARGIN, generate

USES_ENGINE = False


def _run(program, budget: int) -> dict:
    return run({"source": program.source, "input": program.input, "budget": budget})


@pytest.mark.parametrize("budget", [2_000, 20_000])
def test_every_generated_label_agrees_with_the_run(budget):
    rng = np.random.default_rng(budget)
    seen = set()
    for _ in range(150 if budget == 2_000 else 60):
        program = generate(rng, budget)
        result = _run(program, budget)
        assert result["error"] is None, (program.source, result)
        assert (result["status"] == "halted") == program.halts, (program, result)
        if program.halts:  # far from the bound, so the label never hinges on the count
            assert result["steps"] * MARGIN <= budget * 1.1, (program, result)
        seen.add((program.family, program.halts))
    assert seen == {(f, h) for f in FAMILIES for h in (True, False)}


@pytest.mark.parametrize("share", [0.0, 0.2, 0.5, 1.0])
def test_the_halting_share_is_what_was_asked(share):
    rng = np.random.default_rng(7)
    labels = [generate(rng, 20_000, halting_share=share).halts for _ in range(2000)]
    assert abs(np.mean(labels) - share) < 0.04


def test_programs_and_step_counts_are_reproducible():
    first = [generate(np.random.default_rng(s), 5_000) for s in range(20)]
    again = [generate(np.random.default_rng(s), 5_000) for s in range(20)]
    assert first == again
    assert len({p.source + p.input for p in first}) > 15
    for program in first[:8]:
        assert _run(program, 5_000) == _run(program, 5_000)


def test_runner_counts_lines_and_stops_at_the_budget():
    counted = run({"source": "x = 0\nfor i in range(3):\n    x += i\nprint(x)\n",
                   "input": "", "budget": 100})
    # line events: x = 0 (1), the for line 4 times, the body 3 times, print (1)
    assert counted == {"status": "halted", "steps": 9, "output": "3\n", "error": None}
    endless = run({"source": "while True:\n    pass\n", "input": "", "budget": 50})
    assert endless["status"] == "budget" and endless["steps"] == 51
    caught = run({"source": "try:\n    while True:\n        pass\nexcept Exception:\n"
                            "    print('escaped')\n", "input": "", "budget": 50})
    assert caught["status"] == "budget" and caught["output"] == ""
    crashed = run({"source": "def f(n):\n    return f(n + 1)\nf(0)\n", "input": "",
                   "budget": 10**7})
    assert crashed["status"] == "halted" and crashed["error"].startswith("RecursionError")
    reads = run({"source": "print(int(input()) * 2)\n", "input": "21\n", "budget": 10})
    assert reads["output"] == "42\n"


def test_bad_options_and_actions_are_named():
    with pytest.raises(BashenvError, match="step_budget"):
        HaltEnv(step_budget=10)
    with pytest.raises(BashenvError, match="halting_share"):
        HaltEnv(halting_share=1.5)
    with pytest.raises(BashenvError, match="unknown families"):
        HaltEnv(families=("nope",))
    with pytest.raises(BashenvError, match="'halts' key"):
        _parse_action({"output": "x"})
    with pytest.raises(BashenvError, match="not str"):
        _parse_action("yes")
    with pytest.raises(BashenvError, match="'halts' must be 0 or 1, not 'maybe'"):
        _parse_action({"halts": "maybe"})
    assert _parse_action({"halts": np.int64(1), "output": "3\n"}) == (True, "3\n")
    assert _parse_action(0) == (False, "")


def test_a_malformed_action_keeps_the_episode():
    env = HaltEnv()
    env.reset(seed=3)
    program = env.program
    with pytest.raises(BashenvError, match="'halts'"):
        env.step({"halts": "maybe"})
    assert env.program == program and env.sandbox is None


def test_reset_is_seeded_and_needs_no_sandbox():
    env = HaltEnv()
    obs, info = env.reset(seed=5)
    again, info2 = env.reset(seed=5)
    assert obs == again and info == info2
    assert env.observation_space.contains(obs)
    given, info = env.reset(options={"program": "print(1)\n", "input": ""})
    assert given["program"] == "print(1)\n" and info["family"] == "given"
    assert env.sandbox is None  # the sandbox starts on the first step
