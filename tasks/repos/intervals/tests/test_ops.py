import pytest

from intervals import contains, merge, total_length


def test_merge_overlapping_sorted():
    assert merge([(1, 3), (2, 5), (7, 8)]) == [(1, 5), (7, 8)]


def test_merge_empty():
    assert merge([]) == []


def test_bad_interval():
    with pytest.raises(ValueError):
        merge([(3, 1)])


def test_contains():
    assert contains([(1, 3)], 3)
    assert not contains([(1, 3)], 4)
