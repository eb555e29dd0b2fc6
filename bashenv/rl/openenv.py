"""BashSWE episodes as an OpenEnv environment (the environment interface TRL's GRPOTrainer,
among other trainers, trains against).

OpenEnv serves an environment over WebSocket sessions (one env per session) and gives
trainers an async client. `make_app` builds the server; `BashSWEClient` is the client.

    # server (one process per machine with Docker; sessions run concurrently):
    uvicorn --factory bashenv.rl.openenv:make_app --host 127.0.0.1 --port 8000
    # trainer side:
    async with BashSWEClient(base_url="http://127.0.0.1:8000") as env:
        result = await env.reset(task_id="textkit-truncate-width")
        result = await env.step(BashAction(command="grep -rn truncate ."))
        result = await env.step(BashAction(command="submit"))  # result.reward: the verdict's

The server side uses BashSWEEnv's async API (`areset`/`astep`), so many sessions share
one event loop; reset is cheap (the container starts with the first command). Options of
`BashSWEEnv` come from `make_app(**kwargs)` or, for the uvicorn factory, the variables
`BASHENV_TASKS` (tasks) and `BASHENV_OPENENV_MAX_SESSIONS` (default 8).
Requires `pip install bashenv[rl]` (openenv-core).
"""

from __future__ import annotations

import os
from typing import Any

from openenv.core import EnvClient
from openenv.core.client_types import StepResult
from openenv.core.env_server.http_server import create_app
from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import Action, Observation, State
from pydantic import Field

from bashenv.env import BashSWEEnv


class BashAction(Action):
    """One bash command; `submit` ends the episode and grades it."""

    command: str = Field(..., description="a bash command, or `submit`")


class BashSWEObservation(Observation):
    """BashSWE-v0's observation, plus the task and, at the end, the verdict."""

    task_id: str = ""
    issue: str = ""
    output: str = ""
    exit_code: int = -1
    timed_out: bool = False
    output_truncated: bool = False
    step: int = 0
    verdict: dict[str, Any] | None = None
    error: str | None = None


class BashSWEState(State):
    task_id: str = ""


class BashSWEEnvironment(Environment[BashAction, BashSWEObservation, BashSWEState]):
    """One BashSWE episode per session; sessions are isolated (one container each)."""

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, **env_kwargs: Any) -> None:
        super().__init__()
        self.env = BashSWEEnv(**env_kwargs)
        self._state = BashSWEState(episode_id=None, step_count=0)

    # OpenEnv calls the async variants when they are overridden (they are here).
    def reset(self, seed: int | None = None, episode_id: str | None = None,
              task_id: str | None = None, task_index: int | None = None,
              **kwargs: Any) -> BashSWEObservation:
        obs, info = self.env.reset(seed=seed, options=self._options(task_id, task_index))
        return self._after_reset(obs, info, episode_id)

    async def reset_async(self, seed: int | None = None, episode_id: str | None = None,
                          task_id: str | None = None, task_index: int | None = None,
                          **kwargs: Any) -> BashSWEObservation:
        obs, info = await self.env.areset(seed=seed, options=self._options(task_id, task_index))
        return self._after_reset(obs, info, episode_id)

    def step(self, action: BashAction, timeout_s: float | None = None,
             **kwargs: Any) -> BashSWEObservation:
        return self._after_step(*self.env.step(action.command))

    async def step_async(self, action: BashAction, timeout_s: float | None = None,
                         **kwargs: Any) -> BashSWEObservation:
        return self._after_step(*await self.env.astep(action.command))

    @property
    def state(self) -> BashSWEState:
        return self._state

    def close(self) -> None:
        self.env.close()

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _options(task_id: str | None, task_index: int | None) -> dict[str, Any] | None:
        if task_id is not None:
            return {"task_id": task_id}
        return {"task_index": task_index} if task_index is not None else None

    def _after_reset(self, obs: dict[str, Any], info: dict[str, Any],
                     episode_id: str | None) -> BashSWEObservation:
        self._state = BashSWEState(episode_id=episode_id, step_count=0, task_id=info["task_id"])
        return self._observation(obs, 0.0, False, info)

    def _after_step(self, obs: dict[str, Any], reward: float, terminated: bool, truncated: bool,
                    info: dict[str, Any]) -> BashSWEObservation:
        self._state.step_count += 1
        return self._observation(obs, reward, terminated or truncated, info)

    def _observation(self, obs: dict[str, Any], reward: float, done: bool,
                     info: dict[str, Any]) -> BashSWEObservation:
        return BashSWEObservation(
            task_id=info["task_id"], issue=obs["issue"], output=obs["output"],
            exit_code=int(obs["exit_code"]), timed_out=bool(obs["timed_out"]),
            output_truncated=bool(obs["output_truncated"]), step=int(obs["step"]),
            verdict=info.get("verdict"), error=info.get("error"), done=done, reward=float(reward))


def make_app(max_sessions: int | None = None, **env_kwargs: Any) -> Any:
    """The OpenEnv FastAPI app serving BashSWE sessions (`env_kwargs` go to BashSWEEnv)."""
    if "tasks" not in env_kwargs and os.environ.get("BASHENV_TASKS"):
        env_kwargs["tasks"] = os.environ["BASHENV_TASKS"]
    sessions = max_sessions or int(os.environ.get("BASHENV_OPENENV_MAX_SESSIONS", "8"))
    return create_app(lambda: BashSWEEnvironment(**env_kwargs), BashAction, BashSWEObservation,
                      env_name="bashswe", max_concurrent_envs=sessions)


class BashSWEClient(EnvClient[BashAction, BashSWEObservation, BashSWEState]):
    """Async client of a BashSWE OpenEnv server (`.sync()` gives a blocking one)."""

    def _step_payload(self, action: BashAction) -> dict[str, Any]:
        return {"command": action.command}

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[BashSWEObservation]:
        observation = BashSWEObservation(**payload.get("observation", {}),
                                         done=payload.get("done", False), reward=payload.get("reward"))
        return StepResult(observation=observation, reward=payload.get("reward"),
                          done=payload.get("done", False))

    def _parse_state(self, payload: dict[str, Any]) -> BashSWEState:
        return BashSWEState(**payload)
