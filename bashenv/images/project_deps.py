"""Runs inside an environment image's build (a throwaway stage, with the network), in the
project's tree at its environment commit: prepares what the task's setup needs so that it
can install the project without the package index.

1. Wheels of the project's build requirements (`[build-system] requires` of pyproject.toml,
   else setuptools as pip assumes; plus setup.cfg's `setup_requires` and `wheel`, which
   older setuptools backends ask for) go into a wheelhouse, for pip's build isolation.
2. pip is asked (a dry run) which packages installing the project, with the extras the
   setup names, would add to the environment; they are written pinned to a requirements
   file that the environment layer then installs. The task layer then adds only the
   project itself.

Usage: python project_deps.py OUT_DIR [EXTRAS]  →  OUT_DIR/requirements.txt (perhaps
empty) and, only when everything worked, OUT_DIR/wheelhouse/. Any failure is reported
and leaves no wheelhouse: the task's setup then uses the index, as without this step.
Standard library only, Python 3.7+ (the oldest base image's interpreter).
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any

# What pip assumes for a project without [build-system] (pip's own fallback).
DEFAULT_BUILD_REQUIRES = ["setuptools>=40.8.0"]


def _toml() -> Any:
    try:
        import tomllib  # Python 3.11+

        return tomllib
    except ImportError:
        from pip._vendor import tomli  # pip >= 21.2 vendors it

        return tomli


def build_requirements(project: str) -> list[str]:
    """The requirements pip's build isolation installs for `project`, as far as static
    files say (a backend may ask for more at build time: then the setup falls back)."""
    requires = list(DEFAULT_BUILD_REQUIRES)
    pyproject = os.path.join(project, "pyproject.toml")
    if os.path.isfile(pyproject):
        with open(pyproject, "rb") as handle:
            table = _toml().load(handle).get("build-system", {})
        if "requires" in table:
            requires = [str(r) for r in table["requires"]]
    setup_cfg = os.path.join(project, "setup.cfg")
    if os.path.isfile(setup_cfg):
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(setup_cfg, encoding="utf-8")
        raw = parser.get("options", "setup_requires", fallback="")
        requires += [line.strip() for line in raw.replace(";", "\n").splitlines() if line.strip()]
    return [*requires, "wheel"]


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True)


def added_packages(report_path: str) -> list[str]:
    """`name==version` for what a pip install report would add, the local project aside."""
    with open(report_path, encoding="utf-8") as handle:
        report = json.load(handle)
    return [f"{item['metadata']['name']}=={item['metadata']['version']}"
            for item in report.get("install", [])
            if not item.get("download_info", {}).get("url", "").startswith("file:")]


def main(argv: list[str]) -> int:
    out, extras = argv[1], (argv[2] if len(argv) > 2 else "")
    os.makedirs(out, exist_ok=True)
    requirements = os.path.join(out, "requirements.txt")
    open(requirements, "w").close()
    if not any(os.path.isfile(name) for name in ("pyproject.toml", "setup.py")):
        print("bashenv: no pyproject.toml or setup.py here: no dependencies to prepare")
        return 0
    wheels = tempfile.mkdtemp(prefix="bashenv-wheels-")
    try:
        _pip("wheel", "--quiet", "--no-cache-dir", "--wheel-dir", wheels,
             *build_requirements(os.getcwd()))
        report = os.path.join(tempfile.mkdtemp(prefix="bashenv-report-"), "report.json")
        _pip("install", "--quiet", "--no-cache-dir", "--dry-run", "--report", report,
             "--find-links", wheels, "." + extras)
        added = added_packages(report)
        with open(requirements, "w", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in added))
        os.chmod(wheels, 0o755)  # mkdtemp made it private
        shutil.move(wheels, os.path.join(out, "wheelhouse"))
        count = len(os.listdir(os.path.join(out, "wheelhouse")))
        print(f"bashenv: {count} build wheel(s) prepared; the project adds: "
              f"{' '.join(added) or 'nothing'}")
    except (subprocess.CalledProcessError, OSError, ValueError, KeyError, TypeError) as exc:
        shutil.rmtree(wheels, ignore_errors=True)
        print(f"bashenv: could not prepare the project's dependencies ({exc}); the task's "
              "setup will use the package index")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
