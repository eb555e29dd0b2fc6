"""Where an episode runs: sandboxes behind one protocol (backend.py; Docker is the first
back-end), and the persistent shell that talks to any of them through a stream."""

from bashenv.sandbox.backend import BACKENDS, Backend, Sandbox, Stream, get_backend
from bashenv.sandbox.container import Container
from bashenv.sandbox.gc import collect_garbage
from bashenv.sandbox.shell import BashSession, CommandResult
from bashenv.sandbox.spec import PROCESS_RUN_ID, ExecResult, SandboxSpec

__all__ = [
    "BACKENDS", "PROCESS_RUN_ID", "Backend", "BashSession", "CommandResult", "Container",
    "ExecResult", "Sandbox", "SandboxSpec", "Stream", "collect_garbage", "get_backend",
]
