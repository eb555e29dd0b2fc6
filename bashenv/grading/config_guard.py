"""Runs *inside* the grading container (imported by box_scan.py; stdlib only, Python 3.8+).

Which changed paths are test configuration, so that a diff cannot make tests pass by
configuring pytest: conftest.py, sitecustomize/usercustomize, .pth files, pytest's own
config files (always), and tox.ini / setup.cfg / pyproject.toml when their pytest section
changed. Paths are bytes; "base" is the grader's record of the base tree (the image's seed).
"""

import configparser
import os
import stat

try:
    import tomllib
except ImportError:  # Python < 3.11 in the image: any change to pyproject.toml is reverted
    tomllib = None  # type: ignore[assignment]

ALWAYS = (b"conftest.py", b"sitecustomize.py", b"usercustomize.py",
          b"pytest.ini", b".pytest.ini", b"pytest.toml", b".pytest.toml")
INI_SECTIONS = {b"tox.ini": ["pytest"], b"setup.cfg": ["tool:pytest"]}


def read_file(path):
    """A regular file's bytes; None for anything else (absent, a directory, a symlink)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        return handle.read() if stat.S_ISREG(os.fstat(handle.fileno()).st_mode) else None


def pytest_section(name, data):
    """What pytest would read from a config file's text (None: no pytest section)."""
    if data is None:
        return None
    try:
        text = data.decode("utf-8")
        if name == b"pyproject.toml":
            if tomllib is None:
                return text
            return tomllib.loads(text).get("tool", {}).get("pytest")
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(text)
        return {s: dict(parser[s]) for s in INI_SECTIONS[name] if parser.has_section(s)} or None
    except Exception:
        return "unparseable"


def is_test_config(rel, work, seed):
    """Whether the change at `rel` (relative bytes path) configures the test run."""
    name = os.path.basename(rel)
    if name in ALWAYS or name.endswith(b".pth"):
        return True
    if name in INI_SECTIONS or name == b"pyproject.toml":
        now = read_file(os.path.join(work, rel))
        return pytest_section(name, now) != pytest_section(name, read_file(os.path.join(seed, rel)))
    return False
