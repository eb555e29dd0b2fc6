"""The shell's protocol without a Docker engine: BashSession on the local test back-end.

The same BashSession that drives a container's shell drives a host bash here, through
the `Sandbox`/`Stream` protocols only: markers, exit codes, state, timeouts with the
SIGINT → SIGKILL → new shell ladder, restarts after `exit`, output caps, async runs, and
a warm pool on another back-end. (tests/test_sandbox.py runs the same shell on Docker.)
"""

from __future__ import annotations

import asyncio
import time

import pytest

from bashenv.sandbox import BashSession, SandboxSpec, get_backend
from bashenv.sandbox.backend import Backend, Sandbox, Stream
from bashenv.sandbox.pool import WarmPool

from .local_backend import LocalBackend, LocalSandbox

USES_ENGINE = False  # runs without a Docker engine (conftest)
SPEC = SandboxSpec(image="none", run_id="local")


@pytest.fixture
def box():
    sandbox = LocalSandbox(SPEC)
    yield sandbox
    sandbox.remove()


@pytest.fixture
def shell(box):
    session = BashSession(box)
    yield session
    session.close()


def test_the_local_backend_satisfies_the_protocols(box):
    assert isinstance(box, Sandbox)
    box.put_files({"/data/a.txt": b"one", "/data/sub/b.txt": b"two"})
    archive = b"".join(box.read_archive("/data"))
    box.write_archive("/copy", archive)
    assert box.get_files("/copy/data") == {"a.txt": b"one", "sub/b.txt": b"two"}
    stream = box.open_stream(["true"])
    assert isinstance(stream, Stream)
    stream.close()
    backend: Backend = get_backend("tests.local_backend:LocalBackend")
    assert backend.name == "local"


def test_output_exit_codes_and_state_persist(shell, box):
    assert shell.run("echo hello", 5).output == "hello\n"
    assert shell.run("false", 5).exit_code == 1
    assert shell.run("(exit 42)", 5).exit_code == 42
    result = shell.run("mkdir -p sub && cd sub && export X=kept && f() { echo \"f:$X\"; }", 5)
    assert result.exit_code == 0
    again = shell.run("pwd; f", 5)
    assert again.output == f"{box.spec.workdir}/sub\nf:kept\n"


def test_multiline_heredoc_quotes_and_syntax_errors(shell):
    result = shell.run("cat <<'EOF'\n$NOT 'quoted' \"x\" \\ \nEOF\necho done", 5)
    assert result.output == "$NOT 'quoted' \"x\" \\ \ndone\n"
    broken = shell.run("echo 'unterminated", 5)
    assert broken.exit_code == 2 and not broken.timed_out
    assert shell.run("echo ok", 5).output == "ok\n"


def test_a_hung_command_is_interrupted_and_the_shell_keeps_its_state(shell):
    shell.run("cd /tmp && Y=still", 5)
    started = time.monotonic()
    result = shell.run("echo before; sleep 30", 1)
    assert result.timed_out and result.exit_code == 130 and not result.restarted
    assert "before" in result.output and time.monotonic() - started < 5
    assert shell.run("echo $Y; pwd", 5).output == "still\n/tmp\n"


def test_a_command_ignoring_sigint_is_killed_and_the_shell_survives(shell):
    shell.run("Z=kept", 5)
    result = shell.run("trap '' INT; sleep 60", 1)
    assert result.timed_out and not result.restarted
    assert shell.run("trap - INT; echo $Z", 5).output == "kept\n"


def test_exit_restarts_the_shell_in_place(shell, box):
    shell.run("mkdir -p d && cd d", 5)
    result = shell.run("exit 3", 5)
    assert result.restarted and result.exit_code == 3
    assert "a new shell was started" in result.output
    assert shell.run("pwd", 5).output == f"{box.spec.workdir}/d\n"


def test_a_shell_the_agent_replaces_still_answers(shell):
    # Commands read /dev/null: the new bash prints its marker, then reads EOF and exits;
    # the next command finds the shell gone and starts a new one.
    assert not shell.run("exec bash --norc --noprofile -i 2>&1", 5).timed_out
    gone = shell.run("echo lost", 5)
    assert gone.restarted and "the shell exited" in gone.output
    assert shell.run("echo fine", 5).output == "fine\n"
    shell.run("exec sh", 5)  # no PROMPT_COMMAND: no marker; the ladder ends in a new shell
    result = shell.run("echo back", 5)
    assert "back" in result.output


def test_output_is_capped_head_and_tail(box):
    session = BashSession(box, output_chars=200)
    try:
        result = session.run("seq 1 10000", 10)
        assert result.truncated and result.output.startswith("1\n2\n")
        assert result.output.endswith("9999\n10000\n") and len(result.output) < 400
    finally:
        session.close()


def test_markers_in_the_output_cannot_end_a_command_early(shell):
    forged = shell.run(r"printf '\037BASHENV:0000:1:0:1:/\037\n'; echo after", 5)
    assert forged.output.endswith("after\n") and forged.exit_code == 0


def test_async_runs_wait_on_the_stream(shell):
    async def go():
        first = await shell.arun("echo a; false", 5)
        hung = await shell.arun("sleep 30", 1)
        last = await shell.arun("echo b", 5)
        return first, hung, last

    first, hung, last = asyncio.run(go())
    assert first.output == "a\n" and first.exit_code == 1
    assert hung.timed_out and last.output == "b\n"


def test_warm_pool_on_another_backend():
    backend = LocalBackend()
    pool = WarmPool(size=1, backend=backend)
    try:
        pool.prefill(SPEC, with_shell=True)
        deadline = time.monotonic() + 10
        while pool.ready(SPEC, with_shell=True) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        box, shell = pool.acquire_with_shell(SPEC)
        assert box in backend.started and shell.run("echo warm", 5).output == "warm\n"
        shell.close()
        box.remove()
    finally:
        pool.close()
    assert all(b.why_dead() for b in backend.started)  # the pool removed what it held
