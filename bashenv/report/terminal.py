"""Terminal recordings: asciicast v2 files and the cleaning of untrusted terminal output.

An agent's output is untrusted. Written raw to a terminal, escape sequences can set the
window title, write the clipboard (OSC 52) or redraw the screen to hide what ran; in a
transcript they are noise. So replays keep only colours (SGR) unless asked for raw bytes,
and transcripts keep plain text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bashenv import jsonl
from bashenv.errors import BashenvError

# ECMA-48: CSI (ESC [ params intermediates final), OSC/DCS/PM/APC strings ended by BEL or
# ST, and two-byte escapes; then the remaining control characters.
_STRING = r"\x1b[\]P^_][^\x07\x1b]*(?:\x07|\x1b\\)?"
_CSI = r"\x1b\[[0-?]*[ -/]*[@-~]"
_ESC = r"\x1b[ -/]*[0-~]?"
_ANY_ESCAPE = re.compile(f"{_STRING}|{_CSI}|{_ESC}|\x9b[0-?]*[ -/]*[@-~]")
_SGR = re.compile(r"\x1b\[[0-9;:]*m")
_CONTROLS = re.compile("[\x00-\x07\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # C0, C1 but tab, LF, CR, BS


def plain_text(text: str) -> str:
    """Text without any escape sequence or control character (for transcripts)."""
    return _strip(text.replace("\r\n", "\n")).replace("\r", "")


def terminal_safe(text: str) -> str:
    """Text with colours (SGR) kept and every other escape sequence or control removed."""
    pieces, start = [], 0
    for match in _SGR.finditer(text):
        pieces += [_strip(text[start:match.start()]), match.group()]
        start = match.end()
    return "".join([*pieces, _strip(text[start:])])


def _strip(text: str) -> str:
    return _CONTROLS.sub("", _ANY_ESCAPE.sub("", text).replace("\x1b", ""))


@dataclass
class Cast:
    """An asciicast v2 recording: its header and (seconds, code, data) events."""

    header: dict[str, Any]
    events: list[tuple[float, str, str]]

    @property
    def duration(self) -> float:
        return self.events[-1][0] if self.events else 0.0

    def output(self) -> str:
        """Everything written to the terminal, as plain text."""
        return plain_text("".join(data for _, code, data in self.events if code == "o"))


def read_cast(path: str | Path) -> Cast:
    """Parse an asciicast v2 file; errors name the file and line."""
    path = Path(path)
    try:
        lines = [line.rstrip("\r\n") for line in jsonl.lines(path)]
    except OSError as exc:
        raise BashenvError(f"{path}: cannot read cast: {exc}") from None
    if not lines:
        raise BashenvError(f"{path}: empty file, not an asciicast")
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError as exc:
        raise BashenvError(f"{path}:1: not an asciicast header: {exc}") from None
    if not isinstance(header, dict) or header.get("version") != 2:
        raise BashenvError(f"{path}:1: expected an asciicast v2 header ({{\"version\": 2, ...}})")
    events: list[tuple[float, str, str]] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            at, code, data = json.loads(line)
            events.append((float(at), str(code), str(data)))
        except (ValueError, TypeError) as exc:
            if number == len(lines):  # a torn last line (the writer was killed): keep the rest
                break
            raise BashenvError(f"{path}:{number}: not an asciicast event [time, code, data]: "
                               f"{exc}") from None
    return Cast(header, events)
