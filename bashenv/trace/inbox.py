"""The `trace` command inside agents' boxes: the tracer's text form, for a bash-first agent.

No image recipe changes and no step per box: the tracer and a small wrapper are a
`ToolSet`, kept once per engine in a shared volume that every agent box mounts read-only
at TOOLS_DIR, first on its shell's PATH (bashenv/sandbox/tools.py). It runs only what the
box already holds, as the agent's user, under the box's limits; the agent can neither
change nor remove it, and the hidden tests never enter the agent's box.
"""

from __future__ import annotations

from bashenv.sandbox.tools import ToolSet
from bashenv.trace.run import TRACER_SOURCE

TOOLS_DIR = "/opt/bashenv/tools"
TRACE_WRAPPER = f"""#!/bin/sh
# trace [--max-events N] [--max-seconds S] [--max-repr N] (SCRIPT [ARGS] | -m MODULE | --test NODEID)
# Runs it under bashenv's tracer and prints each executed line of this directory's code
# followed by the local variables it changed: ---, the line, {{x: 5, y: 10}}.
exec python3 -s {TOOLS_DIR}/bashenv_tracer.py --format text --max-events 1000 \\
    --max-seconds 10 "$@"
""".encode()

# What an agent's box spec carries (SandboxSpec.tools).
AGENT_TOOLS = ToolSet(TOOLS_DIR, (("trace", TRACE_WRAPPER), ("bashenv_tracer.py", TRACER_SOURCE)))
