"""JSON Lines read as JSON Lines: a record ends at "\\n" and nowhere else.

`str.splitlines()` also splits at U+2028, U+0085, form feeds and other separators that
`json.dumps(..., ensure_ascii=False)` leaves raw inside strings; a record holding one (agent
output, a patch, a problem statement) would be cut in two and silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def lines(path: str | Path, errors: str = "replace") -> Iterator[str]:
    """The file's lines one at a time, split at "\\n" only (each keeps its "\\n")."""
    with Path(path).open(encoding="utf-8", errors=errors, newline="\n") as handle:
        yield from handle


def split_lines(text: str) -> list[str]:
    """`text` split at "\\n" only, without the separators (a trailing "\\r" is dropped)."""
    return [line.removesuffix("\r") for line in text.split("\n")]
