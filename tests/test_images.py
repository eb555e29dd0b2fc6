"""Images: offline base, cached task images, a one-commit repository without hidden tests."""

from __future__ import annotations

import time
import uuid

import git
import yaml
from typer.testing import CliRunner

from bashenv.cli import app
from bashenv.images import build_base, build_images, image_tags, load_recipe, prune_images
from bashenv.images.build import build_task_image
from bashenv.images.engine import client
from bashenv.sandbox import Container, SandboxSpec
from bashenv.sandbox.container import spec_for_task
from bashenv.task import Task, load_task, load_tasks

from .conftest import TASKS_DIR


def test_base_recipe_is_cached_by_hash():
    recipe = load_recipe("python-bookworm")
    tag, built = build_base(recipe)
    assert tag == recipe.tag and recipe.digest() in tag
    assert build_base(recipe) == (tag, False)


def test_unchanged_task_is_a_cache_hit(textkit, textkit_image):
    started = time.monotonic()
    image, built = build_task_image(textkit)
    assert built == 0 and image == textkit_image
    assert time.monotonic() - started < 5


def test_task_image_has_one_commit_no_remotes_and_no_hidden_tests(textkit, textkit_image):
    with Container(spec_for_task(textkit, textkit_image.tag, "agent")) as box:
        log = box.exec(["git", "log", "--all", "--format=%H"]).text.split()
        assert log == [textkit_image.base_sha]
        assert box.exec(["git", "remote"]).text == ""
        refs = box.exec(["git", "for-each-ref", "--format=%(refname)"]).text.split()
        assert refs == ["refs/heads/main"]
        assert box.exec(["git", "status", "--porcelain"]).text == ""
        hidden = "test_truncate_never_longer_than_width"
        found = box.exec(["grep", "-rl", hidden, "/", "--exclude-dir=proc", "--exclude-dir=sys"])
        assert found.exit_code == 1, found.text


def _two_commit_repo(path) -> tuple[str, str]:
    repo = git.Repo.init(path, initial_branch="main")
    (path / "mod.py").write_text("VALUE = 1\n")
    (path / "tests").mkdir()
    (path / "tests/test_mod.py").write_text("from mod import VALUE\n\ndef test_v():\n    assert VALUE\n")
    repo.index.add(["mod.py", "tests/test_mod.py"])
    first = repo.index.commit("first").hexsha
    (path / "mod.py").write_text("VALUE = 2  # FUTURE-FIX\n")
    repo.index.add(["mod.py"])
    second = repo.index.commit("the fix").hexsha
    return first, second


def test_git_url_source_at_old_commit_hides_the_future(tmp_path):
    """A file:// URL goes through the same clone path as a GitHub URL."""
    first, _ = _two_commit_repo(tmp_path / "upstream")
    spec = {
        "id": "two-commits", "repo": (tmp_path / "upstream").as_uri(), "base_commit": first,
        "problem_statement": "value should be 2",
        "tests": {"fail_to_pass": ["tests/test_mod.py::test_v"]},
    }
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(spec))
    task = load_task(tmp_path / "task.yaml")
    image, _ = build_task_image(task)
    try:
        with Container(spec_for_task(task, image.tag, "agent")) as box:
            assert box.exec(["cat", "mod.py"]).text == "VALUE = 1\n"
            assert box.exec(["git", "log", "--all", "--oneline"]).text.count("\n") == 1
            dig = "git cat-file --batch-all-objects --batch | grep -c FUTURE-FIX"
            assert box.exec(["sh", "-c", dig]).text.strip() == "0"
    finally:  # fresh commits give a new tag each run: do not pile images up
        client().images.remove(image.tag)


def test_python_packages_go_into_the_environment_layer(tmp_path):
    spec = {
        "id": "with-deps", "repo": ".", "problem_statement": "x",
        "environment": {"python_packages": ["six==1.16.0"], "setup": ["python -c 'import six'"]},
        "tests": {"fail_to_pass": ["tests/test_a.py::test_a"]},
    }
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(spec))
    (tmp_path / "x.py").write_text("")
    image, _ = build_task_image(load_task(tmp_path / "task.yaml"))
    with Container(SandboxSpec(image=image.tag)) as box:
        assert box.exec(["python", "-c", "import six; print(six.__version__)"]).text == "1.16.0\n"


def _throwaway_task(path, name: str) -> Task:
    (path / name).mkdir()
    (path / name / "mod.py").write_text(f"X = {uuid.uuid4().hex!r}\n")  # a new tag every run
    spec = {"id": name, "repo": name, "problem_statement": "x",
            "tests": {"fail_to_pass": ["tests/test_a.py::test_a"]}}
    (path / f"{name}.task.yaml").write_text(yaml.safe_dump(spec))
    return load_task(path / f"{name}.task.yaml")


def test_prune_removes_what_no_task_needs_but_not_images_in_use(tmp_path):
    bundled = load_tasks(TASKS_DIR)
    build_images(bundled)
    used, unused = (_throwaway_task(tmp_path, n) for n in ("prune-used", "prune-unused"))
    used_tag, unused_tag = build_task_image(used)[0].tag, build_task_image(unused)[0].tag
    with Container(SandboxSpec(image=used_tag)):
        removed = prune_images(bundled)
        assert unused_tag in removed and used_tag not in removed
    assert {t for task in bundled for t in image_tags(task)} <= {
        tag for image in client().images.list() for tag in image.tags}
    result = CliRunner().invoke(app, ["images", "prune", str(TASKS_DIR)])
    assert result.exit_code == 0 and used_tag in result.output, result.output
    assert not client().images.list(name=used_tag.split(":")[0])
