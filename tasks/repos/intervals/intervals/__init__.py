"""Closed intervals."""

from intervals.ops import contains, merge, total_length

__all__ = ["contains", "merge", "total_length"]
