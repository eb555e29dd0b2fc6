"""Operations on lists of closed intervals (start, end)."""

from typing import Iterable, List, Tuple

Interval = Tuple[int, int]


def _check(intervals: Iterable[Interval]) -> List[Interval]:
    result = []
    for start, end in intervals:
        if start > end:
            raise ValueError(f"bad interval ({start}, {end}): start > end")
        result.append((start, end))
    return result


def merge(intervals: Iterable[Interval]) -> List[Interval]:
    """Merge overlapping intervals into a sorted list of disjoint intervals."""
    merged: List[Interval] = []
    for start, end in _check(intervals):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def total_length(intervals: Iterable[Interval]) -> int:
    """Length covered by the union of the intervals."""
    return sum(end - start for start, end in merge(intervals))


def contains(intervals: Iterable[Interval], x: int) -> bool:
    return any(start <= x <= end for start, end in _check(intervals))
