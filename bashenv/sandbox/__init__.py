"""Where an episode runs: a locked-down container and the persistent shell inside it."""

from bashenv.sandbox.container import (
    PROCESS_RUN_ID,
    Container,
    ExecResult,
    SandboxSpec,
)
from bashenv.sandbox.gc import collect_garbage
from bashenv.sandbox.shell import BashSession, CommandResult

__all__ = [
    "PROCESS_RUN_ID", "BashSession", "CommandResult", "Container", "ExecResult", "SandboxSpec",
    "collect_garbage",
]
