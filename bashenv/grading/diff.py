"""The agent's diff: taken out of its container, and read for the paths it touches."""

from __future__ import annotations

import re

from bashenv.errors import SandboxError
from bashenv.sandbox.container import Container

_DIFF_GIT = re.compile(r'^diff --git "?a/(.+?)"? "?b/(.+?)"?$', re.MULTILINE)
_PLUS_MINUS = re.compile(r'^(?:\+\+\+|---) "?[ab]/(.+?)"?\t?$', re.MULTILINE)


def changed_paths(diff: str) -> set[str]:
    """Repository paths a unified/git diff creates, changes, renames or deletes."""
    paths: set[str] = set()
    for match in _DIFF_GIT.finditer(diff):
        paths.update(match.groups())
    paths.update(_PLUS_MINUS.findall(diff))
    return {p for p in paths if p != "/dev/null"}


def agent_diff(box: Container, base_sha: str, user: str = "") -> bytes:
    """All changes in the agent's repository against the base commit, new files included."""
    # A private index, hooks off: the agent's own git state is not trusted or disturbed.
    script = (
        "export GIT_INDEX_FILE=$(mktemp) && cp .git/index \"$GIT_INDEX_FILE\" 2>/dev/null; "
        "git -c core.hooksPath=/dev/null add -A . >/dev/null 2>&1; "
        f"git -c core.hooksPath=/dev/null diff --cached --binary --no-color --no-ext-diff {base_sha}; "
        "rc=$?; rm -f \"$GIT_INDEX_FILE\"; exit $rc"
    )
    result = box.exec(["bash", "-c", script], user=user, timeout=120)
    if result.exit_code != 0:
        raise SandboxError(f"cannot take the agent's diff (git exited {result.exit_code}): "
                           f"{result.text[-500:]}")
    return result.output
