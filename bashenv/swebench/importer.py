"""SWE-bench instances → bashenv tasks: task directories on disk, or Task objects in memory.

A task directory holds task.yaml, issue.md, gold.patch and tests.patch; the instance's
other fields (repo, version, hints, the spec used) ride along under `metadata`, which is
what `bashenv tasks export` reads back.
"""

from __future__ import annotations

import json
import re
import shlex
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bashenv.errors import TaskError
from bashenv.swebench.instances import Instance, read_instances
from bashenv.swebench.specs import PYTEST_IDS, Spec, base_for, spec_for
from bashenv.task.loader import parse_task
from bashenv.task.model import Task
from bashenv.task.source import read_at

GITHUB = "https://github.com/{repo}.git"
TEST_TIMEOUT = 1800  # real suites are slower than the toy tasks; SWE-bench allows 30 min
DIFF_FILE = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.MULTILINE)


@dataclass
class ImportResult:
    written: list[Path] = field(default_factory=list)
    python_mismatch: dict[str, tuple[str, str]] = field(default_factory=dict)  # id → (spec, used)
    inferred: list[str] = field(default_factory=list)  # ids without a SWE-bench spec


def repo_source(inst: Instance, repos: Path | None) -> str:
    """`--repos DIR` holds OWNER__NAME.git (bare, shallow or partial); else GitHub."""
    if repos is None:
        return GITHUB.format(repo=inst.repo)
    path = (repos / (inst.repo.replace("/", "__") + ".git")).resolve()
    if not path.exists():
        path = path.with_suffix("")  # OWNER__NAME: a working clone is fine too
    if not path.exists():
        raise TaskError(f"instance {inst.instance_id}: no repository {repos}/"
                        f"{inst.repo.replace('/', '__')}.git for {inst.repo}")
    return str(path)


def test_targets(inst: Instance, test_cmd: str) -> list[str]:
    """What the test command runs, as SWE-bench does: the files the FAIL_TO_PASS and
    PASS_TO_PASS ids live in (pytest node ids); for runners whose ids name no file
    (Django, sympy) the test files the test patch touches."""
    ids = inst.fail_to_pass + inst.pass_to_pass
    node_ids = [t for t in ids if PYTEST_IDS.match(t)]
    # Mostly node ids: their files. (SWE-bench's pytest parser also lists fragments of odd
    # output lines, e.g. "[100%]", as ids; they name no file.)
    if node_ids and len(node_ids) * 2 >= len(ids):
        return sorted({t.split("::")[0] for t in node_ids})
    files = sorted({m.group(2) for m in DIFF_FILE.finditer(inst.test_patch)})
    if "runtests.py" in test_cmd:  # Django's runner takes dotted test modules
        return [f.removesuffix(".py").removeprefix("tests/").replace("/", ".")
                for f in files if f.endswith(".py")]
    return [f for f in files if f.endswith(".py")] or files


def _command(spec: Spec, targets: list[str]) -> str:
    cmd = spec.test_cmd
    # `python -m pytest`: the venv's pytest whichever base (Debian names the script pytest-3).
    cmd = re.sub(r"^pytest\b", "python -m pytest", cmd)
    return " ".join([cmd, *map(shlex.quote, targets)])


def task_data(inst: Instance, repos: Path | None, registry: bool = False,
              inline: bool = False) -> tuple[dict[str, Any], Spec, str]:
    """(task.yaml data, the spec, the Python used). `inline`: texts in the data, not files."""
    source = repo_source(inst, repos)
    spec = spec_for(inst, lambda commit, path: read_at(source, commit, path))
    base, python = base_for(spec.python, registry)
    # The export has no tags: setuptools_scm would call the project 0.1.dev1.
    scm = f"SETUPTOOLS_SCM_PRETEND_VERSION={shlex.quote(inst.version + '.0')} " \
        if re.match(r"^\d+(\.\d+)*$", inst.version) else ""
    text = (lambda value, name: value) if inline else (lambda value, name: {"file": name})
    data: dict[str, Any] = {
        "id": inst.instance_id,
        "repo": source,
        "base_commit": inst.base_commit,
        "problem_statement": text(inst.problem_statement, "issue.md"),
        # A current pip first: Debian's (20.3 on bullseye) lets the system site-packages into
        # build isolation, so an editable install of an old project picks up a build backend
        # (e.g. the newest setuptools_scm) that the system's packaging cannot load.
        "environment": {"base": base, "python_packages": ["pip>=23", *spec.pip_packages],
                        "setup": [scm + cmd for cmd in spec.install], "env": spec.env},
        "tests": {"fail_to_pass": inst.fail_to_pass, "pass_to_pass": inst.pass_to_pass,
                  "command": _command(spec, test_targets(inst, spec.test_cmd)),
                  "runner": f"swebench:{spec.log_parser or inst.repo}", "timeout": TEST_TIMEOUT},
        "metadata": {
            "source": "swebench", "repo": inst.repo, "version": inst.version,
            "environment_setup_commit": inst.environment_setup_commit,
            "created_at": inst.created_at, "spec": spec.source,
            "python_spec": spec.python, "python": python, "notes": spec.notes,
            # Plain fields, and an instance's own spec (install_config), for export.
            **{k: v for k, v in inst.extra.items()
               if isinstance(v, (str, int, float, bool)) or (k == "install_config" and v)},
        },
    }
    if spec.cpus:  # e.g. pylint's suite, given two cores by SWE-bench
        data["limits"] = {"cpus": spec.cpus}
    if inst.patch:
        data["gold_patch"] = text(inst.patch, "gold.patch")
    if inst.test_patch:
        data["tests"]["patch"] = text(inst.test_patch, "tests.patch")
    if not inst.fail_to_pass:
        raise TaskError(f"instance {inst.instance_id}: FAIL_TO_PASS is empty")
    return data, spec, python


def write_task(inst: Instance, outdir: Path, repos: Path | None, registry: bool) -> tuple[Path, Spec, str]:
    data, spec, python = task_data(inst, repos, registry)
    folder = outdir / inst.instance_id
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in (("issue.md", inst.problem_statement), ("gold.patch", inst.patch),
                          ("tests.patch", inst.test_patch)):
        if content:
            (folder / name).write_text(content, encoding="utf-8")
    header = (f"# Imported from SWE-bench instance {inst.instance_id} by `bashenv tasks import`."
              f"\n# Environment: {spec.source}; Python {python} (spec: {spec.python}).\n")
    (folder / "task.yaml").write_text(header + yaml.safe_dump(data, sort_keys=False,
                                                              allow_unicode=True, width=100))
    return folder, spec, python


def import_instances(path: str | Path, outdir: str | Path, repos: str | Path | None = None,
                     ids: list[str] | None = None, workers: int = 4,
                     registry: bool = False) -> ImportResult:
    """Write one task directory per instance under `outdir` (existing ones are rewritten)."""
    instances = read_instances(path, ids)
    out, repo_dir = Path(outdir), Path(repos) if repos else None
    result = ImportResult()
    with ThreadPoolExecutor(max(1, workers)) as pool:
        done = list(pool.map(lambda i: write_task(i, out, repo_dir, registry), instances))
    for inst, (folder, spec, python) in zip(instances, done, strict=True):
        result.written.append(folder)
        if python != spec.python:
            result.python_mismatch[inst.instance_id] = (spec.python, python)
        if spec.source == "inferred":
            result.inferred.append(inst.instance_id)
    return result


def instance_tasks(path: str | Path, repos: str | Path | None = None,
                   ids: list[str] | None = None, registry: bool = False) -> list[Task]:
    """The instances in `path` as Tasks, nothing written (the gym's `tasks=FILE, repos=DIR`)."""
    source = Path(path)
    tasks = []
    for inst in read_instances(source, ids):
        data, _, _ = task_data(inst, Path(repos) if repos else None, registry, inline=True)
        tasks.append(parse_task(json.loads(json.dumps(data)), source))
    return tasks


def is_instances_file(path: str | Path) -> bool:
    """An instances file rather than a task file: .jsonl / .json / .parquet."""
    return Path(path).suffix in (".jsonl", ".json", ".parquet") and Path(path).is_file()
