"""The built wheel on its own: installed into a fresh venv outside the checkout (by
scripts/wheel-check.sh, which CI also runs with the gold agent), it ships every module,
lists the bundled tasks and loads the built-in base recipes, and a user's recipe
directory adds to those."""

from __future__ import annotations

import os
import subprocess
import tomllib
import zipfile
from pathlib import Path

import pytest
import setuptools

from bashenv.images import load_recipe

from .conftest import ROOT, TASKS_DIR

BUNDLED_IDS = {"durations-spaces-case", "intervals-merge-unsorted", "textkit-truncate-width"}


def test_pyproject_lists_every_package():
    """pyproject lists packages by hand (the bundled data needs `package-dir`): a new
    subpackage missing there would be missing from the wheel."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set(setuptools.find_packages(str(ROOT), include=["bashenv", "bashenv.*"]))
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - found == {"bashenv._data.images", "bashenv._data.tasks"}


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory) -> Path:
    """A work directory holding dist/*.whl and venv/ with the wheel installed."""
    work = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([str(ROOT / "scripts" / "wheel-check.sh"), "--no-run", "--workdir", str(work)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return work


def _user_env(**extra: str) -> dict[str, str]:
    """The environment of a user who installed the wheel: no checkout on any path."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("BASHENV_TASKS", "BASHENV_IMAGES", "PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "COLUMNS": "250", **extra}


def _installed(wheel_dir: Path, *args: str, **env: str) -> str:
    outside = wheel_dir / "elsewhere"
    outside.mkdir(exist_ok=True)
    done = subprocess.run(args, cwd=outside, env=_user_env(**env), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_wheel_ships_every_module_and_the_bundled_data(wheel_dir):
    [wheel] = (wheel_dir / "dist").glob("bashenv-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "bashenv").rglob("*.py")}
    assert modules - names == set()
    recipes = {f"bashenv/_data/images/{p.name}" for p in (ROOT / "images").glob("*.yaml")}
    tasks = {f"bashenv/_data/tasks/{p.relative_to(TASKS_DIR)}" for p in TASKS_DIR.rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".")}
    assert recipes and recipes - names == set()
    assert tasks - names == set()
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_tasks_list_without_a_path_lists_the_bundled_tasks(wheel_dir):
    out = _installed(wheel_dir, str(wheel_dir / "venv" / "bin" / "bashenv"), "tasks", "list")
    listed = {line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")}
    assert listed == BUNDLED_IDS
    assert "site-packages/bashenv/_data/tasks/" in out and str(ROOT) not in out


def test_builtin_recipe_loads_from_the_wheel_with_the_checkouts_tag(wheel_dir):
    out = _installed(wheel_dir, str(wheel_dir / "venv" / "bin" / "python"), "-c",
                     "import bashenv.images as i, bashenv; "
                     "print(i.load_recipe('python-bookworm').tag); print(bashenv.__file__)")
    tag, where = out.split()
    assert tag == load_recipe("python-bookworm").tag  # same recipe bytes → same image, no rebuild
    assert "site-packages" in where and not where.startswith(str(ROOT))


def test_user_recipe_directories_add_to_the_builtin_ones(wheel_dir, tmp_path):
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    mine.mkdir()
    theirs.mkdir()
    (mine / "own.yaml").write_text("name: own\nfrom: debian:bookworm-slim\n")
    (theirs / "slim.yaml").write_text("name: python-3.11-slim\nfrom: example/python:3.11\n")
    script = ("from bashenv.images import load_recipe as r; "
              "print(r('own').from_image, r('python-3.11-slim').from_image, "
              "r('python-bookworm').debootstrap is not None)")
    out = _installed(wheel_dir, str(wheel_dir / "venv" / "bin" / "python"), "-c", script,
                     BASHENV_IMAGES=f"{mine}{os.pathsep}{theirs}")
    # A user's recipe of a built-in name wins; the other built-ins are still there.
    assert out.split() == ["debian:bookworm-slim", "example/python:3.11", "True"]
