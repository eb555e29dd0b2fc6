"""Collect trajectories for supervised fine-tuning with Gymnasium's AsyncVectorEnv.

N BashSWE-v0 environments step in parallel worker processes, each driven by an agent
(the gold agent by default, or `--agent replay --replay FILE`); every finished episode
becomes one chat-format record (system, issue, then a bash block per assistant turn and
the command's output as the next user turn), with its reward. By default only resolved
episodes are kept, as rejection sampling for SFT would.

    python examples/collect_sft.py                         # 2 envs, 2 episodes -> sft.jsonl
    python examples/collect_sft.py --envs 4 --episodes 20 --out data/sft.jsonl --keep all
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import gymnasium as gym

import bashenv  # noqa: F401  (registers BashSWE-v0)
from bashenv.agents import make_agent
from bashenv.env.bash_swe import default_tasks_dir
from bashenv.task import load_tasks

SYSTEM = "You fix issues in a repository through a bash shell. Reply with one bash command."


def bash_block(command: str) -> str:
    return f"```bash\n{command}\n```"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=Path, default=None, help="task file or directory (default: bundled)")
    parser.add_argument("--envs", type=int, default=2, help="environments stepping in parallel")
    parser.add_argument("--episodes", type=int, default=2, help="finished episodes to collect")
    parser.add_argument("--agent", default="gold", help="gold | replay")
    parser.add_argument("--replay", type=Path, default=None, help="command file for --agent replay")
    parser.add_argument("--keep", choices=["resolved", "all"], default="resolved")
    parser.add_argument("--out", type=Path, default=Path("sft.jsonl"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    tasks_path = args.tasks or default_tasks_dir()
    tasks = {task.id: task for task in load_tasks(tasks_path)}
    agents = [make_agent(args.agent, args.replay) for _ in range(args.envs)]

    def make_env() -> gym.Env:
        return gym.make("BashSWE-v0", tasks=str(tasks_path))

    # Text observations cannot live in shared memory; SAME_STEP: a finished env returns its
    # next episode's first observation in the same step (its last one is in final_obs).
    envs = gym.vector.AsyncVectorEnv([make_env] * args.envs, shared_memory=False,
                                     autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    kept = finished = 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        obs, infos = envs.reset(seed=args.seed)
        dialogs = [_start(agents[i], tasks[infos["task_id"][i]], _one(obs, i))
                   for i in range(args.envs)]
        with args.out.open("w", encoding="utf-8") as out:
            while finished < args.episodes:
                actions = tuple(agent.act(_one(obs, i)) for i, agent in enumerate(agents))
                obs, rewards, terminated, truncated, infos = envs.step(actions)
                for i, action in enumerate(actions):
                    dialogs[i]["messages"].append({"role": "assistant", "content": bash_block(action)})
                    if not (terminated[i] or truncated[i]):
                        dialogs[i]["messages"].append({"role": "user", "content": str(obs["output"][i])})
                        continue
                    record = {**dialogs[i], "reward": float(rewards[i]),
                              "outcome": _final(infos, "verdict", i, {}).get("outcome", "no verdict"),
                              "model_patch": _final(infos, "model_patch", i, "")}
                    finished += 1
                    if finished <= args.episodes and (args.keep == "all" or record["reward"] == 1.0):
                        out.write(json.dumps(record, ensure_ascii=False) + "\n")
                        kept += 1
                    print(f"episode {finished}: {record['task_id']} reward {record['reward']}")
                    dialogs[i] = _start(agents[i], tasks[infos["task_id"][i]], _one(obs, i))
    finally:
        envs.close()
    print(f"wrote {kept} of {min(finished, args.episodes)} episodes to {args.out}")


def _final(infos: dict[str, Any], key: str, index: int, default: Any) -> Any:
    """Environment `index`'s `key` in the last info of its finished episode. The vector env
    batches infos key by key (nested dicts too), with a `_key` mask of who set it."""
    final = infos.get("final_info", {})
    if key not in final or not final[f"_{key}"][index]:
        return default
    value = final[key]
    if isinstance(value, dict):  # a dict of batched values: take this environment's
        return {k: _final({"final_info": value}, k, index, None) for k in value if not k.startswith("_")}
    return value[index]


def _one(obs: dict[str, Any], index: int) -> dict[str, Any]:
    """Environment `index`'s observation out of the batched dict."""
    return {key: value[index] for key, value in obs.items()}


def _start(agent: Any, task: Any, first: dict[str, Any]) -> dict[str, Any]:
    agent.reset(task, first)
    issue = f"{first['issue']}\n\n{first['output']}"
    return {"task_id": task.id, "messages": [{"role": "system", "content": SYSTEM},
                                             {"role": "user", "content": issue}]}


if __name__ == "__main__":
    main()
