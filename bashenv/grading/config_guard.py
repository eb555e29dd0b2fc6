"""Runs *inside* the grading container (python3 there, stdlib only), as root, in the repo.

Reverts what the agent's diff did to test configuration, so a diff cannot make tests
pass by configuring pytest: conftest.py, sitecustomize/usercustomize, .pth files
(always), and pytest.ini / tox.ini / setup.cfg / pyproject.toml when their pytest
section changed. Prints one line: BASHENV_REVERTED <json list of paths>.
Usage: python3 config_guard.py BASE_SHA PATHS_JSON_FILE
"""

import configparser
import json
import os
import shutil
import subprocess
import sys

try:
    import tomllib
except ImportError:  # Python < 3.11 in the image: any change to pyproject.toml is reverted
    tomllib = None

ALWAYS = ("conftest.py", "sitecustomize.py", "usercustomize.py")
INI_SECTIONS = {"pytest.ini": ["pytest", "tool:pytest"], "tox.ini": ["pytest"],
                "setup.cfg": ["tool:pytest"]}


def base_version(base, path):
    done = subprocess.run(["git", "show", f"{base}:{path}"], capture_output=True)
    return done.stdout if done.returncode == 0 else None


def pytest_section(name, data):
    if data is None:
        return None
    try:
        text = data.decode("utf-8")
        if name == "pyproject.toml":
            if tomllib is None:
                return text
            return tomllib.loads(text).get("tool", {}).get("pytest")
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(text)
        return {s: dict(parser[s]) for s in INI_SECTIONS[name] if parser.has_section(s)}
    except Exception:
        return "unparseable"


def revert(base, path):
    if base_version(base, path) is not None:
        subprocess.run(["git", "checkout", "-q", base, "--", path], check=True)
    elif os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def main():
    base, paths_file = sys.argv[1], sys.argv[2]
    with open(paths_file) as handle:
        paths = json.load(handle)
    reverted = []
    for path in paths:
        name = os.path.basename(path)
        if name in ALWAYS or name.endswith(".pth"):
            revert(base, path)
            reverted.append(path)
        elif name in INI_SECTIONS or name == "pyproject.toml":
            current = None
            if os.path.isfile(path):
                with open(path, "rb") as handle:
                    current = handle.read()
            if pytest_section(name, current) != pytest_section(name, base_version(base, path)):
                revert(base, path)
                reverted.append(path)
    print("BASHENV_REVERTED " + json.dumps(sorted(reverted)))


if __name__ == "__main__":
    main()
