"""BashSWE episodes as a SkyRL text environment (`skyrl_gym.envs.base_text_env.BaseTextEnv`).

SkyRL's generator builds one env per dataset row with `skyrl_gym.make(env_class,
env_config=..., extras=row)`, calls `init(prompt)`, then `step(model_reply)` until `done`.
Here each reply's ```bash block is run in the episode's container; `submit` grades the
diff and the reward is the verdict's (1.0 resolved, else 0.0).

    import skyrl_gym
    from bashenv.rl.skyrl import register, dataset_rows
    register()                                    # env_class "bashswe"
    rows = dataset_rows("tasks/")                 # {"prompt", "env_class", "task_id"} per task
    env = skyrl_gym.make("bashswe", env_config={"tasks": "tasks/"}, extras=rows[0])

`env_config` holds `BashSWEEnv` keyword arguments (tasks, max_steps, warm_pool, ...);
`extras` (the dataset row) names the task (`task_id`, or `extra_info.task_id`) and may
set `max_turns`. Requires `pip install bashenv[rl]` (skyrl-gym).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput

from bashenv.env import BashSWEEnv
from bashenv.errors import BashenvError
from bashenv.rl.text import (
    SYSTEM_PROMPT,
    FormatError,
    first_user_message,
    format_message,
    output_message,
    parse_command,
)

ENV_CLASS = "bashswe"


def _plain(config: Any) -> dict[str, Any]:
    """env_config as a dict (SkyRL passes an OmegaConf DictConfig)."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        try:
            from omegaconf import OmegaConf

            config = OmegaConf.to_container(config, resolve=True)
        except (ImportError, ValueError) as exc:
            raise BashenvError(f"skyrl env_config must be a mapping, not {type(config).__name__}") from exc
    return dict(config)


class BashSWESkyRLEnv(BaseTextEnv):
    """One BashSWE episode per instance (SkyRL makes one env per rollout)."""

    def __init__(self, env_config: Any = None, extras: dict[str, Any] | None = None) -> None:
        super().__init__()
        extras = extras or {}
        self.env = BashSWEEnv(**_plain(env_config))
        info = extras.get("extra_info") or {}
        self.task_id: str | None = extras.get("task_id", info.get("task_id"))
        self.max_turns = int(extras.get("max_turns", info.get("max_turns", 50)))
        self.verdict: dict[str, Any] | None = None

    def init(self, prompt: list[dict[str, str]]) -> tuple[list[dict[str, str]], dict[str, Any]]:
        """Reset the episode (cheap: the container starts with the first command). The
        dataset's prompt is used as it is when given, else the issue becomes the prompt."""
        options = {"task_id": self.task_id} if self.task_id else None
        observation, info = self.env.reset(options=options)
        self.task_id = info["task_id"]
        if not prompt:
            prompt = [{"role": "system", "content": SYSTEM_PROMPT},
                      {"role": "user", "content": first_user_message(observation)}]
        return prompt, {"task_id": self.task_id}

    def step(self, action: str) -> BaseTextEnvStepOutput:
        self.turns += 1
        last_turn = self.turns >= self.max_turns
        try:
            command = parse_command(action)
        except FormatError as exc:
            if not last_turn:
                return self._out(format_message(exc), 0.0, False, None)
            command = "submit"  # out of turns: grade what is there
        observation, reward, terminated, truncated, info = self.env.step(command)
        done = terminated or truncated or last_turn
        if done and not (terminated or truncated):  # out of turns: grade what is there
            observation, reward, terminated, truncated, info = self.env.step("submit")
        self.verdict = info.get("verdict", self.verdict)
        metadata = {"task_id": self.task_id, "verdict": self.verdict, "error": info.get("error")}
        text = "" if done else output_message(observation)
        return self._out(text, float(reward), done, command, metadata)

    def _out(self, text: str, reward: float, done: bool, command: str | None,
             metadata: dict[str, Any] | None = None) -> BaseTextEnvStepOutput:
        observations = [{"role": "user", "content": text}] if text else []
        return BaseTextEnvStepOutput(observations=observations, reward=reward, done=done,
                                     metadata=metadata or {"task_id": self.task_id},
                                     postprocessed_action=command)

    def get_metrics(self) -> dict[str, Any]:
        resolved = bool(self.verdict and self.verdict.get("outcome") == "resolved")
        return {"turns": self.turns, "resolved": float(resolved)}

    def close(self) -> None:
        self.env.close()


def register(env_class: str = ENV_CLASS) -> None:
    """Register the env with skyrl_gym under `env_class` (idempotent)."""
    import skyrl_gym

    if env_class not in skyrl_gym.registry:
        skyrl_gym.register(id=env_class, entry_point=f"{__name__}:BashSWESkyRLEnv")


def dataset_rows(tasks: Any = None, env_class: str = ENV_CLASS) -> list[dict[str, Any]]:
    """One SkyRL dataset row per task: the chat prompt, the env class, the task id."""
    env = BashSWEEnv(tasks)
    rows = []
    for task in env.tasks:
        observation, _ = env.reset(options={"task_id": task.id})
        rows.append({"prompt": [{"role": "system", "content": SYSTEM_PROMPT},
                                {"role": "user", "content": first_user_message(observation)}],
                     "env_class": env_class, "task_id": task.id})
    env.close()
    return rows
