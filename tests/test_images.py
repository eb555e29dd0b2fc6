"""Images: offline base, cached task images, a one-commit repository without hidden tests."""

from __future__ import annotations

import contextlib
import time
import uuid

import docker.errors
import git
import yaml
from typer.testing import CliRunner

from bashenv.cli import app
from bashenv.images import build_base, image_tags, load_recipe, prune_images
from bashenv.images.build import build_task_image
from bashenv.images.specs import spec_for_task
from bashenv.sandbox import Container, SandboxSpec
from bashenv.sandbox.engine import client
from bashenv.task import Task, load_task, load_tasks

from .conftest import TASKS_DIR, rid


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


def _throwaway_version(path, task_id: str, version: int, env_marker: str) -> Task:
    """The throwaway task `task_id` at `version` (its repository edited: a new task tag),
    in an environment of its own (`env_marker`): every image it makes is this test's."""
    (path / "repo").mkdir(exist_ok=True)
    (path / "repo" / "mod.py").write_text(f"X = {version}\n")
    spec = {"id": task_id, "repo": "repo", "problem_statement": "x",
            "environment": {"env": {"BASHENV_PRUNE_TEST": env_marker}},
            "tests": {"fail_to_pass": ["tests/test_a.py::test_a"]}}
    (path / "task.yaml").write_text(yaml.safe_dump(spec))
    return load_task(path / "task.yaml")


def test_prune_removes_only_older_versions_of_its_own_tasks(tmp_path):
    """Only images of a throwaway task this test makes are ever removed: its older version;
    a version a container uses stays; the environment only that version built on goes once
    nothing builds on it; the current version, its environment, the base and every other
    image on the engine stay. A dry run removes nothing."""
    task_id, marker = f"prune-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    old_env, new_env = f"{marker}-a", f"{marker}-b"
    versions = [_throwaway_version(tmp_path, task_id, 1, old_env)]
    v1 = build_task_image(versions[0])[0].tag
    versions.append(_throwaway_version(tmp_path, task_id, 2, old_env))
    v2 = build_task_image(versions[1])[0].tag
    current = _throwaway_version(tmp_path, task_id, 3, new_env)
    v3 = build_task_image(current)[0].tag
    base, env_b, _ = image_tags(current)
    env_a = image_tags(versions[0])[1]
    ours = [v1, v2, v3, env_a, env_b]
    assert len(set(ours)) == 5
    api = client().api
    bundled_tags = {t for task in load_tasks(TASKS_DIR) for t in image_tags(task)}
    present = {t for i in api.images() for t in (i.get("RepoTags") or [])}
    try:
        with Container(SandboxSpec(image=v2, run_id=rid("prune"))):
            dry = prune_images([current], dry_run=True)
            assert dry.tags == [v1] and dry.removed[0].size > 0
            listed = CliRunner().invoke(app, ["images", "prune", str(tmp_path / "task.yaml"),
                                              "--dry-run"])
            assert listed.exit_code == 0 and v1 in listed.output and "MB" in listed.output
            assert _exists(v1)  # the dry runs removed nothing
            pruned = prune_images([current])
            assert pruned.tags == [v1]  # nothing else on the engine was touched
            kept = {image.tag: image.reason for image in pruned.kept}
            assert "in use" in kept[v2] and "build on it" in kept[env_a]
        again = CliRunner().invoke(app, ["images", "prune", str(tmp_path / "task.yaml")])
        assert again.exit_code == 0, again.output
        assert not _exists(v2) and not _exists(env_a)  # unused now: the old environment goes
        assert all(_exists(tag) for tag in (v3, env_b, base))
        assert all(_exists(tag) for tag in bundled_tags & present)  # other suites' images
    finally:
        for tag in ours:  # only this test's images, task images before their environments
            with contextlib.suppress(docker.errors.APIError):
                api.remove_image(tag)


def _exists(tag: str) -> bool:
    try:
        client().api.inspect_image(tag)
    except docker.errors.ImageNotFound:
        return False
    return True
