"""Where the data bashenv ships lives: the base recipes (`images/`) and example tasks (`tasks/`).

A built wheel carries them as package data under `bashenv/_data/` (pyproject's
`package-dir` maps the checkout's top-level `images/` and `tasks/` there). A checkout or
an editable install has no `bashenv/_data/`: there they are the top-level directories.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from bashenv.errors import BashenvError

BUNDLED = ("images", "tasks")


def bundled_dir(name: str) -> Path:
    """The directory of bundled `images` or `tasks`, installed or in a checkout."""
    if name not in BUNDLED:
        raise ValueError(f"unknown bundled directory {name!r}; one of {BUNDLED}")
    installed = files("bashenv").joinpath("_data", name)
    # Tasks need real paths (relative file references, repository snapshots), so only a
    # package on the file system counts; a zipped install is not supported.
    if isinstance(installed, Path) and installed.is_dir():
        return installed
    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return checkout
    raise BashenvError(f"bashenv's bundled {name}/ is missing: neither {installed} (an installed "
                       f"wheel) nor {checkout} (a checkout) exists; reinstall bashenv")
