"""The registry path for SWE-bench environments: with `tasks import --registry` a spec's
Python X.Y gets the `python-X.Y-slim` recipe (FROM python:X.Y-slim), so the tests run on the
exact version the spec names; without it, the nearest offline base is used and the
difference is recorded in the task and printed.

No public registry is reachable here, so a real one (Debian's `docker-registry`, on
127.0.0.1) holds an image this test makes itself: the offline bullseye base (Python 3.9)
pushed as `python:3.9-slim`. A recipes directory (BASHENV_IMAGES) carries the built-in
`python-3.9-slim` recipe unchanged but for its `from:`, which names that registry; the
task image is then built from what the registry serves (the local name is removed first,
so only a pull can provide it).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import rid
from tests.test_ray import serve_registry
from tests.test_swebench_e2e import _bashenv, _spec_source
from tests.test_swebench_sympy import SYMPY, sympy_fixture

EXACT, OFF = "sympy__sympy-90101", "sympy__sympy-90102"  # spec Python 3.9; spec Python 3.10


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True,
                          timeout=600).stdout


def _spec_table(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """SWE-bench's own sympy 1.12 spec, and a copy of it asking for Python 3.10 (which no
    offline base has)."""
    from bashenv.swebench import specs

    for name, value in _spec_source().items():
        monkeypatch.setenv(name, value)
    specs.swebench_constants.cache_clear()
    table = specs.swebench_specs()
    assert table is not None
    spec = dict(table[0]["sympy/sympy"][SYMPY])
    assert spec["python"] == "3.9"
    path = tmp / "python.py"
    path.write_text("MAP_REPO_VERSION_TO_SPECS_PY = "
                    f"{{'sympy/sympy': {{'{SYMPY}': {spec!r}, '1.12.py310': "
                    f"{ {**spec, 'python': '3.10'}!r}}}}}\n")
    return {"BASHENV_SWEBENCH_SPECS": str(path)}


def _instances(tmp: Path) -> Path:
    fixture = sympy_fixture()
    common = {"repo": "sympy/sympy", "base_commit": fixture["base"],
              "environment_setup_commit": fixture["base"], "problem_statement": "ordinal(-1)",
              "hints_text": "", "patch": fixture["gold"], "test_patch": fixture["test_patch"],
              "FAIL_TO_PASS": '["test_ordinal"]', "PASS_TO_PASS": "[]",
              "created_at": "2023-05-10T00:00:00Z"}
    path = tmp / "instances.json"
    path.write_text(json.dumps([{**common, "instance_id": EXACT, "version": SYMPY},
                                {**common, "instance_id": OFF, "version": "1.12.py310"}]))
    return path


def _imported(tmp: Path, env: dict[str, str], *flags: str) -> tuple[dict, dict, str]:
    out = tmp / ("registry" if flags else "offline")
    done = _bashenv("tasks", "import", str(_instances(tmp)), "--repos", sympy_fixture()["repos"],
                    "-o", str(out), *flags, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    read = [yaml.safe_load((out / iid / "task.yaml").read_text()) for iid in (EXACT, OFF)]
    return read[0], read[1], done.stderr


def test_without_a_registry_the_nearest_offline_base_is_used_and_the_difference_said(
        tmp_path, monkeypatch):
    env = _spec_table(tmp_path, monkeypatch)
    exact, off, printed = _imported(tmp_path, env)
    assert exact["environment"]["base"] == "python-bullseye"
    assert exact["metadata"]["python"] == exact["metadata"]["python_spec"] == "3.9"
    assert off["environment"]["base"] == "python-bookworm"
    assert (off["metadata"]["python_spec"], off["metadata"]["python"]) == ("3.10", "3.11")
    assert f"{OFF}: Python 3.11 (spec asks for 3.10" in " ".join(printed.split())
    assert EXACT not in printed


def test_with_a_registry_the_spec_python_comes_from_python_slim(tmp_path, monkeypatch):
    from bashenv.images.build import build_base, build_task_image, image_tags
    from bashenv.images.recipes import load_recipe
    from bashenv.task import load_tasks

    env = _spec_table(tmp_path, monkeypatch)
    offline = load_recipe("python-bullseye")
    built_in = load_recipe("python-3.9-slim")
    assert built_in.from_image == "python:3.9-slim"
    made: list[str] = []
    with serve_registry(tmp_path / "store") as registry:
        stand_in = f"{registry}/python:3.9-slim"
        _docker("tag", build_base(offline)[0], stand_in)
        _docker("push", stand_in)
        _docker("rmi", stand_in)  # from now on only the registry has it
        recipes = tmp_path / "recipes"
        recipes.mkdir()
        (recipes / "python-3.9-slim.yaml").write_text(yaml.safe_dump(
            {**built_in.model_dump(mode="json", by_alias=True), "from": stand_in}))
        env["BASHENV_IMAGES"] = str(recipes)
        exact, off, printed = _imported(tmp_path, env, "--registry")
        assert exact["environment"]["base"] == "python-3.9-slim"
        assert off["environment"]["base"] == "python-3.10-slim"  # the exact version
        assert exact["metadata"]["python"] == "3.9" and off["metadata"]["python"] == "3.10"
        assert "spec asks for" not in printed

        monkeypatch.setenv("BASHENV_IMAGES", str(recipes))
        try:
            task = load_tasks(tmp_path / "registry" / EXACT)[0]
            made = list(image_tags(task))
            image, _ = build_task_image(task)
            pulled = json.loads(_docker("image", "inspect", stand_in))[0]["RepoDigests"]
            version = _docker("run", "--rm", "--network", "none", "--label",
                              f"bashenv={rid('swe-registry')}", image.tag, "python", "-c",
                              "import platform; print(platform.python_version())")
        finally:
            for tag in reversed(made):  # this test's own images (the registry's port is
                subprocess.run(["docker", "rmi", tag], capture_output=True)  # in their tags)
            subprocess.run(["docker", "rmi", stand_in], capture_output=True)
    assert pulled and pulled[0].startswith(f"{registry}/python@sha256:")
    assert version.strip().startswith(exact["metadata"]["python"] + ".")
