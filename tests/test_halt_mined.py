"""Halt-v0 with programs mined from a real repository (SWE-bench sample: requests at an
instance's base commit, imported with bashenv's importer), on the real engine: gymnasium's
checker passes, each mined episode's label is what its run in the sandbox did, both labels
occur, and an oracle scores 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from gymnasium.utils.env_checker import check_env

from bashenv.swebench.importer import instance_tasks
from bashenv.worlds.halt import HaltEnv
from bashenv.worlds.programs import Program

from .conftest import rid

SAMPLE = Path("/work/shared/swebench-sample")
for _parent in Path(__file__).resolve().parents:
    if (_parent / "shared" / "swebench-sample").is_dir():
        SAMPLE = _parent / "shared" / "swebench-sample"
        break
INSTANCE = "psf__requests-863"
BUDGET = 3_000


@pytest.fixture(scope="module")
def env():
    tasks = instance_tasks(SAMPLE / "instances.json", SAMPLE / "repos", ids=[INSTANCE])
    environment = HaltEnv(tasks=tasks, mined_share=1.0, step_budget=BUDGET,
                          run_id=rid("halt-mined"))
    yield environment
    environment.close()


def test_functions_are_mined_from_the_base_commit(env):
    mined = {m.name: m for m in env.mined_functions()}
    assert "iter_slices" in mined  # requests/utils.py: a generator with a while loop
    assert mined["iter_slices"].path == "requests/utils.py"
    assert mined["iter_slices"].origin == f"{INSTANCE}@a0df2cbb1041"


def test_check_env_passes_with_mined_programs(env):
    check_env(env, skip_render_check=True)


def test_mined_labels_are_what_the_sandbox_run_did(env):
    seen = []
    for seed in range(10):
        obs, info = env.reset(seed=seed)
        program = env.program
        assert program is not None and obs["program"] == program.source
        if info["family"] != "mined":  # the repository gave no program of the drawn label
            continue
        assert info["origin"].startswith(f"{INSTANCE}@a0df2cbb1041:requests/")
        assert "mutation" not in info  # a hint at the label: told only after the decision
        _, reward, terminated, truncated, step_info = env.step({"halts": int(program.halts)})
        assert terminated and not truncated and "generator_mismatch" not in step_info
        assert step_info["halts"] == program.halts and reward == 1.0
        assert step_info["mutation"] == program.mutation
        if program.halts:
            assert step_info["steps"] <= BUDGET and step_info["exception"] is None
        else:
            assert step_info["steps"] == BUDGET + 1
        seen.append(program.halts)
    assert len(seen) >= 6 and set(seen) == {True, False}
    # the same seed gives the same program (screening results are remembered)
    first = env.reset(seed=3)[0]
    assert env.reset(seed=3)[0] == first


def test_screening_keeps_only_clear_outcomes(env):
    """Halting well within the budget: True; still running at 4x the budget: False; an
    exception or an end near the budget: None (never shown)."""
    loop = "n = int(input())\nwhile n:\n    n -= 1\n"  # about 2 line events a round
    programs = [Program(loop, f"{n}\n", True, "mined") for n in (10, BUDGET // 2, -1)]
    programs.append(Program("print([][0])\n", "", True, "mined"))
    labels = env.screen(programs)
    assert [label for label, _ in labels] == [True, None, False, None]
    assert labels[0][1] == 2 * 10 + 2 and labels[2][1] == 4 * BUDGET + 1


ONE_AND_TWO_SIDED = '''\
def both(n, step):
    rounds = 0
    while n > 0:
        n -= step
        rounds += 1
    return rounds


def needs_object(obj):
    parts = []
    while len(parts) < 3:
        parts.append(0)
    return obj.missing
'''


def test_two_sided_mining_shows_only_functions_that_go_both_ways(tmp_path):
    """needs_object's halting drafts all raise (an int has no .missing), so it could only
    give "does not halt" episodes: with mined_two_sided it is never shown."""
    (tmp_path / "m.py").write_text(ONE_AND_TWO_SIDED)
    environment = HaltEnv(sources=[tmp_path], mined_share=1.0, mined_two_sided=True,
                          step_budget=BUDGET, run_id=rid("halt-two-sided"))
    try:
        found = {m.name: m for m in environment.mined_functions()}
        assert set(found) == {"both", "needs_object"}
        assert environment.goes_both_ways(found["both"])
        assert not environment.goes_both_ways(found["needs_object"])
        shown = set()
        for seed in range(6):
            _, info = environment.reset(seed=seed)
            if info["family"] == "mined":
                shown.add(info["origin"].rsplit("::", 1)[1])
        assert shown == {"both"}
    finally:
        environment.close()
