"""Reading a diff's text for the paths it touches.

Used for the task's own (trusted) test patch and for audit. The grader never decides
anything about an agent's change from its diff text: it compares files after applying
(box_scan.py), so diff headers shaped by the agent's git config cannot mislead it.
"""

from __future__ import annotations

import re

_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def unquote_path(text: str) -> str:
    """A path as git writes it: C-quoted ("tests/\\303\\274/x.py") when it holds special
    bytes, else verbatim. Bytes that are not UTF-8 come back as surrogate escapes."""
    if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
        return text
    raw, body, i = bytearray(), text[1:-1], 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in "0123" and re.fullmatch(r"[0-7]{3}", body[i + 1:i + 4]):
                raw.append(int(body[i + 1:i + 4], 8))
                i += 4
                continue
            if nxt in _ESCAPES:
                raw.append(_ESCAPES[nxt])
                i += 2
                continue
        raw += char.encode("utf-8", "surrogateescape")
        i += 1
    return raw.decode("utf-8", "surrogateescape")


def _strip_prefix(path: str) -> str:
    """What `git apply` (-p1) makes of a ---/+++/diff --git path: its first component goes."""
    return path.split("/", 1)[1] if "/" in path else path


def _header_paths(rest: str) -> list[str]:
    """Paths of a `diff --git A B` line. Unquoted names may hold spaces: the two halves are
    equal unless the file was renamed or copied, and then `rename from/to` lines name them."""
    if rest.startswith('"') or rest.endswith('"'):
        parts = re.findall(r'"(?:[^"\\]|\\.)*"|\S+', rest)
        return [_strip_prefix(unquote_path(p)) for p in parts[:2]] if len(parts) == 2 else []
    half = (len(rest) - 1) // 2
    if len(rest) % 2 == 1 and rest[half] == " " and rest[2:half] == rest[half + 3:]:
        return [_strip_prefix(rest[:half])]
    return []


def _file_path(line: str) -> str | None:
    """The path of a `--- x` / `+++ x` line (a timestamp after a tab is not part of it)."""
    name = line[4:].rstrip("\r")
    quoted = re.match(r'"(?:[^"\\]|\\.)*"', name)
    name = unquote_path(quoted.group(0)) if quoted else name.split("\t", 1)[0]
    return None if name == "/dev/null" else _strip_prefix(name)


def changed_paths(diff: str | bytes) -> set[str]:
    """Repository paths a unified or git diff creates, changes, renames, copies, deletes or
    re-modes, read the way `git apply` reads them (hunk bodies are skipped by their line
    counts, so a removed line that starts with `--` is not taken for a header)."""
    text = diff.decode("utf-8", "surrogateescape") if isinstance(diff, bytes) else diff
    paths: set[str] = set()
    old_left = new_left = 0
    for line in text.split("\n"):
        if old_left > 0 or new_left > 0:  # inside a hunk
            if line.startswith("\\"):
                continue
            marker = line[:1]
            old_left -= marker in (" ", "-", "")
            new_left -= marker in (" ", "+", "")
            continue
        if hunk := _HUNK.match(line):
            old_left = int(hunk.group(1) or 1)
            new_left = int(hunk.group(2) or 1)
        elif line.startswith("diff --git "):
            paths.update(_header_paths(line[len("diff --git "):].rstrip("\r")))
        elif line.startswith(("--- ", "+++ ")):
            path = _file_path(line)
            if path:
                paths.add(path)
        elif line.startswith(("rename from ", "rename to ", "copy from ", "copy to ")):
            paths.add(unquote_path(line.split(" ", 2)[2].rstrip("\r")))
    return {p for p in paths if p}
