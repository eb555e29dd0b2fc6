"""SWE-bench interop without the engine: reading instances, the import, specs and bases,
log parsers on real runner logs, the patch-application fallback, export round trip and
the shape of the eval reports."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import git
import pytest

from bashenv.errors import TaskError
from bashenv.grading.apply import applied_with, apply_snippet
from bashenv.grading.parsers import PARSERS, PytestJUnit
from bashenv.swebench import specs
from bashenv.swebench.evaluate import Outcome, instance_report, read_predictions, run_report
from bashenv.swebench.export import export_tasks
from bashenv.swebench.importer import import_instances, instance_tasks
from bashenv.swebench.importer import test_targets as targets_of
from bashenv.swebench.instances import Instance, read_instances
from bashenv.swebench.log_parsers import parse_django, parse_pytest, parse_sympy
from bashenv.task import load_tasks

USES_ENGINE = False
SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "swebench-sample"
if not SAMPLE.is_dir():
    SAMPLE = Path("/work/shared/swebench-sample")
LOGS = Path(__file__).parent / "data" / "swebench_logs"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BASHENV_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("BASHENV_SWEBENCH_SPECS", raising=False)
    specs.swebench_constants.cache_clear()
    yield
    specs.swebench_constants.cache_clear()


def _sample() -> list[dict]:
    return json.loads((SAMPLE / "instances.json").read_text())


# --- reading instances -------------------------------------------------------------------

def test_json_list_and_jsonl_with_real_lists_read_the_same(tmp_path):
    records = _sample()[:3]
    as_lists = [{**r, "FAIL_TO_PASS": json.loads(r["FAIL_TO_PASS"]),
                 "PASS_TO_PASS": json.loads(r["PASS_TO_PASS"])} for r in records]
    (tmp_path / "i.jsonl").write_text("".join(json.dumps(r) + "\n" for r in as_lists))
    from_json = read_instances(SAMPLE / "instances.json", [r["instance_id"] for r in records])
    from_jsonl = read_instances(tmp_path / "i.jsonl")
    assert from_json == from_jsonl
    assert from_json[0].fail_to_pass == json.loads(records[0]["FAIL_TO_PASS"])


def test_bad_inputs_name_the_file_and_field(tmp_path):
    with pytest.raises(TaskError, match="no instance"):
        read_instances(SAMPLE / "instances.json", ["nope__nope-1"])
    (tmp_path / "bad.jsonl").write_text('{"instance_id": "a", "repo": "o/n"}\n')
    with pytest.raises(TaskError, match=r"bad.jsonl: instance a: missing field\(s\) base_commit"):
        read_instances(tmp_path / "bad.jsonl")
    (tmp_path / "x.parquet").write_bytes(b"PAR1")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(TaskError, match="parquet needs pyarrow"):
            read_instances(tmp_path / "x.parquet")


# --- import ------------------------------------------------------------------------------

def test_import_of_the_sample_is_fast_and_every_task_loads(tmp_path):
    started = time.monotonic()
    result = import_instances(SAMPLE / "instances.json", tmp_path / "out", SAMPLE / "repos")
    elapsed = time.monotonic() - started
    assert len(result.written) == 26 and elapsed <= 10
    tasks = {t.id: t for t in load_tasks(tmp_path / "out")}
    assert len(tasks) == 26
    for inst in read_instances(SAMPLE / "instances.json"):
        task = tasks[inst.instance_id]
        assert task.tests.fail_to_pass == inst.fail_to_pass
        assert task.gold_patch == inst.patch and task.tests.patch == inst.test_patch
        assert task.tests.runner == f"swebench:{inst.repo}"
        assert Path(task.repo).name == inst.repo.replace("/", "__") + ".git"
        # Only the files the graded ids live in, as SWE-bench runs them.
        files = {t.split("::")[0] for t in inst.fail_to_pass + inst.pass_to_pass if ".py" in t}
        assert task.tests.command.split()[4:] == sorted(files)  # python -m pytest -rA FILES
        assert task.metadata["python"] and task.metadata["repo"] == inst.repo


def test_without_specs_the_environment_is_inferred_and_says_so(tmp_path):
    result = import_instances(SAMPLE / "instances.json", tmp_path / "out", SAMPLE / "repos",
                              ids=["pallets__flask-4992"])
    assert result.inferred == ["pallets__flask-4992"]
    [task] = load_tasks(tmp_path / "out")
    assert task.metadata["spec"] == "inferred" and "no SWE-bench spec" in task.metadata["notes"][0]
    assert task.environment.base == "python-bookworm"  # a 2023 instance: Python 3.11


def test_missing_repository_is_named(tmp_path):
    with pytest.raises(TaskError, match="no repository .*pallets__flask.git"):
        import_instances(SAMPLE / "instances.json", tmp_path / "out", tmp_path,
                         ids=["pallets__flask-4992"])


def test_without_repos_the_github_url_is_used():
    [task] = instance_tasks(SAMPLE / "instances.json", ids=["psf__requests-2317"])
    assert task.repo == "https://github.com/psf/requests.git"
    assert task.problem_statement.startswith(_sample_by_id("psf__requests-2317")["problem_statement"][:40])


def _sample_by_id(iid: str) -> dict:
    return next(r for r in _sample() if r["instance_id"] == iid)


def test_swebench_specs_are_read_from_its_constants_file(tmp_path, monkeypatch):
    """The spec table comes from SWE-bench's own file (here a stand-in of its shape)."""
    (tmp_path / "python.py").write_text(
        "MAP_REPO_VERSION_TO_SPECS_PY = {'pallets/flask': {'2.3': {\n"
        "  'python': '3.11', 'packages': 'requirements.txt', 'pip_packages': ['Werkzeug==2.3.7'],\n"
        "  'install': 'python -m pip install -e .', 'test_cmd': 'pytest -rA',\n"
        "  'pre_install': ['conda install -y foo'],\n"
        "  'eval_commands': ['export LANG=C.UTF-8', 'locale-gen']}}}\n")
    monkeypatch.setenv("BASHENV_SWEBENCH_SPECS", str(tmp_path / "python.py"))
    specs.swebench_constants.cache_clear()
    [task] = instance_tasks(SAMPLE / "instances.json", SAMPLE / "repos", ids=["pallets__flask-4992"])
    env = task.environment
    assert env.python_packages == ["pip>=23", "Werkzeug==2.3.7"] and env.env == {"LANG": "C.UTF-8"}
    assert env.setup == ["SETUPTOOLS_SCM_PRETEND_VERSION=2.3.0 python -m pip install -e ."]
    notes = " ".join(task.metadata["notes"])
    assert "conda step skipped" in notes and "locale-gen" in notes and "requirements.txt" in notes
    # A version the table lacks falls back to the inference, saying why.
    [other] = instance_tasks(SAMPLE / "instances.json", SAMPLE / "repos", ids=["psf__requests-2317"])
    assert other.metadata["spec"] == "inferred" and "has no spec" in other.metadata["notes"][0]


@pytest.mark.parametrize(("python", "registry", "base", "used"), [
    ("3.6", False, "python-bullseye", "3.9"), ("3.9", False, "python-bullseye", "3.9"),
    ("3.10", False, "python-bookworm", "3.11"), ("3.11", False, "python-bookworm", "3.11"),
    ("3.12", False, "python-trixie", "3.13"), ("3.14", False, "python-trixie", "3.13"),
    ("3.9", True, "python-3.9-slim", "3.9"), ("3.6", True, "python-bullseye", "3.9"),
])
def test_python_versions_map_onto_buildable_bases(python, registry, base, used):
    assert specs.base_for(python, registry) == (base, used)


def test_targets_for_runners_without_file_ids():
    patch = ("diff --git a/tests/queries/tests.py b/tests/queries/tests.py\n--- a\n+++ b\n"
             "diff --git a/sympy/core/tests/test_basic.py b/sympy/core/tests/test_basic.py\n")
    inst = Instance("d-1", "django/django", "a" * 40, "x", ["test_x (queries.tests.T)"], [],
                    test_patch=patch)
    assert targets_of(inst, "./tests/runtests.py --verbosity 2") == \
        ["sympy.core.tests.test_basic", "queries.tests"]
    assert targets_of(inst, "bin/test -C --verbose") == \
        ["sympy/core/tests/test_basic.py", "tests/queries/tests.py"]


# --- log parsers on real logs -------------------------------------------------------------

def test_pytest_rA_log():
    found = parse_pytest((LOGS / "pytest-rA.log").read_text())
    assert found["test_demo.py::test_passes"] == "PASSED"
    assert found["test_demo.py::test_fails"] == "FAILED"
    assert found["test_demo.py::test_errors"] == "ERROR"
    assert found["test_demo.py::test_xfails"] == "XFAIL"
    # SWE-bench splits on whitespace: an id with a space is cut there, in its datasets too.
    assert found["test_demo.py::test_param[a"] == "PASSED"


def test_django_runtests_log():
    found = parse_django((LOGS / "django-4.2.16-runtests-basic.log").read_text())
    name = "test_{0}_on_purpose (basic.tests.BashenvOnPurposeTests.test_{0}_on_purpose)"
    assert found[name.format("fails")] == "FAILED" and found[name.format("errors")] == "ERROR"
    assert found[name.format("skipped")] == "SKIPPED"
    # As SWE-bench reads Django: an expected failure is not recorded; a FAIL:/ERROR: header
    # adds the test's first word as an id of its own.
    assert name.format("expected_failure") not in found
    assert found["test_fails_on_purpose"] == "FAILED"
    prints = "test_prints_then_passes (basic.tests.BashenvOnPurposeTests.test_prints_then_passes)"
    assert found[prints] == "PASSED"  # its `ok` came on a line after the test's output
    assert len(found) == 67 and sum(s == "PASSED" for s in found.values()) == 60  # "Ran 66 tests"


def test_sympy_bin_test_log():
    found = parse_sympy((LOGS / "sympy-1.12-bin-test-verbose.log").read_text())
    assert found["test_bashenv_fails_on_purpose"] == "FAILED"
    # As SWE-bench reads sympy: the last test of a file (`E  [FAIL]`, `ok  [OK]`) is not
    # recorded by its line; a failure's header is, as `path.py:name`.
    assert found["sympy/core/tests/test_singleton.py:test_bashenv_errors_on_purpose"] == "FAILED"
    assert "test_bashenv_errors_on_purpose" not in found and "test_ibasic" not in found
    assert sum(s == "PASSED" for s in found.values()) == 5  # "6 passed" less test_ibasic


def test_parsers_registered_by_name_grade_with_swebench_meaning():
    log = (LOGS / "django-4.2.16-runtests-basic.log").read_bytes()
    parser = PARSERS["swebench:django/django"]
    xfail = ("test_expected_failure_on_purpose "
             "(basic.tests.BashenvOnPurposeTests.test_expected_failure_on_purpose)")
    got = parser.parse(log, [xfail, "test_nothing (x.Y)"])
    assert got == {xfail: "missing", "test_nothing (x.Y)": "missing"}  # SWE-bench: not recorded
    assert parser.verify(log, 1, "") is None
    assert "summary says: FAILED" in parser.verify(log, 0, "")  # yet it exited 0
    assert "without the runner's summary" in parser.verify(b"PASSED a.py::t\n", 0, "")
    # pytest's own suite prints inner sessions' results; the outer (last) summary decides.
    inner = (b"FAILED test_x.py::t\n=== 1 failed in 0.1s ===\n"
             b"PASSED a.py::t\n=== 1 passed in 3.29 seconds ===\n")
    assert PARSERS["swebench:pytest-dev/pytest"].verify(inner, 0, "") is None
    assert PARSERS["swebench:pytest-dev/pytest"].parse(inner, ["a.py::t"]) == {"a.py::t": "passed"}
    assert isinstance(PARSERS["pytest-junit"], PytestJUnit)
    assert PARSERS["swebench:some/other"].log_parser is parse_pytest  # most projects: pytest -rA
    # The task's own command runs as it is, its output teed into the report; the grader adds
    # no plugin arguments to it (the rewarder reads runs_pytest), and says so in the verdict.
    base = "./tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1 x.y"
    assert parser.command(base, "/out/r") == f"set -o pipefail; {base} 2>&1 | tee /out/r"
    assert not parser.runs_pytest and not PARSERS["swebench:a/b"].runs_pytest
    with pytest.raises(KeyError, match="no test-report parser"):
        PARSERS["nosuchmodule:f"]


# --- the patch-application fallback -------------------------------------------------------

def _seeded_repo(tmp_path: Path) -> tuple[Path, Path]:
    seed, work = tmp_path / "seed", tmp_path / "work"
    repo = git.Repo.init(seed)
    (seed / "a.py").write_text("".join(f"line {i}\n" for i in range(1, 30)))
    repo.index.add(["a.py"])
    repo.index.commit("base")
    shutil.copytree(seed, work)
    return seed, work


def _apply(tmp_path: Path, work: Path, seed: Path, patch: str) -> subprocess.CompletedProcess:
    (tmp_path / "p.diff").write_text(patch)
    script = apply_snippet(str(tmp_path / "p.diff"), "git", str(seed), 90)
    return subprocess.run(["bash", "-c", script], cwd=work, capture_output=True, text=True)


def test_clean_patch_uses_git_apply(tmp_path):
    seed, work = _seeded_repo(tmp_path)
    patch = "--- a/a.py\n+++ b/a.py\n@@ -1,3 +1,3 @@\n line 1\n-line 2\n+LINE 2\n line 3\n"
    done = _apply(tmp_path, work, seed, patch)
    assert done.returncode == 0 and applied_with(done.stdout) == "git apply"
    assert "LINE 2" in (work / "a.py").read_text()


def test_patch_with_wrong_line_numbers_and_stale_context_falls_back_to_patch_fuzz(tmp_path):
    seed, work = _seeded_repo(tmp_path)
    # Context off by a line (a model's hand-written hunk): git refuses, patch --fuzz takes it.
    patch = ("--- a/a.py\n+++ b/a.py\n@@ -10,7 +10,7 @@\n line 9\n line 10\n line 11\n"
             "-line 12\n+LINE 12\n line 13\n line 14\n line 99\n")
    done = _apply(tmp_path, work, seed, patch)
    assert done.returncode == 0 and applied_with(done.stdout) == "patch --fuzz=5"
    assert "LINE 12" in (work / "a.py").read_text()
    assert not list(work.glob("*.rej"))  # the failed --reject attempt left nothing behind


def test_unappliable_patch_exits_with_the_failure_code(tmp_path):
    seed, work = _seeded_repo(tmp_path)
    done = _apply(tmp_path, work, seed, "--- a/nope.py\n+++ b/nope.py\n@@ -1 +1 @@\n-x\n+y\n")
    assert done.returncode == 90 and applied_with(done.stdout) == "failed"
    assert (work / "a.py").read_text() == (seed / "a.py").read_text()


def test_empty_patch_applies_nothing(tmp_path):
    seed, work = _seeded_repo(tmp_path)
    done = _apply(tmp_path, work, seed, "")
    assert done.returncode == 0 and applied_with(done.stdout) is None


# --- export ------------------------------------------------------------------------------

def test_export_round_trips_with_import(tmp_path):
    ids = ["pallets__flask-4992", "psf__requests-2317", "pytest-dev__pytest-7168"]
    import_instances(SAMPLE / "instances.json", tmp_path / "out", SAMPLE / "repos", ids=ids)
    assert export_tasks(load_tasks(tmp_path / "out"), tmp_path / "back.jsonl") == 3
    back = {r["instance_id"]: r for r in map(json.loads, (tmp_path / "back.jsonl").open())}
    for iid in ids:
        original = _sample_by_id(iid)
        for key in ("repo", "base_commit", "patch", "test_patch", "problem_statement", "version",
                    "environment_setup_commit", "created_at", "hints_text"):
            assert back[iid][key] == original[key], (iid, key)
        assert json.loads(back[iid]["FAIL_TO_PASS"]) == json.loads(original["FAIL_TO_PASS"])
        assert json.loads(back[iid]["PASS_TO_PASS"]) == json.loads(original["PASS_TO_PASS"])
    # ... and the exported file imports again into the same tasks.
    again = {t.id: t for t in instance_tasks(tmp_path / "back.jsonl", SAMPLE / "repos")}
    first = {t.id: t for t in load_tasks(tmp_path / "out")}
    assert {i: t.tests for i, t in again.items()} == {i: t.tests for i, t in first.items()}


def test_bundled_task_exports_with_its_test_files_as_a_patch(tmp_path):
    from bashenv.bundled import bundled_dir

    tasks = load_tasks(bundled_dir("tasks"))
    export_tasks(tasks, tmp_path / "b.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "b.jsonl").open()]
    assert len(rows) == len(tasks) and all(len(r["base_commit"]) == 40 for r in rows)
    assert all(r["test_patch"].startswith("diff --git") for r in rows)


# --- eval reports ------------------------------------------------------------------------

def test_predictions_and_report_shapes(tmp_path):
    (tmp_path / "p.jsonl").write_text(
        json.dumps({"instance_id": "a", "model_name_or_path": "m", "model_patch": "diff"}) + "\n"
        + json.dumps({"instance_id": "b", "model_name_or_path": "m", "model_patch": None}) + "\n")
    preds = read_predictions(tmp_path / "p.jsonl")
    assert set(preds) == {"a", "b"}
    tasks = instance_tasks(SAMPLE / "instances.json", SAMPLE / "repos",
                           ids=["pallets__flask-4992", "psf__requests-2317", "pytest-dev__pytest-7168"])
    ids = [t.id for t in tasks]
    preds = {ids[0]: {"model_patch": "d"}, ids[1]: {"model_patch": ""}, "unknown": {}}
    verdict = {"outcome": "resolved", "apply_method": "git apply",
               "fail_to_pass": {"t1": "passed"}, "pass_to_pass": {"t2": "passed", "t3": "failed"}}
    outcomes = [Outcome(ids[0], "resolved", verdict), Outcome(ids[1], "empty_patch", {})]
    report = run_report(tasks, preds, outcomes)
    assert report["total_instances"] == 3 and report["submitted_instances"] == 2
    assert report["completed_ids"] == [ids[0]] and report["resolved_ids"] == [ids[0]]
    assert report["empty_patch_ids"] == [ids[1]] and report["incomplete_ids"] == [ids[2]]
    for key in ("completed", "resolved", "unresolved", "empty_patch", "error"):
        assert f"{key}_instances" in report and f"{key}_ids" in report
    per = instance_report(tasks[0], "d", verdict)[ids[0]]
    assert per["patch_successfully_applied"] and per["resolved"] and not per["patch_is_None"]
    assert per["tests_status"]["PASS_TO_PASS"] == {"success": ["t2"], "failure": ["t3"]}
    assert set(per["tests_status"]) == {"FAIL_TO_PASS", "PASS_TO_PASS", "FAIL_TO_FAIL", "PASS_TO_FAIL"}


def test_requirements_files_are_read_at_the_setup_commit_as_swebench_does(tmp_path, monkeypatch):
    """`packages: requirements.txt`: the repo's requirement file (its `-r` includes inlined,
    `-e .` and comments dropped) at the environment setup commit; the spec's pins win."""
    repo = git.Repo.init(tmp_path / "owner__proj")
    (tmp_path / "owner__proj" / "requirements").mkdir()
    (tmp_path / "owner__proj" / "requirements" / "dev.txt").write_text(
        "-r tests.txt\n-e .\n# a comment\nclick==8.0.1    # via flask\n")
    (tmp_path / "owner__proj" / "requirements" / "tests.txt").write_text("pytest==6.2.5\n")
    repo.index.add(["requirements/dev.txt", "requirements/tests.txt"])
    sha = repo.index.commit("reqs").hexsha
    (tmp_path / "python.py").write_text(
        "MAP_REPO_TO_REQS_PATHS = {'owner/proj': ['requirements/dev.txt']}\n"
        "MAP_REPO_VERSION_TO_SPECS_PY = {'owner/proj': {'1.0': {'python': '3.9',\n"
        "  'packages': 'requirements.txt', 'pip_packages': ['Click==8.1.3'],\n"
        "  'install': 'python -m pip install -e .', 'test_cmd': 'pytest -rA'}}}\n")
    monkeypatch.setenv("BASHENV_SWEBENCH_SPECS", str(tmp_path / "python.py"))
    specs.swebench_constants.cache_clear()
    record = {"repo": "owner/proj", "instance_id": "owner__proj-1", "base_commit": sha,
              "environment_setup_commit": sha, "version": "1.0", "problem_statement": "x",
              "FAIL_TO_PASS": ["tests/test_a.py::test_a"]}
    (tmp_path / "i.jsonl").write_text(json.dumps(record) + "\n")
    [task] = instance_tasks(tmp_path / "i.jsonl", tmp_path)
    assert task.environment.python_packages == ["pip>=23", "pytest==6.2.5", "Click==8.1.3"]
    assert "requirements from requirements/dev.txt" in task.metadata["notes"][0]


@pytest.mark.parametrize("outcome, status", [
    ("resolved", "resolved"), ("unresolved", "unresolved"), ("timeout", "unresolved"),
    ("tampered", "unresolved"),  # the patch's doing: graded, not a harness error
    ("patch_failed", "error"), ("error", "error"), ("empty_patch", "empty_patch")])
def test_verdict_outcomes_map_to_swebench_report_lists(outcome, status):
    from bashenv.swebench.evaluate import status_of

    assert status_of({"outcome": outcome}) == status


def test_compiled_requirements_get_build_tools_only_when_pip_fails(tmp_path):
    from bashenv.images.native import build_packages, pip_install_step, project_name

    assert project_name("pylibmc; sys.platform != 'win32'") == "pylibmc"
    assert project_name("Py_YAML[extra]>=5") == "py-yaml"
    got = build_packages(["pylibmc; sys.platform != 'win32'", "Pillow >=4.2.0, != 5.4.0", "six"])
    assert got == ["build-essential", "pkg-config", "libjpeg-dev", "libmemcached-dev", "zlib1g-dev"]
    # The step as a shell runs it: a pip that fails once makes it install, then pip again;
    # a requirement on pip itself goes first, alone.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("pip", "apt-get"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {tmp_path}/calls\n'
                                    f'[ {tool} = pip ] && [ ! -e {tmp_path}/apt ] && '
                                    f'case "$*" in *six*) exit 1;; esac\n'
                                    f'[ {tool} = apt-get ] && touch {tmp_path}/apt\nexit 0\n')
        (bin_dir / tool).chmod(0o755)
    step = pip_install_step(["pip>=23", "six"], "X=1 ", upgrade=True).replace(
        "rm -rf /var/lib/apt/lists/*", "true")
    subprocess.run(["sh", "-c", step], check=True, env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    calls = (tmp_path / "calls").read_text().splitlines()
    # --upgrade: a bare requirement gets pip's choice, not the base's Debian copy.
    assert calls[0] == "pip install --no-cache-dir --upgrade pip>=23"
    assert calls[1] == "pip install --no-cache-dir --upgrade six"  # fails: no compiler
    assert calls[2] == "apt-get update -qq"
    assert calls[3].startswith("apt-get install -y -qq --no-install-recommends build-essential")
    assert calls[4:] == [calls[0], calls[1]]
