"""Images: offline base, cached task images, a one-commit repository without hidden tests."""

from __future__ import annotations

import time

import git
import yaml

from bashenv.images import build_base, load_recipe
from bashenv.images.build import build_task_image
from bashenv.images.engine import client
from bashenv.sandbox import Container, SandboxSpec
from bashenv.sandbox.container import spec_for_task
from bashenv.task import load_task


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
