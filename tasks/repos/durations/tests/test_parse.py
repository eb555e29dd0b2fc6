import pytest

from durations import format_seconds, parse


def test_parse_compound():
    assert parse("1h30m") == 5400


def test_parse_seconds():
    assert parse("45s") == 45


def test_parse_garbage():
    with pytest.raises(ValueError):
        parse("soon")


def test_format_roundtrip():
    assert format_seconds(parse("2d3h")) == "2d3h"


def test_format_zero():
    assert format_seconds(0) == "0s"
