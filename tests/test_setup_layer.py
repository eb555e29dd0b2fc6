"""The environment layer prepares a project's build wheels and dependencies: the task's
`pip install -e .` then runs without the package index, and falls back to it when that
fails (setup_layer.py). A tiny local project, the real engine."""

from __future__ import annotations

import contextlib
import logging
import uuid

import docker.errors
import pytest
import yaml

from bashenv.images import image_tags
from bashenv.images.build import build_task_image
from bashenv.images.setup_layer import _setup_py_requirements, setup_extras
from bashenv.images.specs import spec_for_task
from bashenv.sandbox import Container, SandboxSpec
from bashenv.sandbox.engine import client
from bashenv.task import Task, load_task

from .conftest import rid

FALLBACK = "setup without the package index failed; again with it"


def _project(root, marker: str, dependencies: str = '["six"]') -> None:
    """A setuptools project with a build requirement and one runtime dependency; `marker`
    makes its packaging files (and so its environment image) this test's own."""
    (root / "tinypkg").mkdir(parents=True, exist_ok=True)
    (root / "tinypkg/__init__.py").write_text("VALUE = 1\n")
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "tinypkg"\nversion = "0.1"\ndescription = "{marker}"\n'
        f"dependencies = {dependencies}\n"
        '[tool.setuptools]\npackages = ["tinypkg"]\n')


def _task(root, setup: list[str]) -> Task:
    spec = {"id": f"setup-probe-{uuid.uuid4().hex[:8]}", "repo": "repo", "problem_statement": "x",
            "environment": {"setup": setup},
            "tests": {"fail_to_pass": ["tests/test_a.py::test_a"]}}
    (root / "task.yaml").write_text(yaml.safe_dump(spec))
    return load_task(root / "task.yaml")


@pytest.fixture
def built():
    """Removes the images a test built (task images before their environment)."""
    tags: list[str] = []
    yield tags
    for tag in reversed(tags):
        with contextlib.suppress(docker.errors.APIError):
            client().api.remove_image(tag)


def test_setup_installs_the_project_without_the_index_and_falls_back_to_it(
        tmp_path, caplog, built):
    caplog.set_level(logging.DEBUG, logger="bashenv.images")
    _project(tmp_path / "repo", uuid.uuid4().hex)
    offline = _task(tmp_path, ["python -m pip install -e ."])
    _, env_tag, _ = image_tags(offline)
    image, count = build_task_image(offline)
    built += [env_tag, image.tag]
    assert count == 2  # this project's own environment, then the task
    log = caplog.text
    assert "build wheel(s) prepared; the project adds: six==" in log
    assert FALLBACK not in log
    setup_layer = client().api.history(image.tag)[1]  # under the labels
    assert "setup.sh" in setup_layer["CreatedBy"] and setup_layer["Size"] < 100_000, setup_layer
    with Container(SandboxSpec(image=env_tag, run_id=rid("setup-layer"))) as env:
        wheels = env.exec(["ls", "/opt/bashenv/setup/deps/wheelhouse"]).text
        assert "setuptools-" in wheels, wheels
        assert env.exec(["python", "-c", "import six"]).exit_code == 0  # in the environment
    with Container(spec_for_task(offline, image.tag, "agent", rid("setup-layer"))) as box:
        where = box.exec(["python", "-c", "import tinypkg, six; print(tinypkg.__file__)"])
        assert where.text.strip() == "/repo/tinypkg/__init__.py"  # editable, at the workdir

    # A command the wheelhouse cannot serve (a version of six it does not hold): the same
    # environment, and the setup runs again with the index.
    caplog.clear()
    fallback = _task(tmp_path, ["python -m pip install -e . && python -m pip install six==1.15.0"])
    assert image_tags(fallback)[1] == env_tag
    image, count = build_task_image(fallback)
    built.append(image.tag)
    assert count == 1 and FALLBACK in caplog.text
    with Container(spec_for_task(fallback, image.tag, "agent", rid("setup-layer"))) as box:
        version = box.exec(["python", "-c", "import six, tinypkg; print(six.__version__)"])
        assert version.text.strip() == "1.15.0"


def test_environment_tag_follows_the_packaging_files(tmp_path):
    marker = uuid.uuid4().hex
    _project(tmp_path / "repo", marker)
    task = _task(tmp_path, ["python -m pip install -e ."])
    env = image_tags(task)[1]
    (tmp_path / "repo/tinypkg/__init__.py").write_text("VALUE = 2\n")
    assert image_tags(load_task(tmp_path / "task.yaml"))[1] == env  # code is not packaging
    _project(tmp_path / "repo", marker, dependencies='["six", "tomli-w"]')
    more = image_tags(load_task(tmp_path / "task.yaml"))[1]
    assert more != env  # a new dependency
    assert image_tags(_task(tmp_path, []))[1] not in (env, more)  # no setup: nothing prepared


def test_declared_requirements_of_setup_py_and_setup_extras():
    setup_py = (
        "from setuptools import setup\n"
        "REQS = ['py>=1.5', 'wcwidth']\n"
        "setup(name='x', install_requires=REQS,\n"
        "      extras_require={'testing': ['mock'], 'docs': ['sphinx']})\n"
    )
    assert _setup_py_requirements(setup_py, ["testing"]) == ["py>=1.5", "wcwidth", "mock"]
    assert _setup_py_requirements("setup(install_requires=compute())", []) == []
    assert _setup_py_requirements("not python (", []) == []
    assert setup_extras(["pip install -e .[test]", "pip install '.[docs,test]'"]) == "[docs,test]"
    assert setup_extras(["python -m pip install -e ."]) == ""
