"""Halt-v0 against the real engine: the ground truth is a run in a sandbox, the rewards
are honest, gymnasium's checker passes, and the wall-time safety net is never a label."""

from __future__ import annotations

import docker.errors
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import bashenv  # noqa: F401  (registers Halt-v0)
from bashenv.sandbox.container import flush_removals
from bashenv.sandbox.engine import client
from bashenv.worlds.halt import HaltEnv
from bashenv.worlds.programs import generate

from .conftest import rid

RUN = rid("halt")
BUDGET = 5_000


@pytest.fixture(scope="module")
def env():
    environment = HaltEnv(step_budget=BUDGET, run_id=RUN, render_mode="ansi")
    yield environment
    environment.close()


def test_check_env_passes():
    environment = gym.make("Halt-v0", step_budget=BUDGET, run_id=RUN)
    try:
        check_env(environment.unwrapped, skip_render_check=True)
    finally:
        environment.close()


def test_generated_labels_agree_with_sandbox_runs(env):
    rng = np.random.default_rng(12)
    programs = [generate(rng, BUDGET) for _ in range(60)]
    results = env.run_programs(programs)
    assert [r["status"] == "halted" for r in results] == [p.halts for p in programs]
    assert all(r["error"] is None for r in results)
    assert {p.halts for p in programs} == {True, False}
    assert env.run_programs(programs[:20]) == results[:20]  # same steps, same output


def test_the_sandbox_is_locked_down(env):
    env.reset(options={"program": "import os, socket\nprint(os.getuid())\n"
                                  "socket.create_connection(('1.1.1.1', 53), timeout=2)\n"})
    *_, info = env.step({"halts": 1})
    assert info["output"] == "1000\n" and info["exception"].startswith("OSError")
    box = env.sandbox
    assert box is not None
    config = client().api.inspect_container(box.id)["HostConfig"]
    assert config["NetworkMode"] == "none" and config["ReadonlyRootfs"]


def test_an_oracle_scores_one_and_always_halts_scores_the_halting_share(env):
    oracle, constant, halting = [], [], []
    for seed in range(16):
        env.reset(seed=seed)
        label = env.program.halts
        _, reward, terminated, truncated, info = env.step({"halts": int(label), "output": ""})
        assert terminated and not truncated and info["halts"] == label
        oracle.append(reward)
        env.reset(seed=seed)
        _, reward, *_ = env.step(1)
        constant.append(reward)
        halting.append(label)
    assert oracle == [1.0] * 16
    assert constant == [float(h) for h in halting] and 0 < sum(halting) < 16


def test_output_credit_and_user_programs():
    environment = HaltEnv(step_budget=BUDGET, run_id=RUN, output_credit=0.5)
    try:
        source = "n = int(input())\nprint(sum(range(n)))\n"
        for output, expected in (("45\n", 1.0), ("44\n", 0.5)):
            environment.reset(options={"program": source, "input": "10\n"})
            _, reward, *_ , info = environment.step({"halts": 1, "output": output})
            assert reward == expected and info["output"] == "45\n" and info["halts"]
        environment.reset(options={"program": "while True:\n    pass\n"})
        _, reward, *_, info = environment.step({"halts": 0, "output": "anything"})
        assert reward == 1.0 and not info["halts"] and info["steps"] == BUDGET + 1
    finally:
        environment.close()


def test_wall_time_is_a_safety_net_not_a_label():
    environment = HaltEnv(step_budget=BUDGET, run_id=RUN, wall_timeout=1)
    try:
        environment.reset(options={"program": "import time\nwhile True:\n    time.sleep(1)\n"})
        _, reward, terminated, truncated, info = environment.step({"halts": 0})
        assert truncated and not terminated and reward == 0.0
        assert "safety net" in info["error"] and "halts" not in info
        box = environment.sandbox
        assert box is not None
    finally:
        environment.close()
    flush_removals()
    with pytest.raises(docker.errors.NotFound):  # close() removed the box
        client().api.inspect_container(box.id)
