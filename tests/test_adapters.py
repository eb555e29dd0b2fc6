"""The RL-trainer adapters with the real frameworks installed (skyrl-gym, openenv-core) and
real containers underneath: a scripted model drives each to a verdict."""

from __future__ import annotations

import asyncio
import shlex
import socket
import threading
from collections.abc import Iterator

import pytest

from bashenv.rl.text import FormatError, parse_command
from bashenv.sandbox.container import flush_removals
from bashenv.sandbox.engine import LABEL, client

from .conftest import TASKS_DIR, rid


def _containers(run_id: str) -> list:
    return client().containers.list(all=True, sparse=True, filters={"label": f"{LABEL}={run_id}"})


def _fix(patch: str) -> str:
    return f"printf %s {shlex.quote(patch)} > /tmp/fix.patch && git apply /tmp/fix.patch"


def test_replies_hold_exactly_one_bash_block():
    assert parse_command("Let me look.\n```bash\nls -la\n```") == "ls -la"
    assert parse_command("```sh\ncat <<'EOF' > a\nx\nEOF\n```\n") == "cat <<'EOF' > a\nx\nEOF"
    for reply in ("no block at all", "```bash\nls\n```\n```bash\npwd\n```", "```bash\n \n```"):
        with pytest.raises(FormatError):
            parse_command(reply)


def test_skyrl_env_episode_to_a_resolved_verdict(textkit):
    import skyrl_gym  # declared in the dev extra: a broken install fails, never skips

    from bashenv.rl.skyrl import ENV_CLASS, dataset_rows, register

    register()
    register()  # idempotent
    rows = [row for row in dataset_rows(str(TASKS_DIR)) if row["task_id"] == textkit.id]
    run_id = rid("skyrl")
    env = skyrl_gym.make(ENV_CLASS, env_config={"tasks": str(TASKS_DIR), "run_id": run_id},
                         extras=rows[0])
    try:
        prompt, info = env.init(rows[0]["prompt"])
        assert info["task_id"] == textkit.id and textkit.problem_statement in prompt[1]["content"]
        assert not _containers(run_id)  # init is cheap: no container yet
        out = env.step("I will look around first.")  # no bash block: told, turn spent
        assert not out["done"] and "Format error" in out["observations"][0]["content"]
        out = env.step("```bash\ngrep -n 'def truncate' -r textkit\n```")
        assert not out["done"] and "[exit code 0]" in out["observations"][0]["content"]
        assert out["postprocessed_action"] == "grep -n 'def truncate' -r textkit"
        out = env.step(f"Applying the fix.\n```bash\n{_fix(textkit.gold_patch or '')}\n```")
        assert "[exit code 0]" in out["observations"][0]["content"]
        out = env.step("```bash\nsubmit\n```")
        assert out["done"] and out["reward"] == 1.0 and out["observations"] == []
        assert out["metadata"]["verdict"]["outcome"] == "resolved"
        assert env.get_metrics() == {"turns": 4, "resolved": 1.0}
    finally:
        env.close()
    flush_removals()
    assert not _containers(run_id)


def test_skyrl_env_out_of_turns_grades_what_is_there(textkit):
    import skyrl_gym

    from bashenv.rl.skyrl import ENV_CLASS, register

    register()
    env = skyrl_gym.make(ENV_CLASS, env_config={"tasks": str(TASKS_DIR), "run_id": rid("skyrl")},
                         extras={"extra_info": {"task_id": textkit.id, "max_turns": 1}})
    try:
        env.init([])
        out = env.step("```bash\necho only one turn\n```")
        assert out["done"] and out["reward"] == 0.0
        assert out["metadata"]["verdict"]["outcome"] == "unresolved"
    finally:
        env.close()


@pytest.fixture
def openenv_server() -> Iterator[str]:
    """The OpenEnv app on 127.0.0.1 (an ephemeral port), in a thread of this process."""
    import uvicorn

    from bashenv.rl.openenv import make_app

    app = make_app(max_sessions=4, tasks=str(TASKS_DIR), run_id=rid("openenv"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(30)
    sock.close()


def test_openenv_sessions_run_concurrently_to_verdicts(openenv_server, textkit):
    from bashenv.rl.openenv import BashAction, BashSWEClient

    async def episode(fix: bool) -> tuple[float, dict, int]:
        async with BashSWEClient(base_url=openenv_server, message_timeout_s=300) as env:
            result = await env.reset(task_id=textkit.id)
            assert result.observation.task_id == textkit.id and result.observation.step == 0
            result = await env.step(BashAction(command="cat textkit/__init__.py | head -3; pwd"))
            assert "/repo" in result.observation.output and not result.done
            if fix:
                result = await env.step(BashAction(command=_fix(textkit.gold_patch or "")))
                assert result.observation.exit_code == 0
            result = await env.step(BashAction(command="submit"))
            assert result.done
            state = await env.state()
            return result.reward or 0.0, result.observation.verdict or {}, state.step_count

    async def main() -> list[tuple[float, dict, int]]:
        return await asyncio.gather(episode(True), episode(False))

    (won, verdict, steps), (lost, other, other_steps) = asyncio.run(main())
    assert (won, verdict["outcome"], steps) == (1.0, "resolved", 3)
    assert (lost, other["outcome"], other_steps) == (0.0, "unresolved", 2)
    flush_removals()
    assert not _containers(rid("openenv"))
