"""Environments for SWE-bench instances: SWE-bench's own per-repo/per-version specs when
available, else an inference from the instance; Python versions mapped onto bases.

Decision: bashenv never carries a copy of SWE-bench's spec table. It reads
`MAP_REPO_VERSION_TO_SPECS_PY` from the `swebench` package (4.x; the optional extra
`bashenv[swebench]`, or just `pip install --no-deps swebench==4.1.0`: only the constants
file is read, by path, so the package's heavy dependencies are not needed), or from a file
named by $BASHENV_SWEBENCH_SPECS (that `constants/python.py`, or a swebench wheel/sdist).
Without either, `infer_spec` makes a spec from the instance alone and says so in the task.
An instance's own spec (`install_config`, as SWE-rebench / SWE-bench-extra carry one, with
`reqs_path`, `env_yml_path`, `env_vars` and `log_parser` besides SWE-bench's keys) wins.

What SWE-bench does with conda, bashenv does with pip in a venv (bashenv.swebench.conda):
`packages` and environment.yml become pip requirements, conda-only packages are noted.
`nano_cpus` becomes the task's CPU quota; `execute_test_as_nonroot` needs nothing (tests
always run as the unprivileged agent user); `no_use_env` only chooses between two conda
commands, so it has no counterpart.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import importlib.util
import os
import re
import runpy
import shlex
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bashenv.cache import cache_dir
from bashenv.errors import TaskError
from bashenv.images.recipes import load_recipe
from bashenv.sandbox.spec import SEED_DIR
from bashenv.swebench.conda import Converted, from_environment_yml, from_packages
from bashenv.swebench.instances import Instance

SPEC_FILES = ("swebench/harness/constants/python.py", "swebench/harness/constants.py")
TEST_SPEC_FILE = "swebench/harness/test_spec/python.py"
SPEC_NAMES = ("MAP_REPO_VERSION_TO_SPECS_PY", "MAP_REPO_VERSION_TO_SPECS")
# Offline bases (debootstrap) and their Python: the oldest one at least as new as the
# spec's version is used, else the newest.
OFFLINE_BASES = (((3, 9), "python-bullseye"), ((3, 11), "python-bookworm"),
                 ((3, 13), "python-trixie"))
PYTEST_IDS = re.compile(r"^[^\s:]+\.py(::|$)")


@dataclass
class Spec:
    """What an environment needs, as SWE-bench's specs say it (or as inferred)."""

    python: str
    pip_packages: list[str] = field(default_factory=list)
    install: list[str] = field(default_factory=list)
    test_cmd: str = "pytest -rA"
    env: dict[str, str] = field(default_factory=dict)
    source: str = "inferred"  # "swebench <where>" or "inferred"
    # SWE-bench's log parser by function name (e.g. "parse_log_pytest_v2") when the spec
    # names one (an instance's own install_config); None: the repository's parser.
    log_parser: str | None = None
    cpus: float | None = None  # the CPU quota the spec asks for (SWE-bench's nano_cpus)
    notes: list[str] = field(default_factory=list)


def archive_member(path: Path, names: tuple[str, ...]) -> bytes | None:
    """The first of `names` (paths inside the package) in a swebench wheel or sdist (one top
    folder), or None; an unreadable archive is an error naming $BASHENV_SWEBENCH_SPECS."""
    try:
        if path.suffix in (".whl", ".zip"):
            with zipfile.ZipFile(path) as archive:
                listed = set(archive.namelist())
                return next((archive.read(n) for n in names if n in listed), None)
        if path.name.endswith((".tar.gz", ".tgz")):
            with tarfile.open(path) as archive:
                members = {m.name.split("/", 1)[-1]: m for m in archive.getmembers() if m.isfile()}
                for name in names:
                    data = archive.extractfile(members[name]) if name in members else None
                    if data is not None:
                        return data.read()
                return None
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise TaskError(f"$BASHENV_SWEBENCH_SPECS: {path}: {exc}") from None
    raise TaskError(f"$BASHENV_SWEBENCH_SPECS: {path} is not a .py file, wheel or sdist")


# What bashenv reads of a swebench wheel/sdist: where it is put → the members it may be.
EXTRACTED = {"harness/constants/python.py": SPEC_FILES,
             "harness/test_spec/python.py": (TEST_SPEC_FILE,),
             "harness/log_parsers/python.py": ("swebench/harness/log_parsers/python.py",
                                               "swebench/harness/log_parsers.py")}


def extracted(path: Path) -> Path:
    """A folder under the cache holding, per relative path of EXTRACTED, the first of its
    archive members found in the wheel/sdist `path` (specs and log parsers alike); made
    once per archive content, whole or not at all (a rename), so concurrent importers never
    see half of it."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    folder = cache_dir() / "swebench" / f"unpacked-{digest}"
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".partial-"))
    try:
        for relative, names in EXTRACTED.items():
            data = archive_member(path, names)
            if data is not None:
                (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
                (tmp / relative).write_bytes(data)
        with contextlib.suppress(OSError):  # another process made it first: theirs is equal
            tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _spec_file_from(path: Path) -> Path:
    """The constants file inside a wheel or sdist, extracted (with test_spec/python.py,
    where SWE-bench keeps its list of replaced packages) once into the cache; or `path`."""
    if path.suffix == ".py":
        return path
    folder = extracted(path)
    constants = folder / "harness" / "constants" / "python.py"
    if not constants.is_file():
        raise TaskError(f"$BASHENV_SWEBENCH_SPECS: {path} holds none of {', '.join(SPEC_FILES)}")
    return constants


def _literal(path: Path, name: str) -> Any:
    """The literal value a module assigns to `name`, read without running it (SWE-bench's
    test_spec module imports requests, docker ...); None when absent."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name
                                                for t in node.targets):
            try:
                return ast.literal_eval(node.value)
            except ValueError:
                return None
    return None


def _installed_spec_file() -> Path | None:
    """The installed swebench package's constants file, found without importing the
    package (its __init__ imports docker, datasets, modal ...)."""
    found = importlib.util.find_spec("swebench")
    if found is None or not found.submodule_search_locations:
        return None
    root = Path(next(iter(found.submodule_search_locations))).parent
    return next((root / f for f in SPEC_FILES if (root / f).is_file()), None)


@functools.cache
def swebench_constants() -> tuple[dict[str, Any], str] | None:
    """(the names SWE-bench's constants file defines, where it came from), or None."""
    given = os.environ.get("BASHENV_SWEBENCH_SPECS")
    path = _spec_file_from(Path(given)) if given else _installed_spec_file()
    if path is None:
        return None
    names = dict(runpy.run_path(str(path)))
    harness = path.parent.parent if path.parent.name == "constants" else path.parent
    names.setdefault("REPLACE_REQ_PACKAGES",
                     _literal(harness / "test_spec" / "python.py", "REPLACE_REQ_PACKAGES") or [])
    return names, str(given or path)


def swebench_specs() -> tuple[dict[str, dict[str, dict[str, Any]]], str] | None:
    """(repo → version → spec, where it came from), or None when SWE-bench is not around."""
    found = swebench_constants()
    if found is None:
        return None
    names, where = found
    table = next((names[n] for n in SPEC_NAMES if isinstance(names.get(n), dict)), None)
    if table is None:
        raise TaskError(f"{where}: no {' or '.join(SPEC_NAMES)} (a swebench 4.x file is needed)")
    return table, where


# Reads a file of the instance's repository at a commit: (commit, path) -> text or None.
RepoReader = Callable[[str, str], "str | None"]
_EXCLUDED = ("-e .", "#", ".[test")  # as SWE-bench's get_requirements_by_commit skips
_ASSIGNMENT = re.compile(r"""^(\w+)=("[^"]*"|'[^']*'|\S*)$""")
_APT_INSTALL = re.compile(r"\bapt(-get)?\s+(-\S+\s+)*install\b")
SWEBENCH_REPO_DIR = "/testbed"  # where SWE-bench's images keep the repository


def _constant(name: str, repo: str) -> list[str]:
    found = swebench_constants()
    return _as_list((found[0].get(name) or {}).get(repo)) if found else []


def requirements(repo: str, commit: str, read: RepoReader,
                 paths: list[str] | None = None) -> tuple[list[str], str] | None:
    """The requirement lines SWE-bench installs for a `packages: requirements.txt` spec:
    the first of `paths` (default MAP_REPO_TO_REQS_PATHS[repo]) at `commit`, its `-r`
    includes inlined; (lines, the file) or None. Option lines (`-c`, `--index-url`) are
    left out."""
    for req_path in paths or _constant("MAP_REPO_TO_REQS_PATHS", repo):
        text = read(commit, req_path)
        if text is None:
            continue
        lines: list[str] = []
        folder = req_path.rsplit("/", 1)[0] if "/" in req_path else ""
        for line in text.splitlines():
            if line.strip().startswith("-r"):
                include = line.strip()[2:].strip()
                extra = read(commit, f"{folder}/{include}" if folder else include) or ""
                lines += extra.splitlines()
            else:
                lines.append(line)
        kept = [ln.split(" #")[0].strip() for ln in lines
                if ln.strip() and not ln.strip().startswith(_EXCLUDED)]
        return [ln for ln in kept if ln and not ln.startswith("-")], req_path
    return None


def environment_yml(repo: str, commit: str, read: RepoReader,
                    paths: list[str] | None = None) -> tuple[Converted, str] | None:
    """The conda environment SWE-bench creates for a `packages: environment.yml` spec (the
    first of `paths`, default MAP_REPO_TO_ENV_YML_PATHS[repo], at `commit`) as pip
    requirements; (them, the file) or None when there is no such file."""
    for yml_path in paths or _constant("MAP_REPO_TO_ENV_YML_PATHS", repo):
        text = read(commit, yml_path)
        if text is not None:
            try:
                return from_environment_yml(text, yml_path), yml_path
            except ValueError as exc:
                raise TaskError(f"{repo} at {commit[:12]}: {exc}") from None
    return None


def _as_list(value: Any) -> list[str]:
    if not value:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _name(requirement: str) -> str:
    """A requirement's project name, normalised as pip compares them."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\s\[<>=!~;@]", requirement.strip(), maxsplit=1)[0]).lower()


def _over(base: list[str], extra: list[str]) -> list[str]:
    """`extra` installed over `base`, as SWE-bench's second pip install does, in one list:
    a constrained `extra` entry replaces `base`'s for the same project; a bare name that
    `base` already has adds nothing (pip would keep what is installed)."""
    bare = {_name(r) for r in extra if re.fullmatch(r"[\w.\-]+", r.strip())}
    have = {_name(r) for r in base}
    kept_extra = [r for r in extra if _name(r) not in (bare & have)]
    replaced = {_name(r) for r in kept_extra}
    return [*(r for r in base if _name(r) not in replaced), *kept_extra]


def _replaced(requirements: list[str], notes: list[str]) -> list[str]:
    """SWE-bench's REPLACE_REQ_PACKAGES applied (packages yanked from PyPI, e.g.
    types-pkg_resources → types-setuptools; the version goes, as in SWE-bench)."""
    found = swebench_constants()
    table = {_name(old): new for old, new in (found[0]["REPLACE_REQ_PACKAGES"] if found else [])}
    out = []
    for req in requirements:
        if _name(req) in table:
            notes.append(f"{req} → {table[_name(req)] or 'nothing'} (SWE-bench's replacement)")
            if table[_name(req)]:
                out.append(table[_name(req)])
        else:
            out.append(req)
    return out


def _packages(raw: dict[str, Any], inst: Instance | None, read: RepoReader | None,
              notes: list[str]) -> list[str]:
    """The pip requirements standing in for a spec's `packages` (conda's, in SWE-bench)."""
    packages = str(raw.get("packages") or "").strip()
    commit = inst.environment_setup_commit or inst.base_commit if inst else ""
    if packages == "requirements.txt" and inst is not None and read is not None:
        reqs = requirements(inst.repo, commit, read, _as_list(raw.get("reqs_path")))
        if reqs is not None:
            notes.append(f"requirements from {reqs[1]} at the environment setup commit")
            return _replaced(reqs[0], notes)
    elif packages == "environment.yml" and inst is not None and read is not None:
        found = environment_yml(inst.repo, commit, read, _as_list(raw.get("env_yml_path")))
        if found is not None:
            converted, yml_path = found
            notes.append(f"conda environment {yml_path} at the environment setup commit "
                         "installed with pip")
            if converted.dropped:
                notes.append(f"{yml_path}: not installed (conda-only or repository paths): "
                             + ", ".join(converted.dropped))
            return _replaced(converted.requirements, notes)
    elif packages not in ("requirements.txt", "environment.yml"):
        converted = from_packages(packages)
        if converted.dropped:
            notes.append("spec packages only conda has, not installed: "
                         + ", ".join(converted.dropped))
        return converted.requirements
    notes.append(f"spec packages {packages!r} (the repository's own requirement file or "
                 "conda environment) not found, not installed; pip_packages and the "
                 "install step are")
    return []


def _setup_steps(raw: dict[str, Any], notes: list[str]) -> list[str]:
    """pre_install and install as the task's setup commands. Each runs as root, with a
    network, in the repository (as in SWE-bench's image), but as its own build step: a
    shell variable a step assigns is carried into the later steps that use it."""
    steps: list[str] = []
    assigned: dict[str, str] = {}
    for cmd in _as_list(raw.get("pre_install")) + _as_list(raw.get("install")):
        if cmd.lstrip().startswith("conda "):
            notes.append(f"conda step skipped: {cmd}")
            continue
        cmd = re.sub(r"&&\s*&&", "&&", cmd.replace(SWEBENCH_REPO_DIR, SEED_DIR)).strip()
        assignment = _ASSIGNMENT.match(cmd)
        if assignment:
            assigned[assignment.group(1)] = cmd
            continue
        if _APT_INSTALL.search(cmd) and "update" not in cmd:
            # SWE-bench's base image keeps apt's package lists; bashenv's bases drop them.
            cmd = f"apt-get update -qq && {cmd}"
        used = [line for name, line in assigned.items() if re.search(rf"\${{?{name}\b", cmd)]
        steps.append("; ".join([*used, cmd]))
    return steps


def from_swebench(raw: dict[str, Any], where: str, inst: Instance | None = None,
                  read: RepoReader | None = None, source: str | None = None) -> Spec:
    """A SWE-bench spec (its table's, or an instance's own install_config) in bashenv's
    terms; what cannot be carried over is noted."""
    spec = Spec(python=str(raw.get("python") or "3.9"), source=source or f"swebench ({where})")
    base = _packages(raw, inst, read, spec.notes)
    pip_packages = raw.get("pip_packages")  # a list; some datasets give one string
    extra = shlex.split(pip_packages) if isinstance(pip_packages, str) else _as_list(pip_packages)
    spec.pip_packages = _over(base, extra)
    spec.install = _setup_steps(raw, spec.notes)
    for cmd in _as_list(raw.get("eval_commands")):
        exported = re.match(r"^export (\w+)=(.*)$", cmd.strip())
        if exported:
            spec.env[exported.group(1)] = exported.group(2).strip("'\"")
        else:
            spec.notes.append(f"eval command not carried over: {cmd}")
    for name, value in (raw.get("env_vars") or {}).items():
        spec.env[str(name)] = str(value)
    if any("locale-gen" in note for note in spec.notes):
        # The locale SWE-bench generates (Django's en_US.UTF-8) does not exist here; C.UTF-8
        # gives the same UTF-8 encoding without warnings from every process.
        for name in ("LANG", "LC_ALL"):
            if spec.env.get(name, "C").split(".")[0] not in ("C", "POSIX"):
                spec.notes.append(f"{name}={spec.env[name]} → C.UTF-8 (no locale-gen here)")
                spec.env[name] = "C.UTF-8"
    test_cmd = _as_list(raw.get("test_cmd")) or ["pytest -rA"]
    spec.test_cmd = test_cmd[-1]
    spec.log_parser = str(raw["log_parser"]) if raw.get("log_parser") else None
    if raw.get("nano_cpus"):  # pylint's: its suite needs two cores within the timeout
        spec.cpus = int(raw["nano_cpus"]) / 1e9
    return spec


def infer_spec(inst: Instance) -> Spec:
    """No SWE-bench specs: the Python of the instance's time, an editable install (pip
    resolves the project's own dependency bounds), pytest -rA."""
    python = "3.11" if inst.created_at[:4] >= "2023" else "3.9"
    return Spec(python=python, install=["python -m pip install -e ."], notes=[
        f"no SWE-bench spec (install bashenv[swebench] or set BASHENV_SWEBENCH_SPECS): "
        f"Python {python} from the instance's date, `pip install -e .`, `pytest -rA`"])


# Fields of newer datasets (SWE-bench 5.x style) with a ready image recipe and eval script.
# bashenv does not run them: its images are its own offline layers, its grading its own
# runner; they stay in the task's metadata, and `tasks export` writes them back.
NOT_RUN_FIELDS = ("dockerfile", "eval_script", "env_script", "setup_script")


def _spec_of(inst: Instance, read: RepoReader | None) -> Spec:
    config = inst.extra.get("install_config")
    # A parquet column of such specs gives every instance all keys, None where unset.
    if isinstance(config, dict) and any(v not in (None, "", [], {}) for v in config.values()):
        # The instance's own spec (SWE-rebench, SWE-bench-extra) wins over SWE-bench's table.
        return from_swebench(config, "instance", inst, read, source="instance install_config")
    specs = swebench_specs()
    if specs is not None:
        table, where = specs
        raw = table.get(inst.repo, {}).get(inst.version)
        if raw is not None:
            return from_swebench(raw, where, inst, read)
        spec = infer_spec(inst)
        spec.notes.insert(0, f"{where} has no spec for {inst.repo} {inst.version}")
        return spec
    return infer_spec(inst)


def spec_for(inst: Instance, read: RepoReader | None = None) -> Spec:
    spec = _spec_of(inst, read)
    if not spec.log_parser and isinstance(inst.extra.get("log_parser"), str):
        spec.log_parser = inst.extra["log_parser"]  # an instance naming its parser itself
    carried = [name for name in NOT_RUN_FIELDS if inst.extra.get(name)]
    if carried:
        spec.notes.append(f"instance's {', '.join(carried)} not run (bashenv builds its own "
                          "layers from the spec and grades with its own runner); kept in "
                          "metadata")
    return spec


def _version(text: str) -> tuple[int, int]:
    match = re.match(r"^(\d+)\.(\d+)", text)
    if not match:
        raise TaskError(f"not a Python version: {text!r}")
    return int(match.group(1)), int(match.group(2))


def base_for(python: str, registry: bool = False) -> tuple[str, str]:
    """(base recipe, the Python version it has) for a spec's Python version. With a
    registry, the exact `python-X.Y-slim` recipe when one exists."""
    wanted = _version(python)
    if registry:
        name = f"python-{wanted[0]}.{wanted[1]}-slim"
        try:
            load_recipe(name)
            return name, f"{wanted[0]}.{wanted[1]}"
        except Exception:  # no such recipe: the offline mapping below
            pass
    for have, name in OFFLINE_BASES:
        if have >= wanted:
            return name, f"{have[0]}.{have[1]}"
    have, name = OFFLINE_BASES[-1]
    return name, f"{have[0]}.{have[1]}"
