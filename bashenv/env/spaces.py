"""Spaces for text actions and observations.

Gymnasium's Text space only admits characters from a fixed charset (alphanumeric by
default), but commands and their output are arbitrary Unicode. UnicodeText admits any
str within its length bounds; it samples short strings of printable ASCII.
"""

from __future__ import annotations

import string
from typing import Any

from gymnasium.spaces import Text

SAMPLE_MAX_LENGTH = 64


class UnicodeText(Text):
    def __init__(self, max_length: int, *, min_length: int = 0, seed: int | None = None) -> None:
        super().__init__(max_length, min_length=min_length, charset=string.printable, seed=seed)

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        # Random commands are for smoke tests; a million random characters helps no one.
        if mask is None and probability is None:
            top = min(self.max_length, SAMPLE_MAX_LENGTH)
            mask = (int(self.np_random.integers(self.min_length, top + 1)), None)
        return super().sample(mask=mask, probability=probability)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"UnicodeText({self.min_length}, {self.max_length})"
