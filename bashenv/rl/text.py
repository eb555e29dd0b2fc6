"""Chat text in and out of BashSWE episodes, shared by the trainer adapters.

A model's reply holds exactly one fenced bash block (```bash ... ```); the block is the
command. `submit` as the command ends the episode and grades it. Anything else gets a
format message back instead of a command, so a malformed reply costs a turn, not the
episode.
"""

from __future__ import annotations

from typing import Any

from bashenv.agents.llm import FENCED
from bashenv.errors import BashenvError
from bashenv.task import SUBMIT

SYSTEM_PROMPT = (
    "You fix an issue in a repository through a bash shell. Reply with your reasoning and "
    "exactly one bash code block (```bash ... ```) holding the next command; you see its "
    f"output in the next message. When the issue is fixed, reply with a block holding only "
    f"`{SUBMIT}`."
)


class FormatError(BashenvError):
    """The reply does not hold exactly one bash block."""


def parse_command(reply: str) -> str:
    """The command in a model's reply (exactly one fenced bash block)."""
    blocks = FENCED.findall(reply)  # the llm agent's reading of a reply, to the letter
    if len(blocks) != 1:
        raise FormatError(f"expected exactly one ```bash block in the reply, found {len(blocks)}")
    command: str = blocks[0].strip()
    if not command:
        raise FormatError("the ```bash block is empty")
    return command


def format_message(error: FormatError) -> str:
    """What the model is told after a malformed reply."""
    return f"Format error: {error}. Reply with one ```bash block holding one command."


def first_user_message(observation: dict[str, Any]) -> str:
    """The issue and the environment's note (limits) after a reset."""
    return f"{observation['issue']}\n\n{observation['output']}"


def output_message(observation: dict[str, Any]) -> str:
    """A command's result as the model reads it."""
    notes = []
    if observation["timed_out"]:
        notes.append("the command timed out")
    if observation["output_truncated"]:
        notes.append("output shortened (head and tail kept)")
    note = f" ({'; '.join(notes)})" if notes else ""
    return f"{observation['output']}\n[exit code {int(observation['exit_code'])}{note}]"
