"""BashSWE-v0 through gymnasium, against the real engine."""

from __future__ import annotations

import asyncio
import time

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import bashenv  # noqa: F401  (registers BashSWE-v0)
from bashenv.agents import GoldAgent
from bashenv.env import BashSWEEnv
from bashenv.errors import BashenvError
from bashenv.sandbox.container import flush_removals
from bashenv.sandbox.engine import LABEL, client

from .conftest import TASKS_DIR, rid
from .gitdiff import committed_copy, git


def _containers(run_id: str) -> list:
    return client().containers.list(all=True, sparse=True, filters={"label": f"{LABEL}={run_id}"})


@pytest.fixture
def env():
    environment = gym.make("BashSWE-v0", tasks=str(TASKS_DIR), run_id=rid("env"),
                           render_mode="ansi")
    yield environment
    environment.close()


def test_reset_is_deterministic_cheap_and_lazy(env):
    obs, info = env.reset(seed=3)
    again, info2 = env.reset(seed=3)
    assert info == info2 and obs["issue"] == again["issue"]
    assert env.observation_space.contains(obs)
    assert obs["exit_code"] == -1 and obs["step"] == 0 and "submit" in obs["output"]
    assert not _containers(rid("env"))  # the container starts on the first step


def test_task_chosen_by_option(env, tasks):
    for task_id in sorted(tasks) * 2:  # each one, whatever the random pick would be
        obs, info = env.reset(seed=0, options={"task_id": task_id})
        assert info["task_id"] == task_id and obs["issue"] == tasks[task_id].problem_statement
    for index, task_id in enumerate(sorted(tasks)):
        assert env.reset(options={"task_index": index})[1]["task_id"] == task_id
    with pytest.raises(BashenvError, match="unknown task_id 'nope'"):
        env.reset(options={"task_id": "nope"})


def test_gold_agent_episode_gets_reward_one(env, textkit):
    obs, _ = env.reset(options={"task_id": textkit.id})
    agent = GoldAgent()
    agent.reset(textkit, obs)
    total, done, steps = 0.0, False, 0
    while not done:
        obs, reward, terminated, truncated, info = env.step(agent.act(obs))
        assert env.observation_space.contains(obs)
        total += reward
        steps += 1
        done = terminated or truncated
    assert terminated and not truncated and total == 1.0 and steps == 3
    assert info["verdict"]["outcome"] == "resolved"
    assert "verdict: resolved" in env.render()
    flush_removals()  # the container is removed in the background once the episode ends
    assert not _containers(rid("env"))


def test_exploring_then_submitting_nothing_gets_zero(env):
    env.reset(options={"task_id": "durations-spaces-case"})
    obs, reward, *_ = env.step("grep -rn 'def parse' durations")
    assert "durations/parse.py" in obs["output"] and obs["exit_code"] == 0 and reward == 0.0
    obs, reward, *_ = env.step("exit")
    obs, reward, *_ = env.step("pwd")
    assert obs["output"].startswith("/repo")
    obs, reward, terminated, truncated, info = env.step("submit")
    assert terminated and reward == 0.0 and info["verdict"]["outcome"] == "unresolved"
    with pytest.raises(RuntimeError, match="reset"):
        env.step("ls")


def test_agent_editing_hidden_test_files_gets_zero(env):
    env.reset(options={"task_id": "textkit-truncate-width"})
    env.step("rm -rf tests && mkdir tests && printf 'def test_truncate_never_longer_than_width():"
             "\\n    pass\\n' > tests/test_core.py")
    _, reward, terminated, _, info = env.step("submit")
    assert reward == 0.0 and "tests/test_core.py" in info["verdict"]["touched_test_files"]


def test_max_steps_truncates_and_still_grades():
    env = BashSWEEnv(str(TASKS_DIR), max_steps=2, run_id=rid("env"))
    try:
        env.reset(options={"task_id": "textkit-truncate-width"})
        _, _, terminated, truncated, _ = env.step("true")
        assert not (terminated or truncated)
        _, reward, terminated, truncated, info = env.step("true")
        assert truncated and not terminated and info["truncation"] == "max_steps"
        assert info["verdict"]["outcome"] == "unresolved" and reward == 0.0
    finally:
        env.close()


def test_truncation_without_grading_when_asked():
    env = BashSWEEnv(str(TASKS_DIR), max_steps=1, grade_on_truncation=False, run_id=rid("env"))
    try:
        env.reset(seed=0)
        _, reward, _, truncated, info = env.step("true")
        assert truncated and "verdict" not in info and reward == 0.0
    finally:
        env.close()


def test_close_is_idempotent_and_removes_the_container(env):
    env.reset(seed=1)
    env.step("true")
    assert len(_containers(rid("env"))) == 1
    env.close()
    env.close()
    assert not _containers(rid("env"))


def test_env_checker_passes():
    env = BashSWEEnv(str(TASKS_DIR), render_mode="ansi", run_id=rid("env"), command_timeout=10)
    try:
        check_env(env, skip_render_check=False)
    finally:
        env.close()


@pytest.mark.parametrize(("command", "code"), [("true", 0), ("false", 1), ("(exit 42)", 42),
                                               ("exit 7", 7), ("sh -c 'kill -9 $$'", 137),
                                               ("no-such-command-here", 127)])
def test_observation_carries_the_commands_exit_code(env, command, code):
    env.reset(options={"task_id": "textkit-truncate-width"})
    obs, *_ = env.step(command)
    assert obs["exit_code"] == code and obs["timed_out"] == 0, obs["output"]
    obs, *_ = env.step("echo next")  # the code belongs to its own step only
    assert obs["exit_code"] == 0 and obs["output"] == "next\n"


def test_a_hung_command_times_out_within_its_timeout_and_the_shell_lives_on():
    env = BashSWEEnv(str(TASKS_DIR), command_timeout=2, run_id=rid("env"))
    try:
        env.reset(options={"task_id": "textkit-truncate-width"})
        env.step("cd textkit && X=kept")
        started = time.monotonic()
        obs, reward, terminated, truncated, _ = env.step("echo before; sleep 30; echo finished")
        took = time.monotonic() - started
        assert obs["timed_out"] == 1 and 2 <= took < 10, took
        assert obs["exit_code"] != 0 and "before" in obs["output"] and "finished" not in obs["output"]
        assert not (terminated or truncated) and reward == 0.0
        obs, *_ = env.step("echo $X; pwd")
        assert obs["timed_out"] == 0 and obs["output"] == "kept\n/repo/textkit\n"
    finally:
        env.close()


def test_async_steps_carry_exit_codes_and_timeouts():
    async def episode(env):
        await env.areset(options={"task_id": "durations-spaces-case"})
        failed, *_ = await env.astep("(exit 3)")
        hung, *_ = await env.astep("sleep 30")
        fine, *_ = await env.astep("echo ok")
        return failed, hung, fine

    env = BashSWEEnv(str(TASKS_DIR), command_timeout=2, run_id=rid("env"))
    try:
        failed, hung, fine = asyncio.run(episode(env))
    finally:
        env.close()
    assert failed["exit_code"] == 3 and failed["timed_out"] == 0
    assert hung["timed_out"] == 1 and hung["exit_code"] != 0
    assert fine["exit_code"] == 0 and fine["timed_out"] == 0 and fine["output"] == "ok\n"


def test_episode_wall_clock_caps_a_command_and_truncates():
    env = BashSWEEnv(str(TASKS_DIR), command_timeout=60, episode_timeout=3, run_id=rid("env"),
                     grade_on_truncation=False)
    try:
        env.reset(options={"task_id": "textkit-truncate-width"})
        started = time.monotonic()
        obs, _, terminated, truncated, info = env.step("sleep 30")
        assert time.monotonic() - started < 10 and obs["timed_out"] == 1
        assert truncated and not terminated and info["truncation"] == "episode_timeout"
    finally:
        env.close()


def test_output_cap_of_the_task_applies(textkit):
    capped = textkit.model_copy(update={"limits": textkit.limits.model_copy(
        update={"output_chars": 300})})
    env = BashSWEEnv(capped, run_id=rid("env"))
    try:
        env.reset()
        obs, *_ = env.step("seq 1 5000")
        assert obs["output_truncated"] == 1 and len(obs["output"]) < 500
        assert obs["output"].startswith("1\n2\n") and obs["output"].endswith("4999\n5000\n")
        obs, *_ = env.step("seq 1 10")
        assert obs["output_truncated"] == 0 and obs["output"] == "".join(f"{i}\n" for i in range(1, 11))
    finally:
        env.close()


def test_model_patch_ignores_the_agents_git_settings(env, textkit, tmp_path):
    """Prefixes, renames and relative paths set in the agent's git config (repository or
    global) do not shape the model_patch that other harnesses apply."""
    obs, _ = env.reset(options={"task_id": textkit.id})
    for command in ("git config diff.noprefix true && git config diff.renames copies && "
                    "git config --global diff.mnemonicPrefix true && git config diff.relative true",
                    *GoldAgent().commands(textkit)[:-1],
                    GoldAgent().commands(textkit)[-1] + " && git mv README.md READ.md"):
        obs, *_ = env.step(command)
        assert obs["exit_code"] == 0, obs["output"]
    _, reward, _, _, info = env.step("submit")
    patch = info["model_patch"]
    headers = [line for line in patch.splitlines() if line.startswith("diff --git ")]
    assert reward == 1.0 and headers and all(h.startswith("diff --git a/") for h in headers)
    assert "rename from" not in patch and "deleted file mode" in patch
    repo = committed_copy(TASKS_DIR / "repos" / "textkit", tmp_path / "textkit")
    (tmp_path / "model.patch").write_text(patch)
    git(repo, "apply", "--check", str(tmp_path / "model.patch"))
