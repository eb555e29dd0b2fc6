"""A persistent bash session in a sandbox, driven with pexpect over the sandbox's stream.

The shell is an interactive `bash --noediting` attached as a stream (on Docker, the exec
socket of the API: no `docker` CLI process per session), on pipes rather than a tty: the
engine relays a
pipe for about half the CPU of a tty, which is what 32 concurrent episodes on two
cores are bound by; a program waiting for a terminal fails at once instead of hanging.
Each command is sent as one ANSI-C quoted `eval`, so heredocs and multi-line input
arrive whole and a syntax error returns rc 2 instead of hanging. The end of a command
is seen by a marker that PROMPT_COMMAND prints with a per-session nonce, the command's
sequence number, `$?` and `$PWD`: it still fires after an interrupt (rc 130), and PWD
lets a restarted shell resume in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import select
import shlex
import signal
import time
from collections.abc import Generator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pexpect
from pexpect.fdpexpect import fdspawn

from bashenv.errors import SandboxError
from bashenv.sandbox.backend import Sandbox, Stream
from bashenv.sandbox.output import CappedBuffer

CHUNK = 1 << 16
LINE = 900  # physical line length we send: long commands go as backslash-joined lines
INTERRUPT_GRACE = 3.0  # seconds a command gets to stop after SIGINT before the shell is replaced


@dataclass(frozen=True)
class CommandResult:
    output: str
    exit_code: int
    timed_out: bool = False
    truncated: bool = False
    restarted: bool = False
    duration: float = 0.0


# ("send", bytes) | ("read", deadline) -> bytes/b""/None | ("call", fn) -> fn()
_Protocol = Generator[tuple[str, Any], Any, "CommandResult"]


_PLAIN = re.compile(r"[ -&(-\[\]-~]*")  # printable ASCII but ' and \ : needs no escapes


def ansi_c_quote(command: str, line: int = LINE) -> str:
    """`command` as $'...' words joined by backslash-newlines, all printable ASCII.

    NUL bytes are dropped: bash strings cannot hold them (and would end the word).
    """
    if len(command) <= line and _PLAIN.fullmatch(command):
        return f"$'{command}'"  # the common case, on every step's hot path
    tokens = []
    for byte in command.encode("utf-8", errors="surrogateescape"):
        if byte == 0:
            continue
        char = chr(byte)
        if char in "\\'":
            tokens.append("\\" + char)
        elif 32 <= byte < 127:
            tokens.append(char)
        else:
            tokens.append(f"\\x{byte:02x}")
    words, current = [], ""
    for token in tokens:
        if len(current) + len(token) > line:
            words.append(current)
            current = ""
        current += token
    words.append(current)
    return "\\\n".join(f"$'{w}'" for w in words)


# After a command dies of a signal bash restores the terminal's settings; on a pipe that
# fails with this line, where a terminal would have shown "Killed", "Segmentation fault"...
_TTY_RESTORE = re.compile(r"bash: \[\d+: \d+ \(\d+\)\] tcsetattr: Inappropriate ioctl for device\n")


def _signal_names(output: str, code: int) -> str:
    if "tcsetattr" not in output:  # every step passes here
        return output
    output, failed_restores = _TTY_RESTORE.subn("", output)
    if failed_restores and 128 < code < 128 + signal.NSIG:
        output += f"{signal.strsignal(code - 128) or f'signal {code - 128}'}\n"
    return output


class BashSession:
    """One bash whose cwd, variables and functions persist between `run` calls."""

    def __init__(self, box: Sandbox, *, env: dict[str, str] | None = None,
                 user: str | None = None, output_chars: int = 20000) -> None:
        self.box = box
        self.user = box.spec.user if user is None else user
        self.output_chars = output_chars
        self.cwd = box.spec.workdir
        self._env = env or {}
        self._nonce = secrets.token_hex(6)
        self._seq = 0
        self._marker = re.compile(
            rb"\x1fBASHENV:" + self._nonce.encode()
            + rb":(\d*):(-?\d+):(\d+):([^\x1f\n]*)\x1f\r?\n"
        )
        self._stream: Stream
        self._child: fdspawn | None = None
        self._shell_pid = 0
        self._fd = -1
        self._waiter: asyncio.Future[None] | None = None
        self._start()

    # -- lifecycle -------------------------------------------------------------------------

    def _start(self) -> None:
        marker = (r'__bashenv_rc=$?; printf "\037BASHENV:%s:%s:%s:%s:%s\037\n" '
                  f'{self._nonce} "${{__bashenv_seq-}}" "$__bashenv_rc" "$$" "$PWD"')
        # Without a tty Python would buffer whole outputs; unbuffered, a timed-out script
        # still shows what it printed, in order with its errors.
        env = {"TERM": "dumb", "PS1": "", "PS2": "", "PROMPT_COMMAND": marker,
               "HISTFILE": "/dev/null", "PYTHONUNBUFFERED": "1", **self._env}
        # stderr joins stdout before bash starts: its start-up complaints about job control
        # then come before the first marker, in order, and are dropped. The box's tools
        # (spec.tools, mounted read-only) come first on PATH.
        tools = self.box.spec.tools
        path = f'PATH={shlex.quote(tools.path)}:"$PATH"; export PATH; ' if tools else ""
        self._stream = self.box.open_stream(
            ["sh", "-c", f"{path}exec bash --noediting --norc --noprofile -i 2>&1"],
            user=self.user, workdir=self.box.spec.workdir, environment=env)
        self._fd = self._stream.fileno()
        self._child = fdspawn(self._fd, timeout=None)
        self._child.delaybeforesend = None
        self._apply_settings()

    def _apply_settings(self) -> None:
        """Harness settings; re-applied when the agent replaces the shell (`exec bash`)."""
        setup = (f"exec 2>&1; set +o emacs +o vi; PS1= PS2=; "  # one stream, in order
                 f"readonly PS1 PS2 PROMPT_COMMAND 2>/dev/null; "
                 f"cd -- {ansi_c_quote(self.cwd)} 2>/dev/null; :")
        result = self._roundtrip(setup, timeout=20, allow_restart=False)
        if result.timed_out:
            raise SandboxError(f"the shell in {self.box.id[:12]} did not start: {result.output!r}")

    def close(self) -> None:
        if self._child is not None:
            self._stream.close()
            self._child = None

    def _kill_shell(self) -> None:
        """Kill the shell and everything it started (a fork bomb too), keeping the box."""
        try:
            killed = self.box.kill_all_but_init()
        except SandboxError:
            killed = False
        if not killed:  # e.g. gVisor: no host-side view of the container's processes
            self._send_signals(f"pkill -9 -s {self._shell_pid} || kill -9 {self._shell_pid}")
        self.close()

    def _restart(self, why: str) -> str:
        self._kill_shell()
        reason = self.box.why_dead()
        if reason:
            raise SandboxError(f"{why}; {reason}")
        self._start()
        return (f"\n[bashenv: {why}; a new shell was started in {self.cwd} "
                "(shell variables, functions and background jobs were lost)]")

    # -- commands --------------------------------------------------------------------------
    # One protocol (a generator yielding I/O requests) serves both drivers: `run` (blocking,
    # pexpect) and `arun` (asyncio, no thread per waiting command).

    def run(self, command: str, timeout: float) -> CommandResult:
        """Run one command (any bash, multi-line included) and wait at most `timeout` s."""
        if self._child is None:
            self._start()
        return self._drive(self._protocol(self._command_line(command), timeout))

    async def arun(self, command: str, timeout: float) -> CommandResult:
        """`run` for asyncio: waits on the socket in the event loop."""
        if self._child is None:
            await asyncio.to_thread(self._start)
        return await self._adrive(self._protocol(self._command_line(command), timeout))

    @staticmethod
    def _command_line(command: str) -> str:
        return f"eval {ansi_c_quote(command)} </dev/null"

    def _roundtrip(self, line: str, timeout: float, allow_restart: bool = True) -> CommandResult:
        return self._drive(self._protocol(line, timeout, allow_restart))

    def _drive(self, protocol: _Protocol) -> CommandResult:
        request = next(protocol)
        while True:
            kind, arg = request
            reply: Any = None
            if kind == "send":
                self._send(arg)
            elif kind == "read":
                reply = self._read_sync(arg)
            else:
                reply = arg()
            try:
                request = protocol.send(reply)
            except StopIteration as done:
                return done.value

    async def _adrive(self, protocol: _Protocol) -> CommandResult:
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None  # one per deadline, not one per read
        timer_at = 0.0

        def deadline_passed() -> None:
            nonlocal timer
            timer = None
            self._wake()

        request = next(protocol)
        try:
            while True:
                kind, arg = request
                reply: Any = None
                if kind == "send":
                    self._send(arg)
                elif kind == "read":
                    if timer is None or arg != timer_at:
                        if timer is not None:
                            timer.cancel()
                        timer_at = arg
                        timer = loop.call_at(loop.time() + max(0.0, arg - time.monotonic()),
                                             deadline_passed)
                    reply = await self._read_async(loop)
                else:
                    reply = await asyncio.to_thread(arg)
                try:
                    request = protocol.send(reply)
                except StopIteration as done:
                    return done.value
        finally:
            if timer is not None:
                timer.cancel()

    def _read_sync(self, deadline: float) -> bytes | None:
        """Bytes, b"" at the deadline, None at EOF."""
        try:
            if self._child is None:
                return None
            data: bytes = self._child.read_nonblocking(
                CHUNK, timeout=max(0.0, deadline - time.monotonic()))
            return data
        except pexpect.TIMEOUT:
            return b""
        except (pexpect.EOF, OSError):
            return None

    async def _read_async(self, loop: asyncio.AbstractEventLoop) -> bytes | None:
        """Like `_read_sync`: waits in the event loop until the socket is readable or
        `_adrive`'s deadline timer fires (a reader callback, no task per read)."""
        self._waiter = loop.create_future()
        loop.add_reader(self._fd, self._wake)
        try:
            await self._waiter
        finally:
            loop.remove_reader(self._fd)
        try:
            return os.read(self._fd, CHUNK) or None
        except BlockingIOError:
            return b""  # the deadline passed
        except OSError:
            return None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _send(self, data: bytes) -> None:
        """Write all of `data` to the non-blocking socket. A shell that is gone (its end
        closed) is not an error here: the read that follows sees the end of the stream
        and the protocol starts a new shell."""
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._fd, view):]
            except BlockingIOError:
                select.select([], [self._fd], [], 5)
            except (BrokenPipeError, ConnectionResetError):
                return

    def _protocol(self, line: str, timeout: float, allow_restart: bool = True) -> _Protocol:
        self._seq += 1
        seq = str(self._seq).encode()
        started = time.monotonic()
        buffer = CappedBuffer(self.output_chars)
        yield "send", f"export __bashenv_seq={self._seq}; {line}\n".encode()
        outcome = yield from self._await_marker(seq, buffer, started + timeout)
        if outcome is not None:
            if not allow_restart or not self._shell_pid:  # set-up: learn the shell's pid
                self._shell_pid = outcome[1]
            return (yield from self._answered(outcome, buffer, started))
        if not allow_restart:
            return CommandResult(buffer.text(), -1, timed_out=True)
        if self._child is None:  # EOF: the shell exited (exit, exec sh, kill -9 $$ ...)
            code = yield "call", self._exit_code
            note = yield "call", lambda: self._restart(f"the shell exited with code {code}")
            return self._result(buffer, (code, 0, self.cwd), started, note=note, restarted=True)
        # Timed out: SIGINT as Ctrl-C would send; then SIGKILL for what the command started
        # (bash and its state survive); only then replace the shell.
        note = f"\n[bashenv: command timed out after {timeout:g}s and was interrupted]"
        for stop in (self._interrupt, self._kill_commands):
            yield "call", stop
            outcome = yield from self._await_marker(seq, buffer, time.monotonic() + INTERRUPT_GRACE)
            if outcome is not None:
                return (yield from self._answered(outcome, buffer, started, note, timed_out=True))
            if self._child is None:  # the shell itself went away
                break
        note += yield "call", lambda: self._restart("the shell did not come back after its "
                                                    "commands were killed")
        return self._result(buffer, (124, 0, self.cwd), started, note=note, timed_out=True,
                            restarted=True)

    def _answered(self, outcome: tuple[int, int, str], buffer: CappedBuffer, started: float,
                  note: str = "", timed_out: bool = False) -> _Protocol:
        """The result of a command whose marker came; a marker from a new shell pid means
        the agent replaced the shell, which then gets the harness settings again."""
        if outcome[1] != self._shell_pid:
            note += yield "call", partial(self._shell_replaced, outcome[1])
        return self._result(buffer, outcome, started, note=note, timed_out=timed_out)

    def _interrupt(self) -> None:
        """What Ctrl-C on a terminal does: SIGINT to the shell's process group (the shell
        leads its own session; without job control its commands stay in its group)."""
        self._send_signals(f"kill -INT -- -{self._shell_pid}")

    def _kill_commands(self) -> None:
        """SIGKILL for every process in the shell's group but the shell (`vim` on a pipe and
        `trap '' INT` ignore SIGINT); the shell then prints its marker, its state intact."""
        pgid = self._shell_pid
        self._send_signals(f'for p in $(pgrep -g {pgid}); do [ "$p" = {pgid} ] || kill -9 "$p"; done')

    def _send_signals(self, script: str) -> None:
        """Run `script` as the shell's user (no CAP_KILL here: the agent's processes only)."""
        if self._shell_pid:
            with contextlib.suppress(SandboxError):
                self.box.exec(["bash", "-c", script], user=self.user, timeout=10)

    def _shell_replaced(self, pid: int) -> str:
        """The agent ran `exec bash` or similar: a new shell answers under our marker."""
        self._shell_pid = pid
        self._apply_settings()
        return "\n[bashenv: the shell was replaced; harness settings were applied again]"

    def _result(self, buffer: CappedBuffer, outcome: tuple[int, int, str], started: float, *,
                note: str = "", timed_out: bool = False, restarted: bool = False) -> CommandResult:
        code, _, self.cwd = outcome
        return CommandResult(_signal_names(buffer.text(), code) + note, code, timed_out,
                             buffer.truncated, restarted, time.monotonic() - started)

    def _await_marker(self, seq: bytes, buffer: CappedBuffer, deadline: float
                      ) -> Generator[tuple[str, Any], Any, tuple[int, int, str] | None]:
        """Stream output into `buffer` until this command's marker; None on timeout or EOF."""
        pending = bytearray()
        while True:
            match = self._marker.search(pending)
            while match and match.group(1) != seq:  # a stale marker: drop it and what came before
                del pending[: match.end()]
                match = self._marker.search(pending)
            if match:
                buffer.add(bytes(pending[: match.start()]))
                cwd = match.group(4).decode("utf-8", "replace")
                return int(match.group(2)), int(match.group(3)), cwd
            keep = 256  # a marker may be split across reads
            if len(pending) > keep:
                buffer.add(bytes(pending[:-keep]))
                del pending[:-keep]
            if time.monotonic() >= deadline:
                buffer.add(bytes(pending))
                return None
            data = yield "read", deadline
            if data is None:
                buffer.add(bytes(pending))
                self.close()
                return None
            pending += self._stream.decode(data)

    def _exit_code(self) -> int:
        return self._stream.exit_code()
