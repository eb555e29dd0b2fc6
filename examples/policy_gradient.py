"""A policy-gradient-shaped loop over asynchronous rollouts, with a scripted "model".

The shape of asynchronous RL on BashSWE (as CWM's RL ran): producers keep episodes in
flight (`RolloutCollector`), the learner takes each finished trajectory as it arrives,
updates the policy and bumps its version while other episodes are still running. Steps
taken by an older version are corrected with a clipped importance ratio between the
current policy and the behaviour log-probability recorded in the step.

The "model" is a softmax over a small menu of edits per task (the right fix among wrong
ones), so the loop runs without a GPU and the learning is visible: the probability of
the fix rises as resolved episodes come back with reward 1.

    python examples/policy_gradient.py                          # 6 episodes, 3 in flight
    python examples/policy_gradient.py --episodes 40 --concurrency 8 --lr 2
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import shlex
from typing import Any

from bashenv.env import BashSWEEnv
from bashenv.env.bash_swe import default_tasks_dir
from bashenv.rl import Act, RolloutCollector, Trajectory
from bashenv.task import Task, load_tasks

WRONG_EDITS = ["true", "echo '# TODO' >> README.md"]


def fix_command(task: Task) -> str:
    return f"printf %s {shlex.quote(task.gold_patch or '')} > /tmp/fix.patch && git apply /tmp/fix.patch"


class MenuPolicy:
    """Explore, pick one edit from the task's menu by softmax, submit. The pick's
    log-probability goes with the action, for off-policy corrections."""

    def __init__(self, tasks: list[Task], seed: int, think: float) -> None:
        self.version = 0
        self.menus = {t.id: [fix_command(t), *WRONG_EDITS] for t in tasks}
        self.logits = {t.id: [0.0] * len(self.menus[t.id]) for t in tasks}
        self.rng = random.Random(seed)
        self.think = think  # seconds per action: a model's inference time

    def probs(self, task_id: str) -> list[float]:
        top = max(self.logits[task_id])
        weights = [math.exp(x - top) for x in self.logits[task_id]]
        return [w / sum(weights) for w in weights]

    async def __call__(self, observation: dict[str, Any], trajectory: Trajectory) -> str | Act:
        await asyncio.sleep(self.think)
        step = len(trajectory.steps)
        if step == 0:
            return "git status --short && grep -rn 'def ' --include=*.py . | head -5"
        if step == 1:
            probs = self.probs(trajectory.task_id)
            choice = self.rng.choices(range(len(probs)), probs)[0]
            return Act(self.menus[trajectory.task_id][choice], logprob=math.log(probs[choice]),
                       extra={"choice": choice})
        return "submit"

    def update(self, trajectory: Trajectory, baseline: float, lr: float) -> float:
        """REINFORCE with a baseline on the pick, the ratio clipped at 2; returns the ratio."""
        step = next(s for s in trajectory.steps if "choice" in s.extra)
        probs = self.probs(trajectory.task_id)
        choice = step.extra["choice"]
        ratio = min(2.0, math.exp(math.log(probs[choice]) - (step.logprob or 0.0)))
        advantage = trajectory.reward - baseline
        for i, p in enumerate(probs):  # d log softmax / d logit_i = 1[i == choice] - p_i
            self.logits[trajectory.task_id][i] += lr * ratio * advantage * ((i == choice) - p)
        self.version += 1  # in place: running episodes act with the new version from now
        return ratio


async def train(args: argparse.Namespace) -> None:
    tasks = load_tasks(args.tasks or default_tasks_dir())
    if args.task:
        tasks = [t for t in tasks if t.id == args.task]
    policy = MenuPolicy(tasks, args.seed, args.think)
    ids = [t.id for t in tasks]
    baseline, mixed, stale = 0.0, 0, 0
    collector = RolloutCollector(lambda: BashSWEEnv(tasks), policy, concurrency=args.concurrency,
                                 episodes=args.episodes,
                                 reset_options=lambda n: {"task_id": ids[n % len(ids)]})
    async with collector:
        async for trajectory in collector:
            stale += sum(s.policy_version < policy.version for s in trajectory.steps)
            mixed += len(trajectory.policy_versions) > 1
            ratio = policy.update(trajectory, baseline, args.lr)
            baseline += 0.3 * (trajectory.reward - baseline)
            fix_p = policy.probs(trajectory.task_id)[0]
            print(f"episode {trajectory.episode:3d} {trajectory.task_id:28s} reward "
                  f"{trajectory.reward:.0f} versions {trajectory.policy_versions} ratio {ratio:.2f} "
                  f"-> version {policy.version}, p(fix) {fix_p:.2f}", flush=True)
    print(f"done: {collector.finished} episodes, {policy.version} updates, {mixed} trajectories "
          f"spanned policy versions, {stale} steps were stale when learned from")
    for task_id in ids:
        print(f"p(fix) {task_id}: {policy.probs(task_id)[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", help="task file or directory (default: bundled tasks)")
    parser.add_argument("--task", help="only this task id")
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--concurrency", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--think", type=float, default=0.2, help="seconds per action")
    parser.add_argument("--seed", type=int, default=0)
    asyncio.run(train(parser.parse_args()))


if __name__ == "__main__":
    main()
