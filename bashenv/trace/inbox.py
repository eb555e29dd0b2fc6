"""The `trace` command inside agents' boxes: the tracer's text form, for a bash-first agent.

Installed when the box starts (no image recipe changes): the tracer and a small wrapper
go into a root-owned directory on a volume the host can write, and the shell's PATH
gets it in front. It runs only what the box already holds, as the agent's user, under
the box's limits; the hidden tests never enter the agent's box.
"""

from __future__ import annotations

from bashenv.sandbox import Sandbox
from bashenv.sandbox.shell import BashSession
from bashenv.trace.run import TRACER_SOURCE

TOOLS_DIR = "/opt/bashenv/tools"
TRACE_WRAPPER = f"""#!/bin/sh
# trace [--max-events N] [--max-seconds S] [--max-repr N] (SCRIPT [ARGS] | -m MODULE | --test NODEID)
# Runs it under bashenv's tracer and prints each executed line of this directory's code
# followed by the local variables it changed: ---, the line, {{x: 5, y: 10}}.
exec python3 -s {TOOLS_DIR}/bashenv_tracer.py --format text --max-events 1000 \\
    --max-seconds 10 "$@"
""".encode()


def install_trace_command(box: Sandbox, shell: BashSession | None = None) -> None:
    """Put `trace` into `box` (whose spec has scratch=TOOLS_DIR when its root filesystem
    is read-only) and, given its shell, put it on the shell's PATH."""
    writable_root = TOOLS_DIR if box.spec.disk_mb and box.spec.scratch == TOOLS_DIR else "/"
    box.put_files({f"{TOOLS_DIR}/trace": TRACE_WRAPPER,
                   f"{TOOLS_DIR}/bashenv_tracer.py": TRACER_SOURCE},
                  root=writable_root, mode=0o755)
    if shell is not None:
        shell.run(f"export PATH={TOOLS_DIR}:$PATH", timeout=10)
