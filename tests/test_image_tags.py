"""Task image tags follow the task's content: any change that reaches the box gives a new tag."""

from __future__ import annotations

import uuid

import yaml

from bashenv.images import image_tags
from bashenv.images.build import build_task_image
from bashenv.images.specs import spec_for_task
from bashenv.sandbox import Container
from bashenv.sandbox.engine import client
from bashenv.task import Task, load_task

from .conftest import rid


def _task(root, **extra) -> Task:
    spec = {"id": f"tag-probe-{uuid.uuid4().hex[:8]}", "repo": "repo", "problem_statement": "x",
            "tests": {"fail_to_pass": ["tests/test_a.py::test_a"]}, **extra}
    (root / "task.yaml").write_text(yaml.safe_dump(spec))
    return load_task(root / "task.yaml")


def test_changing_one_repository_file_gives_a_new_tag_and_the_new_image_holds_it(tmp_path):
    (tmp_path / "repo/pkg").mkdir(parents=True)
    (tmp_path / "repo/pkg/mod.py").write_text("VALUE = 'first'\n")
    (tmp_path / "repo/README").write_text("unchanged\n")
    task = _task(tmp_path)
    first_tag = image_tags(task)[2]
    assert image_tags(task)[2] == first_tag  # the same content: the same tag
    built: list[str] = []
    try:
        image, _ = build_task_image(task)
        built.append(image.tag)
        assert image.tag == first_tag
        (tmp_path / "repo/pkg/mod.py").write_text("VALUE = 'second'\n")
        edited = load_task(tmp_path / "task.yaml")
        assert image_tags(edited)[:2] == image_tags(task)[:2]  # base and environment unchanged
        second_tag = image_tags(edited)[2]
        assert second_tag != first_tag
        image, count = build_task_image(edited)
        built.append(image.tag)
        assert image.tag == second_tag and count == 1  # only the task layer is rebuilt
        with Container(spec_for_task(edited, image.tag, "agent", rid("tags"))) as box:
            assert box.exec(["cat", "pkg/mod.py"]).text == "VALUE = 'second'\n"
            assert box.exec(["git", "status", "--porcelain"]).text == ""
    finally:
        for tag in built:  # only the images this test built
            client().images.remove(tag)


def test_task_fields_that_reach_the_image_change_the_tag(tmp_path):
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo/mod.py").write_text("X = 1\n")
    task = _task(tmp_path)
    base, env, tag = image_tags(task)
    changes = {
        "setup": task.model_copy(update={"environment": task.environment.model_copy(
            update={"setup": ["touch marker"]})}),
        "workdir": task.model_copy(update={"workdir": "/src"}),
    }
    for name, changed in changes.items():
        assert image_tags(changed)[2] != tag, name
    packages = task.model_copy(update={"environment": task.environment.model_copy(
        update={"python_packages": ["six==1.16.0"]})})
    assert image_tags(packages)[1] != env and image_tags(packages)[0] == base
    # What never enters the image (hidden tests, limits, the issue text) keeps the tag.
    same = task.model_copy(update={"problem_statement": "other words",
                                   "limits": task.limits.model_copy(update={"max_steps": 3})})
    assert image_tags(same) == (base, env, tag)
