"""gVisor (runsc) as the container runtime: the same episode, in a user-space kernel.

scripts/bootstrap.sh installs Debian's runsc and registers it with dockerd, so this
runs in CI. On a machine where runsc is not registered the tests are skipped, and
the README says what that means.
"""

from __future__ import annotations

import pytest

from bashenv.agents import GoldAgent
from bashenv.env import BashSWEEnv
from bashenv.sandbox.engine import client

from .conftest import rid


@pytest.fixture(autouse=True)
def _needs_runsc():
    # Asked when a test runs, not at import: collecting this file needs no engine.
    if "runsc" not in client().info().get("Runtimes", {}):
        pytest.skip("the runsc runtime is not registered with dockerd")


def test_gold_episode_under_gvisor(textkit):
    env = BashSWEEnv(textkit, runtime="runsc", run_id=rid("gvisor"), command_timeout=20)
    try:
        obs, _ = env.reset()
        kernel, *_ = env.step("dmesg 2>/dev/null | head -1; uname -r")
        assert "gVisor" in kernel["output"] or "4.4.0" in kernel["output"], kernel["output"]
        assert client().api.inspect_container(env._box.id)["HostConfig"]["Runtime"] == "runsc"
        agent = GoldAgent()
        agent.reset(textkit, obs)
        while True:
            obs, reward, terminated, truncated, info = env.step(agent.act(obs))
            if terminated or truncated:
                break
        assert reward == 1.0, info
    finally:
        env.close()


def test_timeout_and_exit_under_gvisor(textkit):
    env = BashSWEEnv(textkit, runtime="runsc", run_id=rid("gvisor"), command_timeout=2)
    try:
        env.reset()
        obs, *_ = env.step("sleep 60")
        assert obs["timed_out"] == 1
        env.step("exit")
        obs, *_ = env.step("echo back")
        assert obs["output"].startswith("back")
    finally:
        env.close()
