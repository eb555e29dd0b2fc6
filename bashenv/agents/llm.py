"""The `llm` agent: any OpenAI-compatible chat model driving one bash tool (plus submit).

Native tool calls when the endpoint has them, else (or also, in `auto`) a plain-text reply
with exactly one fenced bash block; anything else gets the format-error prompt back.
Prompts are Jinja2 templates (llm.yaml beside this file, overridable per run). Budgets per
episode (steps, tokens, cost, seconds) are shown to the model and end the episode with a
submit. Endpoint failures after retries raise EndpointError: infrastructure, not a result.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import time
from importlib import resources
from typing import Any

import yaml

from bashenv.agents import EndpointError
from bashenv.errors import BashenvError
from bashenv.task import SUBMIT, Task

FENCED = re.compile(r"```(?:bash|sh|shell)?[ \t]*\n(.*?)```", re.DOTALL)
CONTEXT_WORDS = ("context length", "context_length", "maximum context", "too many tokens",
                 "prompt is too long")
TOOLS = [
    {"type": "function", "function": {
        "name": "bash", "description": "Run one bash command in the repository's shell.",
        "parameters": {"type": "object", "properties": {"command": {"type": "string"}},
                       "required": ["command"]}}},
    {"type": "function", "function": {
        "name": "submit", "description": "Submit the repository as it is now; ends the task.",
        "parameters": {"type": "object", "properties": {}}}},
]
# Settings that change what the model sees or does (resume compares these); the rest
# (endpoint URL, key variable, timeouts, retries) only change how the model is reached.
RESULT_KEYS = ("model", "tools", "temperature", "max_output_tokens", "budgets",
               "price", "context", "max_format_errors", "extra_body", "prompts")


@functools.cache
def _defaults() -> dict[str, Any]:
    text = resources.files("bashenv.agents").joinpath("llm.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def defaults() -> dict[str, Any]:
    """The settings of llm.yaml (a copy: one agent per episode, parsed once)."""
    return copy.deepcopy(_defaults())


def merged(base: dict[str, Any], override: dict[str, Any], where: str = "") -> dict[str, Any]:
    """`override` on top of `base`, mapping by mapping; an unknown key is an error."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key not in base:
            raise BashenvError(f"llm agent config: unknown setting {where + key!r} "
                               f"(known: {', '.join(sorted(base))})")
        if isinstance(base[key], dict) and key != "extra_body":
            if not isinstance(value, dict):
                raise BashenvError(f"llm agent config: {where + key!r} must be a mapping")
            out[key] = merged(base[key], value, f"{where}{key}.")
        else:
            out[key] = value
    return out


def _openai() -> Any:
    try:
        import openai
    except ImportError:
        raise BashenvError("the llm agent needs the openai package: pip install "
                           "'bashenv[llm]'") from None
    return openai


def head_tail(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters cut ...]\n{text[-half:]}"


class LLMAgent:
    name = "llm"

    def __init__(self, client: Any = None, **settings: Any) -> None:
        self.settings = merged(defaults(), settings)
        self.model: str | None = self.settings["model"]
        if not self.model:
            raise BashenvError("the llm agent needs a model: --model NAME or `model:` in "
                               "the --agent-config file")
        if self.settings["tools"] not in ("auto", "native", "text"):
            raise BashenvError("llm agent config: 'tools' must be auto, native or text")
        import jinja2

        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                 autoescape=False)
        try:
            self.templates = {name: env.from_string(str(source))
                              for name, source in self.settings["prompts"].items()}
        except jinja2.TemplateSyntaxError as exc:
            raise BashenvError(f"llm agent config: prompt template error: {exc}") from None
        self._client = client
        self._use_tools = self.settings["tools"] != "text"
        self.reset_counters()

    # -- protocol ------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {key: self.settings[key] for key in RESULT_KEYS}

    def reset_counters(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._chars = 0  # the history's size as _chars_of counts it (kept, not recounted)
        self.tokens = {"prompt": 0, "completion": 0, "total": 0}
        self.cost: float | None = None
        self._steps, self._started, self._format_errors_in_row = 0, time.monotonic(), 0
        self._pending: list[str] = []  # tool call ids the next observation answers
        self._trimmed = 0
        self._info: dict[str, Any] = {}
        self._step_start = 0

    def reset(self, task: Task, observation: dict[str, Any]) -> None:
        self.reset_counters()
        self._push({"role": "system", "content": self._render("system")})
        self._push({"role": "user", "content": self._render(
            "instance", issue=task.problem_statement, intro=str(observation["output"]),
            task_id=task.id, workdir=task.workdir)})

    def act(self, observation: dict[str, Any]) -> str:
        self._step_start = 0 if self._steps == 0 else len(self.messages)
        self._info = {"usage": {"prompt": 0, "completion": 0, "total": 0}, "cost": None,
                      "model_seconds": 0.0, "retries": 0, "format_errors": 0, "trimmed": 0}
        if self._steps:
            self._observe(observation)
        command = self._next_command()
        self._steps += 1
        self._info["messages"] = self.messages[self._step_start:]
        return command

    def step_info(self) -> dict[str, Any]:
        return self._info

    def usage(self) -> dict[str, Any]:
        return {"tokens": dict(self.tokens), "cost": self.cost}

    # -- the loop ------------------------------------------------------------------------

    def _next_command(self) -> str:
        while True:
            over = self._over_budget()
            if over:
                self._info["stop"] = f"budget:{over}"
                return SUBMIT
            reply = self._complete()
            if reply is None:  # the context cannot shrink further
                self._info["stop"] = "context"
                return SUBMIT
            command, problem = self._parse(reply)
            if command is not None:
                self._format_errors_in_row = 0
                return command
            self._info["format_errors"] += 1
            self._format_errors_in_row += 1
            self._answer_pending(problem)
            if self._format_errors_in_row >= self.settings["max_format_errors"]:
                self._info["stop"] = "format_errors"
                return SUBMIT

    def _parse(self, reply: Any) -> tuple[str | None, str]:
        """(command, "") or (None, the format-error text to send back)."""
        message: dict[str, Any] = {"role": "assistant", "content": reply.content or ""}
        calls = list(reply.tool_calls or [])
        if calls:
            message["tool_calls"] = [{"id": c.id, "type": "function", "function": {
                "name": c.function.name, "arguments": c.function.arguments}} for c in calls]
        self._push(message)
        self._pending = [c.id for c in calls]
        if calls:
            call = calls[0]
            if len(calls) == 1 and call.function.name == "submit":
                return SUBMIT, ""
            if len(calls) == 1 and call.function.name == "bash":
                try:
                    command = json.loads(call.function.arguments or "{}").get("command")
                except (ValueError, AttributeError):
                    command = None
                if isinstance(command, str) and command.strip():
                    return command, ""
            return None, self._render("format_error", count=len(calls))
        blocks = FENCED.findall(reply.content or "")
        if len(blocks) == 1 and blocks[0].strip() and self.settings["tools"] != "native":
            return blocks[0].strip(), ""
        return None, self._render("format_error", count=len(blocks))

    def _answer_pending(self, text: str) -> None:
        """Send `text` back: as the answer to every open tool call, else as a user turn."""
        if self._pending:
            first, *rest = self._pending
            self._push({"role": "tool", "tool_call_id": first, "content": text})
            for call_id in rest:  # every call needs an answer; only one command runs per turn
                self._push({"role": "tool", "tool_call_id": call_id,
                            "content": "Not run: one command per turn."})
        else:
            self._push({"role": "user", "content": text})
        self._pending = []

    def _observe(self, observation: dict[str, Any]) -> None:
        output = head_tail(str(observation["output"]),
                           int(self.settings["context"]["observation_chars"]))
        self._answer_pending(self._render(
            "observation", output=output, exit_code=int(observation["exit_code"]),
            timed_out=bool(observation["timed_out"])))

    # -- budgets ---------------------------------------------------------------------------

    def _left(self) -> dict[str, float | None]:
        budgets = self.settings["budgets"]

        def left(limit: Any, used: float) -> float | None:
            return None if limit is None else float(limit) - used

        return {"steps": left(budgets["steps"], self._steps),
                "tokens": left(budgets["tokens"], self.tokens["total"]),
                "cost": left(budgets["cost"], self.cost or 0.0),
                "seconds": left(budgets["seconds"], time.monotonic() - self._started)}

    def _over_budget(self) -> str | None:
        return next((name for name, value in self._left().items()
                     if value is not None and value <= 0), None)

    def _remaining(self) -> str:
        left = self._left()
        parts = [f"{int(left['steps'])} steps" if left["steps"] is not None else None,
                 f"{int(left['tokens']):,} tokens" if left["tokens"] is not None else None,
                 f"${left['cost']:.2f}" if left["cost"] is not None else None,
                 f"{int(left['seconds'])} s" if left["seconds"] is not None else None]
        return ", ".join(p for p in parts if p) or "no limits"

    def _render(self, name: str, **values: Any) -> str:
        import jinja2

        try:
            return str(self.templates[name].render(tools=self._use_tools,
                                                   remaining=self._remaining(), **values))
        except jinja2.TemplateError as exc:
            raise BashenvError(f"llm agent config: prompt {name!r}: {exc}") from None
        except KeyError:
            raise BashenvError(f"llm agent config: prompts.{name} is missing") from None

    # -- context -------------------------------------------------------------------------

    @staticmethod
    def _chars_of(message: dict[str, Any]) -> int:
        return len(message.get("content") or "") + 16 + sum(
            len(c["function"]["arguments"]) + 40 for c in message.get("tool_calls", ()))

    def _push(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        self._chars += self._chars_of(message)

    def _estimate_tokens(self) -> int:
        return self._chars // 4  # ~4 characters a token: enough to trim before the endpoint must

    def _trim(self, limit: int) -> bool:
        """Drop the oldest turns (after system + instance) until the estimate fits `limit`;
        False when nothing more can go (the last turn always stays)."""
        dropped = False
        while self._estimate_tokens() > limit:
            start = 3 if self._trimmed else 2  # after system, instance (and the note)
            turns = [i for i in range(start, len(self.messages))
                     if self.messages[i]["role"] == "assistant"]
            if len(turns) < 2:
                return dropped
            removed = turns[1] - start
            self._chars -= sum(self._chars_of(m) for m in self.messages[start:turns[1]])
            del self.messages[start:turns[1]]
            self._trimmed += removed
            self._info["trimmed"] += removed
            note = {"role": "user", "content": f"[{self._trimmed} earlier messages were "
                                               "removed to fit the context window]"}
            if start == 3:
                self._chars -= self._chars_of(self.messages[2])
                self.messages[2] = note
            else:
                self.messages.insert(2, note)
            self._chars += self._chars_of(note)
            # This step's messages moved left with the cut (the note now sits at index 2).
            if self._step_start >= start:
                self._step_start = max(3, self._step_start - removed + (start == 2))
            dropped = True
        return True

    # -- the endpoint --------------------------------------------------------------------

    def client(self) -> Any:
        if self._client is None:
            openai = _openai()
            key = next((os.environ[v] for v in self.settings["api_key_env"] if os.environ.get(v)),
                       None)
            if key is None and not self.settings["base_url"]:
                raise BashenvError("the llm agent needs an API key: set "
                                   f"{' or '.join(self.settings['api_key_env'])}")
            self._client = openai.OpenAI(api_key=key or "none", base_url=self.settings["base_url"],
                                         max_retries=0, timeout=self.settings["request_timeout"])
        return self._client

    def _complete(self) -> Any:
        """The model's next message; None when the context overflows and cannot shrink."""
        openai = _openai()

        settings = self.settings
        limit = int(settings["context"]["max_tokens"]) - int(settings["max_output_tokens"] or 0)
        self._trim(limit)  # what cannot go is sent anyway: the endpoint has the last word
        attempt, last_error = 0, ""
        while attempt <= settings["retries"]:
            request: dict[str, Any] = {"model": self.model, "messages": self.messages}
            for key, name in (("temperature", "temperature"), ("max_tokens", "max_output_tokens")):
                if settings[name] is not None:  # null: the endpoint's default (some refuse these)
                    request[key] = settings[name]
            if self._use_tools:
                request["tools"] = TOOLS
            if settings["extra_body"]:
                request["extra_body"] = settings["extra_body"]
            started = time.monotonic()
            try:
                response = self.client().chat.completions.create(**request)
            except openai.BadRequestError as exc:
                text = str(exc).lower()
                if any(word in text for word in CONTEXT_WORDS):
                    limit = int(self._estimate_tokens() * 0.7)  # the endpoint knows better
                    if not self._trim(limit):
                        return None
                    continue
                if self._use_tools and settings["tools"] == "auto" and "tool" in text:
                    self._use_tools = False  # no native tools here: plain text from now on
                    self._chars -= self._chars_of(self.messages[0])
                    self.messages[0] = {"role": "system", "content": self._render("system")}
                    self._chars += self._chars_of(self.messages[0])
                    continue
                raise EndpointError(f"model endpoint rejected the request: {exc}") from None
            except (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError,
                    openai.APIStatusError) as exc:
                status = getattr(exc, "status_code", None)
                if status is not None and status != 429 and status < 500:
                    raise EndpointError(f"model endpoint error: {exc}") from None
                last_error = f"{type(exc).__name__}: {exc}"
                attempt += 1
                self._info["retries"] += 1
                if attempt <= settings["retries"]:
                    time.sleep(self._backoff(exc, attempt))
                continue
            finally:
                self._info["model_seconds"] += time.monotonic() - started
            self._count(response)
            if not response.choices:
                raise EndpointError("model endpoint returned no choices")
            return response.choices[0].message
        raise EndpointError(f"model endpoint failed after {settings['retries']} retries: "
                            f"{last_error}")

    def _backoff(self, exc: Exception, attempt: int) -> float:
        response = getattr(exc, "response", None)
        hint = response.headers.get("retry-after") if response is not None else None
        try:
            if hint is not None:
                return min(60.0, max(0.0, float(hint)))
        except ValueError:
            pass
        return float(min(60.0, self.settings["backoff"] * 2 ** (attempt - 1)))

    def _count(self, response: Any) -> None:
        usage = getattr(response, "usage", None)
        if usage is None:
            return
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion = int(getattr(usage, "completion_tokens", 0) or 0)
        for totals in (self.tokens, self._info["usage"]):
            totals["prompt"] += prompt
            totals["completion"] += completion
            totals["total"] += prompt + completion
        cost = (usage.model_extra or {}).get("cost") if hasattr(usage, "model_extra") else None
        price = self.settings["price"]
        if cost is None and price["input"] is not None and price["output"] is not None:
            cost = (prompt * float(price["input"]) + completion * float(price["output"])) / 1e6
        if cost is not None:
            self.cost = (self.cost or 0.0) + float(cost)
            self._info["cost"] = (self._info["cost"] or 0.0) + float(cost)
