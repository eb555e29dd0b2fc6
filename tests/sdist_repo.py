"""A one-commit repository made from a project's PyPI source distribution (which ships its
tests), with a small real bug put in: the base commit, the gold patch that takes the bug out,
and a test patch. For grading a project's own test runner end to end without GitHub.
The sdist and the repository are cached under $BASHENV_CACHE/fixtures (made at most once)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

GIT_ENV = {"GIT_AUTHOR_NAME": "bashenv", "GIT_AUTHOR_EMAIL": "bashenv@localhost",
           "GIT_COMMITTER_NAME": "bashenv", "GIT_COMMITTER_EMAIL": "bashenv@localhost",
           "GIT_AUTHOR_DATE": "2021-04-06T00:00:00Z", "GIT_COMMITTER_DATE": "2021-04-06T00:00:00Z"}


def fixtures_dir() -> Path:
    return Path(os.environ.get("BASHENV_CACHE", Path.home() / ".cache" / "bashenv")) / "fixtures"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout


def sdist_repository(project: str, version: str, name: str, repo: str, source: str,
                     bug: tuple[str, str], tests: str, add_test: Callable[[str], str],
                     prepare: Callable[[Path], None] | None = None) -> dict[str, str]:
    """{repos, base, gold, test_patch}: `repos` holds `repo` (OWNER__NAME.git, bare) whose one
    commit is `project`'s sdist with `bug` (old, new) put into `source`; the gold patch takes
    it out, the test patch is `add_test` applied to `tests`. `prepare` runs on the unpacked
    sdist before the commit."""
    folder = fixtures_dir()
    key = f"{project.lower()}-{version}"
    done = folder / f"{key}-{name}.json"
    if done.is_file() and Path(json.loads(done.read_text())["repos"]).is_dir():
        return json.loads(done.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    sdist = folder / f"{project}-{version}.tar.gz"
    if not sdist.is_file():
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary",
                        ":all:", f"{project}=={version}", "-d", str(folder)], check=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        with tarfile.open(sdist) as archive:
            archive.extractall(tmp, filter="data")
        work = Path(tmp) / f"{project}-{version}"
        if prepare:
            prepare(work)
        path = work / source
        code = path.read_text()
        assert code.count(bug[0]) == 1
        path.write_text(code.replace(*bug))
        git(work, "init", "-q")
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", f"{project} {version}, {name} bug")
        base = git(work, "rev-parse", "HEAD").strip()
        path.write_text(code)
        gold = git(work, "diff")
        git(work, "checkout", "-q", "--", source)
        test_file = work / tests
        test_file.write_text(add_test(test_file.read_text()))
        test_patch = git(work, "diff")
        repos = folder / f"{key}-repos"
        shutil.rmtree(repos, ignore_errors=True)
        git(work, "clone", "-q", "--bare", str(work), str(repos / repo))
    fixture = {"repos": str(repos), "base": base, "gold": gold, "test_patch": test_patch}
    done.write_text(json.dumps(fixture))
    return fixture


def import_sdist_instance(tmp: Path, fixture: dict[str, str], repo: str, instance_id: str,
                          version: str, problem: str, fail_to_pass: list[str],
                          pass_to_pass: list[str], created_at: str,
                          bashenv: Callable[..., subprocess.CompletedProcess],
                          env: dict[str, str]) -> None:
    """Writes the one SWE-bench instance of `fixture` (as the dataset spells it: test lists as
    JSON strings) to tmp/instances.json and imports it with `bashenv tasks import` into
    tmp/tasks, SWE-bench's own spec table (`env`) untouched."""
    instance = {
        "repo": repo, "instance_id": instance_id, "base_commit": fixture["base"],
        "environment_setup_commit": fixture["base"], "version": version,
        "problem_statement": problem, "hints_text": "", "patch": fixture["gold"],
        "test_patch": fixture["test_patch"], "FAIL_TO_PASS": json.dumps(fail_to_pass),
        "PASS_TO_PASS": json.dumps(pass_to_pass), "created_at": created_at,
    }
    (tmp / "instances.json").write_text(json.dumps([instance]))
    done = bashenv("tasks", "import", str(tmp / "instances.json"), "--repos", fixture["repos"],
                   "-o", str(tmp / "tasks"), env=env)
    assert done.returncode == 0, done.stdout + done.stderr


def validate_behaves(tmp: Path, instance_id: str, run_id: str,
                     bashenv: Callable[..., subprocess.CompletedProcess],
                     env: dict[str, str]) -> None:
    """`bashenv tasks validate` of tmp/tasks: the one instance behaves (no change is
    unresolved, the gold patch resolves)."""
    validated = bashenv("tasks", "validate", str(tmp / "tasks"), "--run-id", run_id,
                        "--report", str(tmp / "validate.json"), env=env)
    result = json.loads((tmp / "validate.json").read_text())
    assert validated.returncode == 0, (validated.stdout + validated.stderr)[-4000:]
    assert result["summary"]["behaves"] == [instance_id]
    assert result["tasks"][0]["before_gold"] == "unresolved"
    assert result["tasks"][0]["with_gold"] == "resolved"
