import pytest

from textkit import slugify, truncate, word_count


def test_slugify_basic():
    assert slugify("Hello, World!") == "hello-world"


def test_slugify_accents():
    assert slugify("Crème brûlée") == "creme-brulee"


def test_truncate_short_text_unchanged():
    assert truncate("short", 10) == "short"


def test_truncate_negative_width():
    with pytest.raises(ValueError):
        truncate("text", -1)


def test_word_count():
    assert word_count("  one two\tthree\n") == 3
