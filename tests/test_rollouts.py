"""The asynchronous rollout collector against the real engine: policy swaps while episodes
run, every trajectory delivered once, N in flight, nothing left behind on close."""

from __future__ import annotations

import asyncio
import shlex

import pytest

from bashenv.env import BashSWEEnv
from bashenv.errors import BashenvError
from bashenv.rl import Act, RolloutCollector, Trajectory, collect
from bashenv.sandbox.container import flush_removals
from bashenv.sandbox.engine import LABEL, client

from .conftest import rid


def _containers(run_id: str) -> list:
    return client().containers.list(all=True, sparse=True, filters={"label": f"{LABEL}={run_id}"})


def _apply(patch: str) -> str:
    return f"printf %s {shlex.quote(patch)} > /tmp/fix.patch && git apply /tmp/fix.patch"


class Scripted:
    """Plays `script[i]` at step i; waits at step `gate_at` until `gate` opens (so the test
    can swap the policy while every episode is mid-way)."""

    def __init__(self, version: int, script: list[str], gate: asyncio.Event | None = None,
                 gate_at: int = -1) -> None:
        self.version, self.script, self.gate, self.gate_at = version, script, gate, gate_at
        self.waiting = 0
        self.in_flight_seen: list[int] = []
        self.collector: RolloutCollector | None = None

    async def __call__(self, observation: dict, trajectory: Trajectory) -> str | Act:
        step = len(trajectory.steps)
        if self.collector is not None:
            self.in_flight_seen.append(self.collector.in_flight)
        if step == self.gate_at and self.gate is not None and not self.gate.is_set():
            self.waiting += 1
            await self.gate.wait()
        return Act(self.script[step], logprob=-0.5) if step == 0 else self.script[step]


def test_policy_swapped_mid_episode_versions_recorded_each_trajectory_once(textkit):
    gate = asyncio.Event()
    old = Scripted(0, ["echo one", "echo two", "true", "submit"], gate, gate_at=1)
    new = Scripted(1, ["echo one", "echo two", _apply(textkit.gold_patch or ""), "submit"])
    run_id = rid("rollouts")

    async def learner() -> tuple[list[Trajectory], RolloutCollector]:
        collector = RolloutCollector(lambda: BashSWEEnv(textkit, run_id=run_id), old,
                                     concurrency=2, episodes=3)
        old.collector = new.collector = collector
        async with collector:
            while old.waiting < 2:  # both first episodes have run a command and wait mid-way
                await asyncio.sleep(0.01)
            assert collector.in_flight == 2 and len(_containers(run_id)) == 2
            collector.set_policy(new)
            gate.set()
            got = [t async for t in collector]
        return got, collector

    got, collector = asyncio.run(learner())
    assert sorted(t.episode for t in got) == [0, 1, 2]  # each exactly once
    assert collector.max_in_flight == 2 and collector.finished == 3
    assert max(old.in_flight_seen + new.in_flight_seen) == 2
    for t in got:
        versions = [s.policy_version for s in t.steps]
        assert versions == ([0, 0, 1, 1] if t.episode < 2 else [1, 1, 1, 1]), t.episode
        assert t.reward == 1.0 and t.terminated and t.verdict and t.verdict["outcome"] == "resolved"
        assert t.steps[0].output.strip() == "one" and t.steps[0].logprob == -0.5
        assert t.task_id == textkit.id and t.ended >= t.started
    assert got[0].to_dict()["steps"][0]["policy_version"] in (0, 1)
    assert [t.policy_versions for t in got if t.episode < 2] == [[0, 1], [0, 1]]
    flush_removals()
    assert not _containers(run_id)


def test_close_while_commands_run_removes_every_container(textkit):
    run_id = rid("rollouts-close")
    policy = Scripted(0, ["echo up", "sleep 60", "submit"])

    async def main() -> RolloutCollector:
        collector = RolloutCollector(lambda: BashSWEEnv(textkit, run_id=run_id), policy,
                                     concurrency=3)
        policy.collector = collector
        async with collector:
            while len(policy.in_flight_seen) < 6:  # all three are inside `sleep 60`
                await asyncio.sleep(0.01)
            assert len(_containers(run_id)) == 3 and collector.in_flight == 3
        return collector

    collector = asyncio.run(main())
    assert collector.finished == 0  # nothing half-done was delivered
    flush_removals()
    assert not _containers(run_id)


def test_an_exception_in_the_policy_reaches_the_learner(textkit):
    class Broken:
        version = 7

        async def __call__(self, observation: dict, trajectory: Trajectory) -> str:
            raise ValueError("model server gone")

    class NotACommand:
        version = 0

        async def __call__(self, observation: dict, trajectory: Trajectory) -> object:
            return None

    async def first(policy: object) -> None:
        async with RolloutCollector(lambda: BashSWEEnv(textkit, run_id=rid("rollouts-err")),
                                    policy, concurrency=2) as collector:  # type: ignore[arg-type]
            await collector.get()

    with pytest.raises(ValueError, match="model server gone"):
        asyncio.run(first(Broken()))
    with pytest.raises(BashenvError, match="returned NoneType"):
        asyncio.run(first(NotACommand()))
    assert not _containers(rid("rollouts-err"))


def test_bad_arguments_are_named(textkit):
    with pytest.raises(BashenvError, match="concurrency must be at least 1"):
        RolloutCollector(lambda: BashSWEEnv(textkit), Scripted(0, []), concurrency=0)
    with pytest.raises(BashenvError, match="int `version`"):
        RolloutCollector(lambda: BashSWEEnv(textkit), lambda o, t: "ls")  # type: ignore[arg-type]


def test_collect_with_a_bounded_queue_and_truncated_episodes(tasks):
    run_id = rid("rollouts-collect")
    policy = Scripted(0, ["echo hi"])
    ids = sorted(tasks)
    got = asyncio.run(collect(
        lambda: BashSWEEnv(list(tasks.values()), max_steps=1, grade_on_truncation=False,
                           run_id=run_id),
        policy, episodes=3, concurrency=2, queue_size=1,
        reset_options=lambda n: {"task_id": ids[n]}))
    assert sorted((t.episode, t.task_id) for t in got) == list(enumerate(ids))
    for t in got:
        assert t.truncated and not t.terminated and t.verdict is None and t.reward == 0.0
        assert [s.output.strip() for s in t.steps] == ["hi"]
    flush_removals()
    assert not _containers(run_id)
