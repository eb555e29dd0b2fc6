"""Parse '1h30m' style durations into seconds, and back."""

import re

UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)([dhms])")


def parse(text: str) -> int:
    """Seconds in a duration such as '2h', '1h30m' or '45s'."""
    text = text.strip()
    if not text:
        raise ValueError("empty duration")
    total, pos = 0, 0
    for match in _PART.finditer(text):
        if match.start() != pos:
            raise ValueError(f"cannot parse duration {text!r}")
        total += int(match.group(1)) * UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"cannot parse duration {text!r}")
    return total


def format_seconds(seconds: int) -> str:
    """Inverse of parse: 5400 -> '1h30m'; 0 -> '0s'."""
    if seconds < 0:
        raise ValueError("negative duration")
    parts = []
    for unit, size in UNITS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
