"""A repository outside the sample, end to end: `tasks import` → `tasks validate` of a
pylint-dev/astroid instance built from astroid's PyPI source distribution, with SWE-bench
4.1's own astroid 3.0 spec untouched (Python 3.9, `pip install -e .`, pytest, `pytest -rA`)
and nothing in bashenv special-cased for astroid.

The instance is real code with a small real bug: `astroid.modutils.is_stdlib_module` looks
up the whole dotted name instead of its first part, so `sys.path` is not standard library;
the gold patch restores the split, the test patch adds a test for a dotted submodule.
The sdist (0.4 MB) and the repository built from it are cached under $BASHENV_CACHE/fixtures.
"""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import rid
from tests.sdist_repo import import_sdist_instance, sdist_repository, validate_behaves
from tests.test_swebench_e2e import _bashenv, _spec_source

ASTROID = "3.0.3"
IID = "pylint-dev__astroid-90001"
CLASS = "tests/test_modutils.py::IsStdLibModuleTest"
F2P = [f"{CLASS}::test_subpackages", f"{CLASS}::test_dotted_submodule"]
P2P = [f"{CLASS}::test_datetime", f"{CLASS}::test_builtins", f"{CLASS}::test_nonstandard",
       f"{CLASS}::test_4"]
BUG = ('return modname.split(".")[0] in stdlib_module_names',
       "return modname in stdlib_module_names")
NEW_TEST = '''
    def test_dotted_submodule(self) -> None:
        assert modutils.is_stdlib_module("os.path")
        assert not modutils.is_stdlib_module("astroid.nodes")
'''


def _add_test(text: str) -> str:
    anchor = "    def test_platform_specific(self) -> None:\n"
    assert text.count(anchor) == 1
    return text.replace(anchor, NEW_TEST.lstrip("\n") + "\n" + anchor)


@pytest.fixture(scope="module")
def astroid_tasks(tmp_path_factory):
    fixture = sdist_repository("astroid", ASTROID, "stdlib", "pylint-dev__astroid.git",
                               "astroid/modutils.py", BUG, "tests/test_modutils.py", _add_test)
    tmp = tmp_path_factory.mktemp("astroid")
    env = _spec_source()  # SWE-bench's own spec table, untouched
    import_sdist_instance(tmp, fixture, "pylint-dev/astroid", IID, "3.0",
                          "is_stdlib_module('sys.path') is False", F2P, P2P,
                          "2023-10-01T00:00:00Z", _bashenv, env)
    return tmp, env


def test_astroid_instance_imports_with_swebench_own_spec_and_validates(astroid_tasks):
    tmp, env = astroid_tasks
    task = yaml.safe_load((tmp / "tasks" / IID / "task.yaml").read_text())
    assert task["metadata"]["spec"].startswith("swebench (") and task["metadata"]["python"] == "3.9"
    assert task["environment"]["python_packages"] == ["pip>=23", "pytest"]
    assert task["tests"]["command"] == "python -m pytest -rA tests/test_modutils.py"
    validate_behaves(tmp, IID, rid("swe-astroid"), _bashenv, env)
