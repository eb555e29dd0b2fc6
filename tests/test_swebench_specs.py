"""SWE-bench's own spec table (swebench 4.1.0, every repository in it, not only the sample's)
and instances' own specs (install_config) turned into bashenv tasks, without the engine.

The repositories are not here: a reader of files stands in for them, handing out a small
requirements file or conda environment file where a spec reads one (SWE-bench reads them
from GitHub at the environment setup commit)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import git
import pytest
from packaging.requirements import Requirement

from bashenv.errors import TaskError
from bashenv.sandbox.spec import SEED_DIR
from bashenv.swebench import importer, specs
from bashenv.swebench.conda import from_environment_yml, from_packages, pip_requirement
from bashenv.swebench.export import export_tasks
from bashenv.swebench.importer import instance_tasks
from bashenv.swebench.instances import read_instances
from bashenv.task import load_tasks

USES_ENGINE = False
SHA = "5" * 40
# xarray's ci/requirements/environment.yml as it looked in 2024 (what SWE-bench reads for
# its `packages: environment.yml` spec), comments and all.
XARRAY_ENV_YML = """\
name: xarray-tests
channels:
  - conda-forge
  - nodefaults
dependencies:
  - aiobotocore
  - boto3
  - bottleneck
  - cartopy
  - cftime
  - dask-core
  - distributed
  - flox
  - fsspec!=2021.7.0
  - h5netcdf
  - h5py
  - hdf5
  - hypothesis
  - iris
  - lxml # Optional dep of pydap
  - matplotlib-base
  - nc-time-axis
  - netcdf4
  - numba
  - numbagg
  - numexpr
  - numpy
  - opt_einsum
  - packaging
  - pandas
  - pint>=0.22
  - pip
  - pooch
  - pre-commit
  - pydap
  - python=3.10
  - pytest
  - pytest-cov
  - pytest-env
  - pytest-xdist
  - pytest-timeout
  - rasterio
  - scipy
  - seaborn
  - sparse
  - toolz
  - typing_extensions
  - zarr
  - pip:
      - numbagg==0.8.1
      - -e ../..
"""
REQUIREMENTS = ("-r test.txt\n-e .\n# pinned for the old code\nsix==1.16.0  # via x\n"
                "types-pkg_resources==0.1.3\n")  # yanked from PyPI: SWE-bench replaces it


def _spec_source() -> Path | None:
    """SWE-bench 4.1.0's constants: the installed package, else its sdist (downloaded once
    into the bashenv cache, as tests/test_swebench_e2e.py does)."""
    if specs._installed_spec_file() is not None:
        return None
    folder = Path(os.environ.get("BASHENV_CACHE", Path.home() / ".cache" / "bashenv")) / "swebench"
    sdist = folder / "swebench-4.1.0.tar.gz"
    if not sdist.is_file():
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary",
                        ":all:", "swebench==4.1.0", "-d", str(folder)], check=True)
    return sdist


@pytest.fixture(scope="module")
def spec_file() -> Path | None:
    return _spec_source()


@pytest.fixture(autouse=True)
def swebench_specs(spec_file, tmp_path, monkeypatch):
    monkeypatch.setenv("BASHENV_CACHE", str(tmp_path / "cache"))
    if spec_file is None:
        monkeypatch.delenv("BASHENV_SWEBENCH_SPECS", raising=False)
    else:
        monkeypatch.setenv("BASHENV_SWEBENCH_SPECS", str(spec_file))
    specs.swebench_constants.cache_clear()
    yield
    specs.swebench_constants.cache_clear()


@pytest.fixture
def files(monkeypatch) -> dict[str, str]:
    """The repository files the reader hands out (path → text), at the setup commit only."""
    held: dict[str, str] = {}

    def read(source: str, commit: str, path: str) -> str | None:
        assert commit == SHA  # SWE-bench reads them at the environment setup commit
        return held.get(path)

    monkeypatch.setattr(importer, "read_at", read)
    return held


def _instance(repo: str, version: str, **extra: object) -> dict:
    test_file = "tests/test_bashenv.py"
    return {"repo": repo, "instance_id": f"{repo.replace('/', '__')}-1", "base_commit": "a" * 40,
            "environment_setup_commit": SHA, "version": version, "problem_statement": "x",
            "created_at": "2024-01-01T00:00:00Z",
            "FAIL_TO_PASS": [f"{test_file}::test_fixed"], "PASS_TO_PASS": [],
            "test_patch": f"diff --git a/{test_file} b/{test_file}\n", **extra}


def _tasks(tmp_path: Path, *records: dict):
    (tmp_path / "i.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return instance_tasks(tmp_path / "i.jsonl")


def _latest_specs() -> list[tuple[str, str]]:
    found = specs.swebench_specs()
    assert found is not None
    return [(repo, list(versions)[-1]) for repo, versions in found[0].items()]


def test_every_repository_in_swebench_4_1_table_becomes_a_loadable_task(tmp_path, files):
    specs.swebench_constants.cache_clear()
    table, _ = specs.swebench_specs() or ({}, "")
    consts = specs.swebench_constants()
    assert consts is not None and len(table) >= 18
    for paths in consts[0]["MAP_REPO_TO_REQS_PATHS"].values():
        for path in paths:  # every repository's requirement file, with an include
            files[path] = REQUIREMENTS
            files[str(Path(path).parent / "test.txt").removeprefix("./")] = "pytest>=6\n"
    for paths in consts[0]["MAP_REPO_TO_ENV_YML_PATHS"].values():
        files.update(dict.fromkeys(paths, XARRAY_ENV_YML))
    latest = _latest_specs()
    tasks = {t.metadata["repo"]: t for t in _tasks(tmp_path, *(_instance(r, v) for r, v in latest))}
    assert len(tasks) == len(latest)
    for repo, version in latest:
        raw, task = table[repo][version], tasks[repo]
        env = task.environment
        for req in env.python_packages:  # no shell quotes reach pip: each is a requirement
            assert "'" not in req and '"' not in req, (repo, req)
            Requirement(req)
        assert env.base == specs.base_for(raw["python"])[0], repo
        assert task.metadata["python_spec"] == raw["python"] and task.metadata["spec"].startswith("swebench")
        test_cmd = re.sub(r"^pytest\b", "python -m pytest", raw.get("test_cmd", "pytest -rA"))
        assert task.tests.command.startswith(test_cmd), repo
        assert task.tests.runner == f"swebench:{repo}"
        setup = " ".join(env.setup)
        assert raw["install"].split()[-1] in setup if raw.get("install") else not env.setup
        assert "/testbed" not in setup and "conda " not in setup
        for pin in raw.get("pip_packages", []):  # the spec's own pins always land
            if re.search(r"[=<>]", pin):
                assert pin in env.python_packages, (repo, pin)
        if raw.get("packages") == "requirements.txt":
            assert {"six==1.16.0", "pytest>=6"} <= set(env.python_packages), repo
            # SWE-bench's REPLACE_REQ_PACKAGES (read from its test_spec module) applied.
            assert "types-setuptools" in env.python_packages, repo
            assert not any("pkg_resources" in r for r in env.python_packages), repo
            assert any(n.startswith("requirements from") for n in task.metadata["notes"]), repo
        if raw.get("packages") == "environment.yml":  # what conda alone has is named
            names = {Requirement(r).name.lower() for r in env.python_packages}
            assert {"dask", "netcdf4", "scitools-iris"} <= names and "hdf5" not in names, repo
            assert any("hdf5" in n for n in task.metadata["notes"]), repo


def test_conda_packages_are_shell_words_and_the_spec_pins_stay(tmp_path, files):
    """scikit-learn's `packages` quotes its conda specs; its pip_packages name numpy bare,
    which leaves the conda pin in place (pip keeps what is installed)."""
    [task] = _tasks(tmp_path, _instance("scikit-learn/scikit-learn", "1.6"))
    pkgs = task.environment.python_packages
    assert {"numpy==1.19.2", "scipy==1.5.2", "cython==3.0.10", "pandas<2.0.0",
            "matplotlib<3.9.0", "joblib", "threadpoolctl"} <= set(pkgs)
    assert "numpy" not in pkgs and pkgs.count("pytest") == 1
    assert pip_requirement("numpy=1.19") == "numpy==1.19.*"
    assert pip_requirement("conda-forge::dask-core>=2022.1") == "dask>=2022.1"
    assert pip_requirement("numpy 1.21 py39_0") == "numpy==1.21.*"
    assert pip_requirement("python=3.9") is None
    assert from_packages("setuptools==38.2.4 'hdf5>=1.10'").dropped == ["hdf5>=1.10"]


def test_xarray_environment_yml_becomes_pip_requirements(tmp_path, files):
    converted = from_environment_yml(XARRAY_ENV_YML, "ci/requirements/environment.yml")
    reqs = converted.requirements
    assert {"dask", "matplotlib", "scitools-iris", "netCDF4", "pint>=0.22",
            "fsspec!=2021.7.0", "numbagg==0.8.1", "lxml"} <= set(reqs)
    assert not {"python==3.10.*", "pip", "hdf5", "dask-core"} & set(reqs)
    assert converted.dropped == ["hdf5", "pip", "python=3.10", "pip: -e ../.."]
    files["ci/requirements/environment.yml"] = XARRAY_ENV_YML
    [task] = _tasks(tmp_path, _instance("pydata/xarray", "2024.05"))
    pkgs = task.environment.python_packages
    # The spec's pins win over the environment's unpinned entries; one entry per project.
    assert "numpy==1.23.0" in pkgs and "numpy" not in pkgs and "pandas==1.5.3" in pkgs
    assert "dask==2022.8.1" in pkgs and "dask" not in pkgs
    notes = " ".join(task.metadata["notes"])
    assert "conda environment ci/requirements/environment.yml" in notes and "hdf5" in notes
    assert task.environment.base == "python-bookworm"  # the spec's 3.10 → Debian 12's 3.11


def test_an_environment_file_that_is_not_one_is_named(tmp_path, files):
    files["ci/requirements/environment.yml"] = "name: x\ndependencies: [a, b\n"
    with pytest.raises(TaskError, match=r"pydata/xarray at 555555555555: ci/requirements/"
                       r"environment.yml: not valid YAML"):
        _tasks(tmp_path, _instance("pydata/xarray", "2024.05"))


def test_missing_repository_files_are_noted_not_installed(tmp_path, files):
    [task] = _tasks(tmp_path, _instance("pydata/xarray", "2024.05"))
    assert any("not found, not installed" in n for n in task.metadata["notes"])


def _steps(task) -> list[str]:
    """The setup commands without the version the importer gives setuptools_scm."""
    return [re.sub(r"^SETUPTOOLS_SCM_PRETEND_VERSION=\S+ ", "", s) for s in task.environment.setup]


def test_pre_install_steps_run_in_the_repository_as_root_with_their_variables(tmp_path, files):
    [sphinx] = _tasks(tmp_path, _instance("sphinx-doc/sphinx", "8.1"))
    assert _steps(sphinx)[:2] == ["sed -i 's/pytest/pytest -rA/' tox.ini",
                                            "apt-get update && apt-get install -y graphviz"]
    assert sphinx.tests.command.startswith("tox --current-env -epy39 -v --")
    [mpl] = _tasks(tmp_path, _instance("matplotlib/matplotlib", "3.9"))
    setup = _steps(mpl)
    wget = next(s for s in setup if "wget" in s)
    # Each step is its own build step: the QHULL variables go with the steps that use them.
    assert wget.startswith('QHULL_URL="http://www.qhull.org/download/') and "QHULL_TAR=" in wget
    assert f'QHULL_BUILD_DIR="{SEED_DIR}/build"' in next(s for s in setup if "mkdir" in s)
    assert not any(s.startswith("QHULL") and ";" not in s for s in setup)
    assert setup[-1].endswith('python -m pip install --no-build-isolation -e ".[dev]"')
    [old] = _tasks(tmp_path, _instance("matplotlib/matplotlib", "1.5"))  # SWE-bench's `&& &&`
    assert "&& &&" not in " ".join(old.environment.setup)
    [pylint] = _tasks(tmp_path, _instance("pylint-dev/pylint", "4.0"))
    assert pylint.limits.cpus == 2.0  # nano_cpus


def test_an_instances_own_install_config_wins(tmp_path, files):
    files["requirements/test.txt"] = "pytest==7.4.0\nfreezegun\n"
    config = {"python": "3.11", "packages": "requirements.txt",
              "reqs_path": ["requirements/test.txt"], "pip_packages": "'pytest==8.0.0'",
              "pre_install": ["apt install -y make gcc"], "install": "pip install -e .[test]",
              "test_cmd": "pytest --no-header -rA --tb=line -p no:cacheprovider",
              "log_parser": "parse_log_pytest_v2", "env_vars": {"TZ": "UTC"},
              "no_use_env": None, "env_yml_path": None}
    as_string = _instance("pylint-dev/astroid", "3.0", install_config=json.dumps(config),
                          eval_script="#!/bin/bash\npytest", dockerfile="FROM ubuntu")
    [task] = _tasks(tmp_path, as_string)
    assert task.metadata["spec"] == "instance install_config"
    assert task.tests.runner == "swebench:parse_log_pytest_v2"
    assert task.environment.python_packages == ["pip>=23", "freezegun", "pytest==8.0.0"]
    assert _steps(task) == ["apt-get update -qq && apt install -y make gcc",
                            "pip install -e .[test]"]
    assert task.environment.env == {"TZ": "UTC"} and task.environment.base == "python-bookworm"
    assert task.tests.command.startswith("python -m pytest --no-header -rA --tb=line")
    notes = " ".join(task.metadata["notes"])
    assert "requirements from requirements/test.txt" in notes
    assert "dockerfile, eval_script not run" in notes
    # Written and exported (which needs the base commit), the instance gives its own spec
    # (as an object) back.
    repo = git.Repo.init(tmp_path / "repos" / "pylint-dev__astroid.git")
    base = repo.index.commit("base").hexsha
    (tmp_path / "i.jsonl").write_text(json.dumps({**as_string, "base_commit": base}) + "\n")
    importer.import_instances(tmp_path / "i.jsonl", tmp_path / "out", tmp_path / "repos")
    export_tasks(load_tasks(tmp_path / "out"), tmp_path / "back.jsonl")
    [back] = read_instances(tmp_path / "back.jsonl")
    assert back.extra["install_config"] == config and back.extra["eval_script"].startswith("#!")


def test_an_instance_naming_its_log_parser_gets_it_with_swebench_table_spec(tmp_path, files):
    [task] = _tasks(tmp_path, _instance("pylint-dev/astroid", "3.0", log_parser="parse_log_pytest"))
    assert task.tests.runner == "swebench:parse_log_pytest"
    assert task.metadata["spec"].startswith("swebench (") and task.metadata["log_parser"]


def test_an_empty_install_config_leaves_swebench_table_spec(tmp_path, files):
    """Parquet datasets give an instance without its own spec all keys, each None."""
    empty = dict.fromkeys(("python", "install", "test_cmd", "pip_packages", "log_parser"))
    [task] = _tasks(tmp_path, _instance("pylint-dev/astroid", "3.0", install_config=empty))
    assert task.metadata["spec"].startswith("swebench (")
    assert task.environment.python_packages == ["pip>=23", "pytest"]


def test_a_bad_install_config_is_named(tmp_path):
    (tmp_path / "i.jsonl").write_text(json.dumps(_instance("o/n", "1", install_config="{x")) + "\n")
    with pytest.raises(TaskError, match=r"instance o__n-1: field 'install_config': not a JSON"):
        read_instances(tmp_path / "i.jsonl")
    (tmp_path / "i.jsonl").write_text(json.dumps(_instance("o/n", "1", install_config=[1])) + "\n")
    with pytest.raises(TaskError, match="field 'install_config': expected an object"):
        read_instances(tmp_path / "i.jsonl")
