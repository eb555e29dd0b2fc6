"""A random policy on BashSWE-v0: a few random shell commands, then `submit`.

The smallest complete loop over the Gymnasium API; a baseline that resolves nothing.

    python examples/random_policy.py                      # 1 episode, bundled tasks
    python examples/random_policy.py --episodes 3 --steps 5 --tasks path/to/tasks
"""

from __future__ import annotations

import argparse
import random
from typing import SupportsFloat

import gymnasium as gym

import bashenv  # noqa: F401  (registers BashSWE-v0)

# Harmless exploration a shell agent might try; the policy picks among them at random.
COMMANDS = [
    "ls -la",
    "git status --short",
    "git log --oneline | head -5",
    "grep -rn 'def ' --include=*.py . | head -20",
    "find . -name '*.py' -not -path './.git/*' | head -20",
    "python3 --version",
    "cat README* 2>/dev/null | head -20",
    "python3 -m pytest -q -x 2>&1 | tail -5",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=None, help="task file or directory (default: bundled)")
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3, help="random commands before submit")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    env = gym.make("BashSWE-v0", tasks=args.tasks)
    try:
        for episode in range(args.episodes):
            obs, info = env.reset(seed=args.seed + episode)
            print(f"episode {episode}: task {info['task_id']}")
            terminated = truncated = False
            reward: SupportsFloat = 0.0
            step = 0
            while not (terminated or truncated):
                action = rng.choice(COMMANDS) if step < args.steps else "submit"
                obs, reward, terminated, truncated, info = env.step(action)
                step += 1
                print(f"  $ {action}  -> exit {int(obs['exit_code'])}, {len(obs['output'])} chars")
            verdict = info.get("verdict") or {}
            print(f"  reward {reward} ({verdict.get('outcome', 'no verdict')})")
    finally:
        env.close()


if __name__ == "__main__":
    main()
