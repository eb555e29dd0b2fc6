"""Gymnasium environments."""

from bashenv.env.bash_swe import BashSWEEnv
from bashenv.env.spaces import UnicodeText

__all__ = ["BashSWEEnv", "UnicodeText"]
