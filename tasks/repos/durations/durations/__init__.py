"""Human durations."""

from durations.parse import format_seconds, parse

__all__ = ["format_seconds", "parse"]
