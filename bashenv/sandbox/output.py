"""Command output: capped to head + tail while streaming, then cleaned into text."""

from __future__ import annotations

import re

ANSI = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class CappedBuffer:
    """Keeps the first and last `limit // 2` bytes of a stream of any size, counting the rest."""

    def __init__(self, limit: int) -> None:
        self.half = max(1, limit // 2)
        self.head = bytearray()
        self.tail = bytearray()
        self.cut = 0

    def add(self, data: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if not data:
            return
        self.tail += data
        excess = len(self.tail) - self.half
        if excess > 0:
            self.cut += excess
            del self.tail[:excess]

    @property
    def truncated(self) -> bool:
        return self.cut > 0

    def data(self) -> bytes:
        """Head and tail as bytes, with a line saying how much was cut between them."""
        if not self.cut:
            return bytes(self.head + self.tail)
        return bytes(self.head) + self.note().encode() + bytes(self.tail)

    def note(self) -> str:
        return f"\n[... {self.cut} bytes of output cut; showing the first and last {self.half} ...]\n"

    def text(self) -> str:
        if not self.cut:
            return clean(bytes(self.head + self.tail))
        return clean(bytes(self.head)) + self.note() + clean(bytes(self.tail))


def clean(data: bytes) -> str:
    """Bytes → text: ANSI sequences stripped, CRLF normalised, undecodable bytes replaced."""
    text = ANSI.sub(b"", data).decode("utf-8", errors="replace").replace("\r\n", "\n")
    return CONTROL.sub("", text)


class ExecFrames:
    """Undoes the framing of a Docker exec stream without a tty: each chunk of stdout or
    stderr comes behind an 8-byte header (stream, 0, 0, 0, big-endian length)."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._left = 0  # payload bytes still due in the current frame

    def feed(self, data: bytes) -> bytes:
        """The payload bytes that `data` completes, in order, whatever their stream."""
        if not self._pending and not self._left and len(data) >= 8 \
                and int.from_bytes(data[4:8], "big") == len(data) - 8:
            return data[8:]  # one whole frame: the usual case of a short command
        self._pending += data
        out = bytearray()
        while self._pending:
            if self._left:
                payload = self._pending[: self._left]
                out += payload
                self._left -= len(payload)
                del self._pending[: len(payload)]
            elif len(self._pending) >= 8:
                self._left = int.from_bytes(self._pending[4:8], "big")
                del self._pending[:8]
            else:
                break
        return bytes(out)
