"""Asynchronous rollouts with policy updates while episodes run.

A `RolloutCollector` keeps `concurrency` BashSWE episodes in flight on one event loop
(`BashSWEEnv.areset/astep`), puts each finished `Trajectory` on a queue that a learner
reads, and lets the learner swap the policy at any time. Episodes are never paused for
an update: the next action of every running episode comes from the new policy, so one
trajectory can span several policy versions. Each `Step` records the version that chose
it (and the behaviour log-probability when the policy gives one), which is what
off-policy corrections (importance ratios, truncation of stale steps) need.

    async with RolloutCollector(make_env, policy, concurrency=8) as rollouts:
        async for trajectory in rollouts:
            ...                                   # learn from it
            rollouts.set_policy(new_policy)       # or bump policy.version in place
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from bashenv.env import BashSWEEnv
from bashenv.errors import BashenvError


@dataclass
class Act:
    """A policy's answer when it has more to say than the command: the behaviour
    log-probability of the action, the version that really produced it (e.g. as an
    inference server reports the weights it sampled with), anything else to keep."""

    action: str
    logprob: float | None = None
    version: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Policy(Protocol):
    """`await policy(observation, trajectory)` returns the next bash command (or an `Act`).
    `trajectory` holds the episode so far (task, first observation, steps). `version`
    names the weights; it is read when the action is requested."""

    version: int

    async def __call__(self, observation: dict[str, Any], trajectory: Trajectory) -> str | Act: ...


@dataclass
class Step:
    """One action and what came back. `policy_version` is the version that chose the action."""

    action: str
    policy_version: int
    output: str
    exit_code: int
    reward: float
    logprob: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    seconds_policy: float = 0.0
    seconds_env: float = 0.0


@dataclass
class Trajectory:
    """One episode. `reward` is the episode's return (the verdict's reward at its end);
    `error` is set when the sandbox broke (infrastructure, not the policy's fault)."""

    episode: int
    task_id: str
    first_observation: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    verdict: dict[str, Any] | None = None
    error: str | None = None
    started: float = 0.0
    ended: float = 0.0

    @property
    def policy_versions(self) -> list[int]:
        """The distinct versions that acted in this episode, oldest first."""
        return sorted({s.policy_version for s in self.steps})

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (numpy scalars of the observation become Python numbers)."""
        data = asdict(self)
        data["first_observation"] = {k: v.item() if hasattr(v, "item") else v
                                     for k, v in self.first_observation.items()}
        return data


class _Stop:
    """Queue item: the producers are done (or failed with `error`)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class RolloutCollector:
    """Keeps `concurrency` episodes in flight and streams finished trajectories.

    make_env: builds one env per producer (made once, reset for every episode; pass a
        `warm_pool` to the env to make resets instant).
    policy: the first policy; `set_policy` swaps it, effective from the next action.
    episodes: how many episodes to run in all (None: until `close`).
    reset_options: episode number -> `reset` options (e.g. {"task_id": ...}); default:
        the env's seeded random pick.
    queue_size: finished trajectories waiting for the learner before producers wait (0:
        unbounded). A small bound keeps the data fresh: producers stop starting new
        episodes while the learner lags.
    """

    def __init__(self, make_env: Callable[[], BashSWEEnv], policy: Policy, *,
                 concurrency: int = 4, episodes: int | None = None,
                 reset_options: Callable[[int], dict[str, Any] | None] | None = None,
                 seed: int | None = None, queue_size: int = 0) -> None:
        if concurrency < 1:
            raise BashenvError(f"RolloutCollector: concurrency must be at least 1, not {concurrency}")
        if episodes is not None and episodes < 0:
            raise BashenvError(f"RolloutCollector: episodes must be >= 0, not {episodes}")
        self._check_policy(policy)
        self.policy = policy
        self.make_env = make_env
        self.concurrency = concurrency
        self.episodes = episodes
        self.reset_options = reset_options
        self.seed = seed
        self.queue: asyncio.Queue[Trajectory | _Stop] = asyncio.Queue(queue_size)
        self.in_flight = 0          # episodes between reset and their trajectory's put
        self.max_in_flight = 0
        self.started = 0
        self.finished = 0
        self._numbers = itertools.count()
        self._envs: list[BashSWEEnv] = []
        self._workers: list[asyncio.Task[None]] = []
        self._supervisor: asyncio.Task[None] | None = None
        self._closed = False

    # -- the learner's side ------------------------------------------------------------------

    def set_policy(self, policy: Policy) -> None:
        """Swap the policy; running episodes take their next action from it."""
        self._check_policy(policy)
        self.policy = policy

    def start(self) -> None:
        """Start the producers (done by `async with` and by the first `get`)."""
        if self._supervisor is None:
            if self._closed:
                raise BashenvError("RolloutCollector is closed")
            self._workers = [asyncio.create_task(self._produce(), name=f"rollout-{i}")
                             for i in range(self.concurrency)]
            self._supervisor = asyncio.create_task(self._supervise())

    async def get(self) -> Trajectory:
        """The next finished trajectory. Raises StopAsyncIteration once `episodes` are
        all delivered, and re-raises an exception that stopped a producer (e.g. from
        the policy)."""
        self.start()
        item = await self.queue.get()
        if isinstance(item, _Stop):
            self.queue.put_nowait(item)  # later calls see the end too
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        return item

    def __aiter__(self) -> AsyncIterator[Trajectory]:
        return self

    async def __anext__(self) -> Trajectory:
        return await self.get()

    async def close(self) -> None:
        """Stop every episode at once and remove its container (idempotent). Episodes
        still running are dropped, not delivered."""
        self._closed = True
        tasks = [*self._workers, *([self._supervisor] if self._supervisor else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        envs, self._envs = self._envs, []
        # close() removes the container and waits for background removals: off the loop.
        await asyncio.gather(*(asyncio.to_thread(env.close) for env in envs))

    async def __aenter__(self) -> RolloutCollector:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- producers -----------------------------------------------------------------------

    @staticmethod
    def _check_policy(policy: object) -> None:
        if not callable(policy) or not isinstance(getattr(policy, "version", None), int):
            raise BashenvError(f"a policy is an async callable with an int `version`; got {policy!r}")

    async def _supervise(self) -> None:
        """Close the stream when every producer is done, or at the first failure."""
        try:
            for done in asyncio.as_completed(self._workers):
                await done
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a producer failed: the learner hears of it
            for task in self._workers:
                task.cancel()
            await self.queue.put(_Stop(exc))
            return
        await self.queue.put(_Stop())

    def _claim_episode(self) -> int | None:
        number = next(self._numbers)
        return None if self.episodes is not None and number >= self.episodes else number

    async def _produce(self) -> None:
        env = self.make_env()
        self._envs.append(env)
        while (number := self._claim_episode()) is not None:
            self.in_flight += 1
            self.started += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                trajectory = await self._episode(env, number)
                await self.queue.put(trajectory)
                self.finished += 1
            finally:
                self.in_flight -= 1

    async def _episode(self, env: BashSWEEnv, number: int) -> Trajectory:
        options = self.reset_options(number) if self.reset_options else None
        seed = None if self.seed is None else self.seed + number
        observation, info = await env.areset(seed=seed, options=options)
        trajectory = Trajectory(number, info["task_id"], observation, started=time.time())
        done = False
        while not done:
            policy = self.policy  # the version is fixed when the action is asked for
            version = policy.version
            began = time.perf_counter()
            answer = await policy(observation, trajectory)
            if not isinstance(answer, (str, Act)):
                raise BashenvError(f"policy {policy!r} returned {type(answer).__name__}, "
                                   "not a command (str) or an Act")
            act = answer if isinstance(answer, Act) else Act(answer)
            asked = time.perf_counter()
            observation, reward, terminated, truncated, info = await env.astep(act.action)
            trajectory.steps.append(Step(
                act.action, version if act.version is None else act.version,
                observation["output"], int(observation["exit_code"]), float(reward),
                act.logprob, act.extra, asked - began, time.perf_counter() - asked))
            done = terminated or truncated
        trajectory.reward = sum(s.reward for s in trajectory.steps)
        trajectory.terminated, trajectory.truncated = bool(terminated), bool(truncated)
        trajectory.verdict = info.get("verdict")
        trajectory.error = info.get("error")
        trajectory.ended = time.time()
        return trajectory


async def collect(make_env: Callable[[], BashSWEEnv], policy: Policy, episodes: int,
                  concurrency: int = 4, **options: Any) -> list[Trajectory]:
    """Run `episodes` episodes with a fixed policy and return their trajectories (in the
    order they finished). For evaluation or SFT data; a learner uses the collector."""
    async with RolloutCollector(make_env, policy, concurrency=concurrency, episodes=episodes,
                                **options) as rollouts:
        return [t async for t in rollouts]

