"""Containers and the persistent shell, against the real Docker engine."""

from __future__ import annotations

import contextlib
import socket
import time

import docker.errors
import pytest
from typer.testing import CliRunner

from bashenv.cli import app
from bashenv.errors import SandboxError
from bashenv.sandbox import BashSession, Container, SandboxSpec, collect_garbage
from bashenv.sandbox.engine import LABEL, client
from bashenv.sandbox.lifecycle import DEADMAN_LABEL, OWNER_LABEL, owner_token

from .conftest import rid


@pytest.fixture
def box(base_image):
    with Container(SandboxSpec(image=base_image, run_id=rid("sandbox"))) as container:
        yield container


@pytest.fixture
def shell(box):
    session = BashSession(box, output_chars=4000)
    yield session
    session.close()


def test_container_is_labelled_limited_and_offline(box):
    attrs = client().api.inspect_container(box.id)
    assert attrs["Config"]["Labels"][LABEL] == rid("sandbox")
    host = attrs["HostConfig"]
    assert host["NetworkMode"] == "none" and host["Memory"] == 2 * 1024**3
    assert host["PidsLimit"] == 512 and host["NanoCpus"] == 10**9
    assert "no-new-privileges" in host["SecurityOpt"]
    assert box.exec(["ls", "/sys/class/net"]).text.split() == ["lo"]


def _exists(container_id: str) -> bool:
    """Sparse listing: no inspect, so no NotFound for a container removed meanwhile."""
    return bool(client().api.containers(all=True, filters={"id": container_id}))


def test_remove_is_idempotent_and_really_removes(base_image):
    box = Container(SandboxSpec(image=base_image))
    box.remove()
    box.remove()
    assert not _exists(box.id)


def test_gc_never_removes_a_live_container_of_another_job(base_image):
    """Two jobs share the engine from different pid namespaces: the same host label, and the
    other job's owner pid does not exist here. gc removes only what is provably abandoned."""
    run, host, gone = rid("gc-jobs"), socket.gethostname(), "999999999"
    other_job = {"bashenv.pid": gone, "bashenv.host": host}
    api = client().api
    others = Container(SandboxSpec(image=base_image, run_id=run, labels=other_job))  # live
    mine = Container(SandboxSpec(image=base_image, run_id=run))

    def leftover(command: list[str], switch: bool, start: bool) -> str:
        labels = {LABEL: run, **other_job, **({DEADMAN_LABEL: "stdin"} if switch else {})}
        made = api.create_container(base_image, command, labels=labels,
                                    host_config=api.create_host_config(network_mode="none"))["Id"]
        if start:
            api.start(made)
        return made

    never_started = leftover(["true"], switch=True, start=False)  # owner died before start
    stopped = leftover(["true"], switch=True, start=True)  # the engine's auto-remove failed
    api.wait(stopped, timeout=30)
    legacy = leftover(["sleep", "infinity"], switch=False, start=True)  # older bashenv
    try:
        dry = collect_garbage(run_id=run, dry_run=True, created_grace=0)
        assert set(dry.ids) == {never_started, stopped}
        assert all(_exists(c) for c in (never_started, stopped))  # a dry run removes nothing
        listed = CliRunner().invoke(app, ["gc", "--run-id", run, "--dry-run"])
        assert listed.exit_code == 0 and stopped[:12] in listed.output, listed.output
        assert _exists(stopped)
        assert collect_garbage(run_id=run).ids == [stopped]  # just created: may be starting
        done = collect_garbage(run_id=run, created_grace=0)
        assert done.ids == [never_started]
        assert all(_exists(c) for c in (others.id, mine.id, legacy))
        assert others.why_dead() is None and mine.why_dead() is None
        kept = {box.id: box.reason for box in done.kept}
        assert "owner holds" in kept[others.id] and "cannot be known" in kept[legacy]
        everything = collect_garbage(run_id=run, everything=True, dry_run=True)
        assert set(everything.ids) == {others.id, mine.id, legacy}  # --all: explicit
    finally:
        others.remove()
        mine.remove()
        for box in (never_started, stopped, legacy):
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_container(box, force=True, v=True)


def test_a_process_cleans_up_only_what_it_made(base_image):
    """At exit a process removes what carries its owner token (a creation whose answer was
    lost included), never a container of another process with the same run id."""
    run = rid("gc-owner")
    api = client().api
    labels = {LABEL: run, DEADMAN_LABEL: "stdin"}
    lost = api.create_container(base_image, ["true"], labels={**labels, OWNER_LABEL: owner_token()})
    foreign = api.create_container(base_image, ["true"], labels={**labels, OWNER_LABEL: "another"})
    try:
        assert collect_garbage(owner=owner_token()).ids == [lost["Id"]]
        assert not _exists(lost["Id"]) and _exists(foreign["Id"])
    finally:
        for box in (lost, foreign):
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_container(box["Id"], force=True)


def test_state_persists_between_commands(shell):
    shell.run("cd /tmp && export GREETING=hi && shout() { echo \"$GREETING!\"; }", 10)
    result = shell.run("pwd; shout", 10)
    assert result.output == "/tmp\nhi!\n" and result.exit_code == 0


def test_heredoc_multiline_and_exit_codes(shell):
    result = shell.run("cat <<'EOF'\nline one\n$NOT_EXPANDED\nEOF\nfor i in 1 2; do\n  echo $i\ndone", 10)
    assert result.output == "line one\n$NOT_EXPANDED\n1\n2\n"
    assert shell.run("false", 10).exit_code == 1
    assert shell.run("(exit 42)", 10).exit_code == 42


def test_unterminated_quote_is_a_syntax_error_not_a_hang(shell):
    result = shell.run("echo 'oops", 10)
    assert result.exit_code == 2 and not result.timed_out
    assert shell.run("echo fine", 10).output == "fine\n"


def test_sleep_600_is_cut_by_timeout_and_shell_keeps_working(shell):
    shell.run("X=kept", 10)
    started = time.monotonic()
    result = shell.run("sleep 600", 2)
    assert result.timed_out and time.monotonic() - started < 10
    assert "timed out after 2s" in result.output
    assert shell.run("echo $X", 10).output == "kept\n"


@pytest.mark.parametrize("command", ["trap '' INT; sleep 600", "vim /etc/hostname"])
def test_command_ignoring_ctrl_c_is_killed_and_the_shell_kept(shell, command):
    shell.run("cd /etc; X=kept", 10)
    result = shell.run(command, 1)
    assert result.timed_out and not result.restarted and result.exit_code == 137, result
    assert "tcsetattr" not in result.output and "Killed\n" in result.output
    after = shell.run("pwd; echo $X", 10)
    assert after.output == "/etc\nkept\n" and after.exit_code == 0


@pytest.mark.parametrize(("sig", "code", "name"), [(9, 137, "Killed"), (11, 139, "Segmentation fault")])
def test_command_killed_by_a_signal_is_named_as_a_terminal_would(shell, sig, code, name):
    result = shell.run(f"python3 -c 'import os; print(1); os.kill(os.getpid(), {sig})'", 10)
    assert (result.exit_code, result.output) == (code, f"1\n{name}\n")


def test_shell_stuck_in_a_builtin_ignoring_ctrl_c_gets_restarted(shell):
    shell.run("cd /etc", 10)
    result = shell.run("trap '' INT; while :; do :; done", 1)
    assert result.timed_out and result.restarted and "new shell" in result.output
    after = shell.run("pwd", 10)
    assert after.output == "/etc\n" and after.exit_code == 0


@pytest.mark.parametrize("command", ["exit", "exit 3", "set -e; false", "exec bash", "kill -9 $$",
                                     "exec sh"])
def test_shell_survives_commands_that_end_it(shell, command):
    shell.run("cd /usr", 10)
    result = shell.run(command, 3)
    assert not result.output.startswith("Traceback")
    after = shell.run("echo alive; pwd", 10)
    assert after.output.startswith("alive\n/usr\n") and after.exit_code == 0


def test_prompt_and_tty_games_do_not_break_the_harness(shell):
    shell.run("PS1='$ '; PROMPT_COMMAND='echo hi'", 5)
    shell.run("stty echo; stty sane", 5)
    assert shell.run("echo ok", 10).output.endswith("ok\n")


def test_stdout_and_stderr_arrive_in_order_on_one_stream(shell):
    result = shell.run("echo a; echo b >&2; ls /nonexistent; echo c", 10)
    assert result.output.splitlines()[:2] == ["a", "b"] and result.output.endswith("c\n")
    assert "No such file or directory" in result.output
    assert shell.run("printf 'no newline'", 10).output == "no newline"  # exactly what was printed


def test_timed_out_program_shows_what_it_printed(shell):
    result = shell.run("python3 -c \"import time; print('started'); time.sleep(60)\"", 2)
    assert result.timed_out and not result.restarted and result.output.startswith("started\n")
    assert "KeyboardInterrupt" in result.output  # SIGINT reached the program, as Ctrl-C would


def test_program_wanting_a_terminal_fails_at_once_instead_of_hanging(shell):
    for command in ["python3 -c \"open('/dev/tty').read()\"", "python3 -i", "read x"]:
        result = shell.run(command, 10)
        assert not result.timed_out and result.duration < 5, (command, result)
    assert "No such device or address" in shell.run("cat /dev/tty", 10).output


def test_background_jobs_do_not_block(shell):
    result = shell.run("sleep 300 & echo started", 5)
    assert "started" in result.output and not result.timed_out
    assert shell.run("echo next", 5).output == "next\n"


def test_50mb_of_output_is_capped_without_hanging(shell):
    started = time.monotonic()
    result = shell.run("head -c 50000000 /dev/zero | tr '\\0' x", 120)
    assert result.truncated and not result.timed_out and result.exit_code == 0
    assert len(result.output) < 5000 and "bytes of output cut" in result.output
    assert time.monotonic() - started < 60


def test_ansi_stripped_and_bad_bytes_replaced(shell):
    result = shell.run(r"printf '\033[1;31mred\033[0m \377 done\n'", 10)
    assert result.output == "red \ufffd done\n"


def test_dead_container_is_a_sandbox_error(base_image):
    box = Container(SandboxSpec(image=base_image))
    try:
        session = BashSession(box)
        client().api.kill(box.id)
        with pytest.raises(SandboxError, match="exited|no longer exists|not running"):
            session.run("echo hi", 5)
    finally:
        box.remove()


def test_kill_sweep_goes_by_cgroup_not_name_and_freeze_stops_the_rest(box):
    """A process that calls itself `sleep` (or anything) is killed; a frozen box changes
    nothing until it is removed."""
    box.exec(["bash", "-c", "nohup bash -c 'exec -a sleep bash -c \"while :; do date >> /tmp/a; "
              "sleep 0.05; done\"' >/dev/null 2>&1 &"], user="1000")
    time.sleep(0.3)
    names = box.exec(["ps", "-eo", "args="]).text
    assert "sleep" in names
    assert box.kill_all_but_init()
    left = box.exec(["ps", "-eo", "pid=,args="]).text.splitlines()
    assert not [line for line in left if "sleep" in line and "ps -eo" not in line], left
    box.exec(["bash", "-c", "nohup sh -c 'while :; do date >> /tmp/b; sleep 0.05; done' "
              ">/dev/null 2>&1 &"], user="1000")
    time.sleep(0.3)
    box.freeze()
    first = b"".join(box.read_archive("/tmp"))
    time.sleep(0.5)
    assert b"".join(box.read_archive("/tmp")) == first  # nothing ran while frozen
    box.thaw()
    time.sleep(0.3)
    assert b"".join(box.read_archive("/tmp")) != first


def test_dev_shm_is_bounded(box):
    sizes = box.exec(["df", "-m", "--output=size", "/dev/shm"]).text.split()
    assert sizes[-1] == "64", sizes


def test_the_seed_copy_is_done_before_a_shell_or_exec_sees_the_box(base_image):
    """The first command (of a shell, or an exec) already sees all of the copy."""
    spec = SandboxSpec(image=base_image, run_id=rid("sandbox"), seed="/usr/share", disk_mb=256,
                       workdir="/work")
    with Container(SandboxSpec(image=base_image, run_id=rid("sandbox"))) as plain:
        expected = plain.exec(["sh", "-c", "cd /usr/share && find . | wc -l"])
    with Container(spec) as box:
        shell = BashSession(box)
        try:
            counted = shell.run("find . | wc -l", timeout=30).output.strip()
        finally:
            shell.close()
        assert counted == expected.text.strip()
    with Container(spec) as box:
        assert box.exec(["sh", "-c", "find . | wc -l"]).text.strip() == expected.text.strip()


def test_a_failed_seed_copy_is_a_sandbox_error_and_leaves_no_box(base_image):
    with pytest.raises(SandboxError, match="cannot copy /no/such/dir"):
        Container(SandboxSpec(image=base_image, run_id=rid("sandbox"), seed="/no/such/dir"))
    # a box left behind would fail this session's leak check (conftest)
