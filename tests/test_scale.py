"""Warm pool, async API, thread-pool and vector use, against the real engine."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import gymnasium as gym
import pytest

import bashenv  # noqa: F401
from bashenv.agents import GoldAgent
from bashenv.env import BashSWEEnv
from bashenv.grading import Rewarder
from bashenv.sandbox import SandboxSpec
from bashenv.sandbox.engine import LABEL, client
from bashenv.sandbox.pool import WarmPool

from .conftest import TASKS_DIR, rid


@pytest.fixture
def pool():
    warm = WarmPool(size=2)
    yield warm
    warm.close()


def _wait_ready(pool: WarmPool, spec: SandboxSpec, n: int) -> None:
    deadline = time.monotonic() + 60
    while pool.ready(spec) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.ready(spec) >= n


def _exists(container_id: str) -> bool:
    return bool(client().containers.list(all=True, sparse=True, filters={"id": container_id}))


def test_pool_hands_out_distinct_warm_containers_and_refills(pool, base_image):
    spec = SandboxSpec(image=base_image, run_id=rid("pool"))
    pool.prefill(spec)
    _wait_ready(pool, spec, 2)
    first, second = pool.acquire(spec), pool.acquire(spec)
    try:
        assert first.id != second.id and first.why_dead() is None
        _wait_ready(pool, spec, 2)  # refilled in the background
    finally:
        first.remove()
        second.remove()
    pool.close()
    assert not client().containers.list(all=True, sparse=True, filters={"label": f"{LABEL}={rid('pool')}"})


def test_warm_shells_are_prepared_before_they_are_handed_out(pool, base_image):
    """`prepare` (the env puts its `trace` tool in) runs while the box waits warm, once per
    box; a box started on demand is prepared before it is returned."""
    spec = SandboxSpec(image=base_image, run_id=rid("pool"))
    prepared: list[str] = []

    def prepare(box, shell):
        shell.run("export PREPARED=yes", timeout=10)
        prepared.append(box.id)

    pool.prefill(spec, with_shell=True, prepare=prepare)
    deadline = time.monotonic() + 60
    while pool.ready(spec, with_shell=True) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    ready_before = list(prepared)
    box, shell = pool.acquire_with_shell(spec, prepare)
    try:
        assert box.id in ready_before  # prepared in the background, not on acquire
        assert shell.run("echo $PREPARED", timeout=10).output.strip() == "yes"
        assert prepared.count(box.id) == 1
    finally:
        box.remove()
    cold = WarmPool(size=0)
    try:
        box, shell = cold.acquire_with_shell(spec, prepare)
        try:
            assert shell.run("echo $PREPARED", timeout=10).output.strip() == "yes"
        finally:
            box.remove()
    finally:
        cold.close()


def test_env_with_pool_never_reuses_a_container(pool, textkit):
    env = BashSWEEnv(textkit, warm_pool=pool, run_id=rid("pool"))
    try:
        env.reset()
        first = env.unwrapped._box.id
        env.step("touch /tmp/was-here")
        env.step("submit")
        env.reset()
        second = env.unwrapped._box.id
        assert second != first
        obs, *_ = env.step("ls /tmp/was-here")
        assert obs["exit_code"] != 0
        time.sleep(1)  # removal happens in the background
        assert not _exists(first)
    finally:
        env.close()


def test_pooled_grading_uses_a_fresh_container(pool, textkit, textkit_image):
    rewarder = Rewarder(textkit, textkit_image, rid("pool"), pool)
    rewarder.prefill()
    _wait_ready(pool, rewarder.spec, 1)
    assert rewarder.grade(textkit.gold_patch).resolved
    assert rewarder.grade("").outcome == "unresolved"


async def _gold_episode(env: BashSWEEnv, index: int) -> float:
    obs, info = await env.areset(options={"task_index": index})
    agent = GoldAgent()
    agent.reset(env.task, obs)
    while True:
        obs, reward, terminated, truncated, info = await env.astep(agent.act(obs))
        if terminated or truncated:
            verdict = info["verdict"]
            assert verdict["outcome"] == "resolved", (verdict["error"], verdict["log"][-1500:])
            return reward


def test_sixteen_async_episodes_run_concurrently_to_verdicts(pool):
    envs = [BashSWEEnv(str(TASKS_DIR), warm_pool=pool, run_id=rid("async")) for _ in range(16)]

    async def main() -> list[float]:
        return await asyncio.gather(*(_gold_episode(e, i) for i, e in enumerate(envs)))

    try:
        rewards = asyncio.run(main())
    finally:
        for env in envs:
            env.close()
    assert rewards == [1.0] * 16


def test_async_steps_overlap_in_one_event_loop(textkit):
    envs = [BashSWEEnv(textkit, run_id=rid("async")) for _ in range(4)]

    async def main() -> float:
        await asyncio.gather(*(e.areset() for e in envs))
        await asyncio.gather(*(e.astep("true") for e in envs))  # start the shells
        started = time.monotonic()
        results = await asyncio.gather(*(e.astep("sleep 2; echo done") for e in envs))
        assert all(obs["output"] == "done\n" for obs, *_ in results)
        return time.monotonic() - started

    try:
        assert asyncio.run(main()) < 6  # four 2 s sleeps at once, not one after another
    finally:
        for env in envs:
            env.close()


def test_sync_envs_from_a_thread_pool(tasks):
    def episode(task_id: str) -> float:
        env = BashSWEEnv(str(TASKS_DIR), run_id=rid("threads"))
        try:
            obs, _ = env.reset(options={"task_id": task_id})
            agent = GoldAgent()
            agent.reset(env.task, obs)
            while True:
                obs, reward, terminated, truncated, info = env.step(agent.act(obs))
                if terminated or truncated:
                    assert reward == 1.0, (obs["output"], info)
                    return reward
        finally:
            env.close()

    with ThreadPoolExecutor(4) as threads:
        assert list(threads.map(episode, [*tasks, *tasks][:4])) == [1.0] * 4


def test_async_vector_env(textkit):
    def make() -> gym.Env:
        return gym.make("BashSWE-v0", tasks=str(TASKS_DIR / "textkit-truncate-width"),
                        run_id=rid("vector"))

    envs = gym.vector.AsyncVectorEnv([make, make], shared_memory=False,
                                     autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    try:
        obs, _ = envs.reset(seed=0)
        assert obs["step"].tolist() == [0, 0]
        obs, rewards, terminated, truncated, infos = envs.step(("echo one", "echo two"))
        assert list(obs["output"]) == ["one\n", "two\n"]
        gold = GoldAgent().commands(textkit)
        envs.step((gold[0], "true"))
        envs.step((gold[1], "true"))
        obs, rewards, terminated, truncated, infos = envs.step(("submit", "submit"))
        assert rewards.tolist() == [1.0, 0.0] and terminated.tolist() == [True, True]
        assert obs["step"].tolist() == [0, 0]  # SAME_STEP: already reset for the next episode
    finally:
        envs.close()
    assert not client().containers.list(all=True, sparse=True, filters={"label": f"{LABEL}={rid('vector')}"})
