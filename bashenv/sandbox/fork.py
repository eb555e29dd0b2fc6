"""Copy a running sandbox and its shell into another, so a search can try an action in the
copy and keep the original ("simulate before you execute").

What is copied: every place the agent can write in a bounded box (the workdir, /tmp,
/var/tmp, the agent's home, /dev/shm) as one tar made inside the source by the shell's
user, and the shell's state (cwd, shell and exported variables, functions, aliases,
options, umask, traps) as a bash script the source shell writes and the copy's shell
sources. Not copied: running processes (background jobs), open descriptors, ulimits.

Why not `docker commit`: a bounded box has a read-only root filesystem and keeps all it
writes on tmpfs, which a commit does not capture; and a commit plus a start costs more
than the archive (see the README's figures). Only the Sandbox protocol (read_archive,
write_archive) and the shells are used, so any back-end forks the same way.
"""

from __future__ import annotations

import secrets
import shlex
from dataclasses import dataclass

from bashenv.errors import SandboxError
from bashenv.sandbox.backend import Sandbox
from bashenv.sandbox.shell import BashSession
from bashenv.sandbox.spec import AGENT_USER


def can_fork(backend: object) -> bool:
    """Whether `backend`'s sandboxes have paths of their own (`private_fs = True`), so a
    copy may wipe and fill /tmp and the rest; on the test suite's host-process back-end
    the same commands would touch the host's own /tmp."""
    return bool(getattr(backend, "private_fs", False))


# Writable places of a bounded box besides the workdir (container.py's tmpfs mounts).
WRITABLE = ("/tmp", "/var/tmp", f"/home/{AGENT_USER}", "/dev/shm")
STATE_TIMEOUT = 20.0
COPY_TIMEOUT = 600.0

# Bash's own and the harness's variables: never copied, never unset.
_SKIP = ("BASH BASHOPTS BASHPID BASH_ALIASES BASH_ARGC BASH_ARGV BASH_ARGV0 BASH_CMDS "
         "BASH_COMMAND BASH_LINENO BASH_LOADABLES_PATH BASH_REMATCH BASH_SOURCE BASH_SUBSHELL "
         "BASH_VERSINFO BASH_VERSION COLUMNS COMP_WORDBREAKS DIRSTACK EPOCHREALTIME "
         "EPOCHSECONDS EUID FUNCNAME GROUPS HISTCMD HOSTNAME HOSTTYPE LINENO LINES MACHTYPE "
         "OLDPWD OPTERR OPTIND OSTYPE PIPESTATUS PPID PROMPT_COMMAND PS1 PS2 PWD RANDOM "
         "SECONDS SHELLOPTS SHLVL SRANDOM UID _")

# Every variable name, without a subshell (each process counts on a loaded machine).
_ALL_NAMES = " ".join(f"${{!{c}*}}" for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")

# Runs in the source shell: writes a script that recreates its state (sourced with its
# output dropped: `declare -F`'s plain lines only print, its -fx lines export functions).
_DUMP = r"""{
__bashenv_skip=' %(skip)s '
__bashenv_names=' '
for __bashenv_v in %(names)s; do
  case "$__bashenv_skip" in *" $__bashenv_v "*) continue ;; esac
  case "$__bashenv_v" in __bashenv_*) continue ;; esac
  __bashenv_names+="$__bashenv_v "
  declare -p "$__bashenv_v"
done
printf '__bashenv_keep=%%q\n' "$__bashenv_names"
printf '%%s\n' %(unset)s 'unalias -a'
alias -p
declare -f
declare -F
umask -p
printf 'OLDPWD=%%q; cd -- %%q\n' "${OLDPWD-}" "$PWD"
shopt -p
set +o
trap -p
} > %(path)s 2>/dev/null"""

# In the state script: drops the copy's variables that the source did not have.
_UNSET_EXTRA = r"""__bashenv_skip=' %(skip)s '
for __bashenv_v in %(names)s; do
  case "$__bashenv_skip" in *" $__bashenv_v "*) continue ;; esac
  case "$__bashenv_v" in __bashenv_*) continue ;; esac
  case "$__bashenv_keep" in *" $__bashenv_v "*) ;; *) unset -v "$__bashenv_v" 2>/dev/null ;; esac
done"""


@dataclass(frozen=True)
class Snapshot:
    """A sandbox's writable places and shell state, as `snapshot` took them.

    `archive` is the engine's tar holding one file, the bundle `name`: a tar of the
    places' contents, among them the state script at `state` (in /tmp)."""

    archive: bytes
    name: str
    state: str


def snapshot(source: Sandbox, source_shell: BashSession) -> Snapshot:
    """Take `source`'s writable places and shell state (the source is left as it was).

    The work inside the box runs in its shell (a round trip costs well under a
    millisecond, an exec tens), with absolute tool paths (the agent's PATH may hold
    anything); the bundle leaves through the workdir, which the host can read.
    """
    token = secrets.token_hex(6)
    state = f"/tmp/.bashenv-fork-{token}.sh"
    name = f".bashenv-fork-{token}.tar"
    bundle = shlex.quote(f"{source.spec.workdir}/{name}")
    places = " ".join(shlex.quote(p) for p in _places(source))  # absolute paths
    names = {"skip": _SKIP, "names": _ALL_NAMES}
    dump = _DUMP % {**names, "path": shlex.quote(state),
                    "unset": shlex.quote(_UNSET_EXTRA % names)}
    # The places' contents, not the places: their own modes and owners stay the copy's.
    # Absolute names, which tar stores without the leading / (a note it prints).
    pack = (f"{dump}\n/usr/bin/find {places} -mindepth 1 -maxdepth 1 ! -path {bundle} "
            f"-print0 2>/dev/null | /bin/tar -C / -cf {bundle} --null -T - "
            f"--ignore-failed-read 2>&1; [ $? -le 1 ]")  # tar's 1: a file changed while read
    try:
        packed = source_shell.run(pack, timeout=COPY_TIMEOUT)
        if packed.timed_out or packed.exit_code != 0:
            raise SandboxError(f"cannot fork {source.id[:12]}: archiving its files failed "
                               f"(is its disk full?): {packed.output[-300:]!r}")
        archive = b"".join(source.read_archive(f"{source.spec.workdir}/{name}"))
    finally:
        source_shell.run(f"/bin/rm -f -- {bundle} {shlex.quote(state)}", timeout=STATE_TIMEOUT)
    return Snapshot(archive, name, state)


def restore(target: Sandbox, target_shell: BashSession, snap: Snapshot) -> None:
    """Replace the writable places of `target` (a fresh box from the source's spec,
    seeded or not) with the snapshot's, extracted by the shell's user so the copy holds
    nothing the agent could not have written, and give its shell the snapshot's state.
    The bundle arrives in the workdir as the engine gave it (owned by the agent's user)
    and is deleted there. Raises SandboxError."""
    target.write_archive(target.spec.workdir, snap.archive)
    inner = shlex.quote(f"{target.spec.workdir}/{snap.name}")
    state = shlex.quote(snap.state)
    wipe = " ".join(shlex.quote(p) for p in _places(target))
    unpack = (f"/usr/bin/find {wipe} -mindepth 1 -maxdepth 1 ! -path {inner} "
              f"-exec /bin/rm -rf -- {{}} + 2>/dev/null; /bin/tar -C / -xpf {inner} 2>&1; "
              f"__bashenv_rc=$?; [ $__bashenv_rc = 0 ] && {{ . {state} >/dev/null 2>&1; }}; "
              f"/bin/rm -f -- {inner} {state}; (exit $__bashenv_rc)")
    restored = target_shell.run(unpack, timeout=COPY_TIMEOUT)
    if restored.timed_out or restored.exit_code != 0:
        raise SandboxError(f"cannot fork into {target.id[:12]}: restoring the copy failed: "
                           f"{restored.output[-300:]!r}")


def _places(box: Sandbox) -> list[str]:
    return [box.spec.workdir, *WRITABLE]
