"""Repository sources at scale: only the commit a task needs is fetched, into one cache per
source; bare, shallow and refs-less read-only copies serve; the export has one commit."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import git
import pytest

from bashenv.task.model import Task
from bashenv.task.source import export_base_repo, resolve_commit

USES_ENGINE = False  # git only


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BASHENV_CACHE", str(tmp_path / "cache"))


def _upstream(path: Path) -> list[str]:
    """Three commits; the third holds a 'future' fix no task may see."""
    repo = git.Repo.init(path, initial_branch="main")
    shas = []
    for i, text in enumerate(["VALUE = 1\n", "VALUE = 2\n", "VALUE = 3  # FUTURE-FIX\n"]):
        (path / "mod.py").write_text(text)
        (path / f"f{i}.txt").write_text(f"file {i}\n")
        repo.index.add(["mod.py", f"f{i}.txt"])
        shas.append(repo.index.commit(f"c{i}").hexsha)
    return shas


def _task(repo: str, commit: str) -> Task:
    return Task.model_validate({"id": "t", "repo": repo, "base_commit": commit,
                                "problem_statement": "x", "tests": {"fail_to_pass": ["a.py::t"]}})


def _commits_in(cache: Path) -> int:
    out = subprocess.run(["git", "-C", str(cache), "cat-file", "--batch-all-objects",
                          "--batch-check"], capture_output=True, text=True, check=True).stdout
    return sum(1 for line in out.splitlines() if line.split()[1] == "commit")


def _cache_repos(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "git").glob("*.git"))


def test_only_the_needed_commit_is_fetched_and_one_cache_serves_many(tmp_path):
    shas = _upstream(tmp_path / "up")
    url = (tmp_path / "up").as_uri()
    assert resolve_commit(_task(url, shas[0])) == (url, shas[0])
    [cache] = _cache_repos(tmp_path)
    assert _commits_in(cache) == 1  # not the history: one commit, depth 1
    blobs = subprocess.run(["git", "-C", str(cache), "cat-file", "--batch-all-objects", "--batch"],
                           capture_output=True, check=True).stdout
    assert b"FUTURE-FIX" not in blobs
    assert resolve_commit(_task(url, shas[1]))[1] == shas[1]
    assert _cache_repos(tmp_path) == [cache]  # the same cache for a second instance
    assert _commits_in(cache) == 2


def test_export_is_one_commit_without_remotes_or_future(tmp_path):
    shas = _upstream(tmp_path / "up")
    dest = tmp_path / "out"
    new_sha = export_base_repo(_task(str(tmp_path / "up"), shas[1]), dest)
    repo = git.Repo(dest)
    assert repo.head.commit.hexsha == new_sha
    assert len(list(repo.iter_commits("--all"))) == 1 and not repo.remotes
    assert (dest / "mod.py").read_text() == "VALUE = 2\n" and not (dest / "f2.txt").exists()


def test_shallow_bare_copy_without_refs_dir_serves_by_sha(tmp_path):
    """The sample's repositories: bare, shallow, read-only, copied without the empty refs/
    (git refuses to open such a directory as it is)."""
    shas = _upstream(tmp_path / "up")
    shallow = tmp_path / "shallow.git"
    subprocess.run(["git", "clone", "-q", "--bare", "--depth=1", "--no-local",
                    (tmp_path / "up").as_uri(), str(shallow)], check=True)
    subprocess.run(["git", "-C", str(shallow), "pack-refs", "--all"], check=True)
    shutil.rmtree(shallow / "refs")
    subprocess.run(["chmod", "-R", "a-w", str(shallow)], check=True)
    try:
        dest = tmp_path / "out"
        export_base_repo(_task(str(shallow), shas[2]), dest)
        assert "FUTURE-FIX" in (dest / "mod.py").read_text()
        with pytest.raises(Exception, match="is not a commit"):
            resolve_commit(_task(str(shallow), shas[0]))  # not in the shallow copy
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(shallow)], check=True)


def test_branch_names_and_head_still_resolve(tmp_path):
    shas = _upstream(tmp_path / "up")
    url = (tmp_path / "up").as_uri()
    assert resolve_commit(_task(url, "HEAD"))[1] == shas[2]
    assert resolve_commit(_task(url, "HEAD~2"))[1] == shas[0]
    assert resolve_commit(_task(url, "main"))[1] == shas[2]


def test_unreachable_source_names_the_field(tmp_path):
    with pytest.raises(Exception, match="field 'repo': cannot fetch from"):
        resolve_commit(_task((tmp_path / "nothing.git").as_uri(), "a" * 40))
