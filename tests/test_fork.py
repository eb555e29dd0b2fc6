"""env.fork(): an independent copy of a running BashSWE episode, against the real engine."""

from __future__ import annotations

import asyncio

import docker.errors
import pytest

from bashenv.agents import GoldAgent
from bashenv.env import BashSWEEnv
from bashenv.errors import BashenvError
from bashenv.sandbox.container import flush_removals
from bashenv.sandbox.engine import LABEL, client

from .conftest import TASKS_DIR, rid

RUN = rid("fork")


def _gone(box_id: str) -> bool:
    try:
        client().api.inspect_container(box_id)
    except docker.errors.NotFound:
        return True
    return False


def _committed_from(box_ids: set[str]) -> list[str]:
    """Images made from any of these containers (what a `docker commit` would leave)."""
    return [i["Id"] for i in client().api.images(all=True)
            if (client().api.inspect_image(i["Id"]).get("Container") or "") in box_ids]


def _out(env: BashSWEEnv, command: str) -> str:
    obs, reward, terminated, truncated, _ = env.step(command)
    assert reward == 0.0 and not terminated and not truncated
    return str(obs["output"])


@pytest.fixture
def env():
    environment = BashSWEEnv(str(TASKS_DIR), run_id=RUN)
    yield environment
    environment.close()


def test_fork_copies_files_and_shell_and_both_go_their_own_way(env):
    env.reset(options={"task_id": "textkit-truncate-width"})
    _out(env, "cd tests && export KEEP=orig && plain=1 && greet() { echo hello \"$1\"; } && "
              "alias say=echo && echo scratch > /tmp/note && echo home > ~/.notes && "
              "echo new > /repo/added.txt && rm /repo/README.md && mkdir -p /repo/d/e && "
              "umask 027")
    twin = env.fork()
    try:
        state = _out(twin, "pwd; echo $KEEP $plain; greet you; say aliased; cat /tmp/note ~/.notes "
                           "/repo/added.txt; ls /repo/README.md; test -d /repo/d/e && echo dir; "
                           "umask")
        assert state.splitlines() == [
            "/repo/tests", "orig 1", "hello you", "aliased", "scratch", "home", "new",
            "ls: cannot access '/repo/README.md': No such file or directory", "dir", "0027"]
        assert twin.sandbox is not None and env.sandbox is not None
        assert twin.sandbox.id != env.sandbox.id

        # Changes in the twin stay there ...
        _out(twin, "echo twin > /repo/added.txt; echo t > /tmp/only-twin; export KEEP=twin; "
                   "unset plain; cd /")
        assert _out(env, "pwd; echo $KEEP $plain; cat /repo/added.txt; ls /tmp").splitlines() == [
            "/repo/tests", "orig 1", "new", "note"]
        # ... and the original's stay in the original.
        _out(env, "echo orig-later > /repo/later.txt; export KEEP=again")
        assert _out(twin, "pwd; echo $KEEP ${plain-unset}; cat /repo/added.txt; "
                          "ls /repo/later.txt 2>&1").splitlines() == [
            "/", "twin unset", "twin",
            "ls: cannot access '/repo/later.txt': No such file or directory"]

        # A fork of a fork copies the twin's state, not the original's (here from asyncio).
        grandchild = asyncio.run(twin.afork())
        try:
            assert _out(grandchild, "pwd; echo $KEEP; cat /repo/added.txt").splitlines() == [
                "/", "twin", "twin"]
        finally:
            grandchild.close()
        boxes = {env.sandbox.id, twin.sandbox.id}
    finally:
        twin.close()
    flush_removals()
    assert _gone(next(iter(boxes - {env.sandbox.id})))  # the twin's box, once closed
    assert env.sandbox.id in boxes and not _gone(env.sandbox.id)  # the original runs on
    assert _out(env, "echo $KEEP").strip() == "again"
    assert not _committed_from(boxes)


def test_forks_are_graded_independently(env, textkit):
    obs, _ = env.reset(options={"task_id": textkit.id})
    _out(env, "cd /repo && git status --short")
    twin = env.fork()
    try:
        agent = GoldAgent()
        agent.reset(textkit, obs)
        done, info = False, {}
        while not done:  # the gold fix, in the twin only
            obs, reward, terminated, truncated, info = twin.step(agent.act(obs))
            done = terminated or truncated
        assert terminated and reward == 1.0 and info["verdict"]["outcome"] == "resolved"
        _, reward, terminated, _, info = env.step("submit")  # nothing changed here
        assert terminated and reward == 0.0 and info["verdict"]["outcome"] == "unresolved"
        with pytest.raises(BashenvError, match="finished episode"):
            env.fork()
    finally:
        twin.close()
    env.close()
    flush_removals()
    leftovers = client().containers.list(all=True, sparse=True,
                                         filters={"label": f"{LABEL}={RUN}"})
    assert not leftovers


def test_fork_before_the_first_command_starts_nothing(env):
    env.reset(options={"task_id": "textkit-truncate-width"})
    twin = env.fork()
    try:
        assert twin.sandbox is None and env.sandbox is None
        assert _out(twin, "pwd").strip() == "/repo"
        assert env.sandbox is None  # the twin's box is its own
    finally:
        twin.close()


def test_fork_into_a_warm_box_replaces_its_seeded_tree():
    from bashenv.sandbox.pool import WarmPool

    pool = WarmPool(size=1)
    environment = BashSWEEnv(str(TASKS_DIR), run_id=RUN, warm_pool=pool)
    try:
        environment.reset(options={"task_id": "textkit-truncate-width"})
        _out(environment, "rm README.md && echo kept > only.txt && cd textkit")
        twin = environment.fork()  # the pool's box holds the pristine repository
        try:
            assert _out(twin, "pwd; ls /repo/README.md 2>&1; cat /repo/only.txt").splitlines() == [
                "/repo/textkit", "ls: cannot access '/repo/README.md': No such file or directory",
                "kept"]
            assert _out(twin, "ls -A /repo | grep -c bashenv-fork || true").strip() == "0"
            found = _out(twin, 'test -x "$(command -v trace)" && echo found')
            assert found.strip() == "found"  # the in-box `trace` tool, and PATH, came along
        finally:
            twin.close()
    finally:
        environment.close()
        pool.close()


def test_a_backend_without_private_file_systems_cannot_fork():
    # On the host-process back-end the copy's commands would wipe the host's own /tmp.
    environment = BashSWEEnv(str(TASKS_DIR), run_id=RUN, backend="tests.local_backend:LocalBackend")
    try:
        environment.reset(options={"task_id": "textkit-truncate-width"})
        with pytest.raises(BashenvError, match="private_fs"):
            environment.fork()
    finally:
        environment.close()
