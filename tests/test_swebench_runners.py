"""A non-pytest runner graded end to end: Django's own `tests/runtests.py`, run exactly as
SWE-bench runs it (its spec's test command and environment variables), its console log read
by SWE-bench's Django parser, ids in Django's `test_x (module.Class)` form.

The instance is real code with a small real bug: Django 3.0.14's source distribution
(PyPI ships its test suite) made into a one-commit repository in which
`django.utils.text.phone2numeric` forgot to lower-case its input; the gold patch restores
that, the test patch adds a test for upper-case letters. The sdist (9 MB) and the
repository built from it are cached under $BASHENV_CACHE/fixtures (default
~/.cache/bashenv/fixtures), so a machine downloads it at most once.

The environment is SWE-bench 4.1's own Django 3.0 spec, unchanged: its `packages:
requirements.txt` is Django's tests/requirements/py3.txt (numpy, Pillow, selenium, pylibmc,
...), whose `pywatchman` ships no wheel at all, so the environment layer builds it: the
compiler is installed only because pip needed one (bashenv/images/native.py).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import rid
from tests.sdist_repo import import_sdist_instance, sdist_repository, validate_behaves
from tests.test_swebench_e2e import _bashenv, _spec_source

DJANGO = "3.0.14"
IID = "django__django-90001"
F2P = "test_phone2numeric_upper (utils_tests.test_text.TestUtilsText)"
P2P = [f"{name} (utils_tests.test_text.TestUtilsText)"
       for name in ("test_phone2numeric", "test_get_text_list", "test_slugify", "test_wrap")]
BUG = ("for c in phone.lower())", "for c in phone)")
NEW_TEST = '''
    def test_phone2numeric_upper(self):
        self.assertEqual(text.phone2numeric('0800 FLOWERS'), '0800 3569377')
'''


def _with_new_test(text: str) -> str:
    anchor = "    def test_slugify(self):"
    return text.replace(anchor, NEW_TEST.lstrip("\n") + "\n" + anchor, 1)


def django_fixture() -> dict[str, str]:
    """The repositories directory (holding django__django.git), base commit, gold patch and
    test patch; built from the cached sdist on first use."""
    return sdist_repository("Django", DJANGO, "phone2numeric", "django__django.git",
                            "django/utils/text.py", BUG, "tests/utils_tests/test_text.py",
                            _with_new_test)


@pytest.fixture(scope="module")
def django_tasks(tmp_path_factory):
    fixture = django_fixture()
    tmp = tmp_path_factory.mktemp("django")
    env = _spec_source()  # SWE-bench's own spec table, untouched
    import_sdist_instance(
        tmp, fixture, "django/django", IID, "3.0",
        "phone2numeric('0800 FLOWERS') leaves the letters alone; lower-case ones are converted.",
        [F2P], P2P, "2021-04-06T00:00:00Z", _bashenv, env)
    return tmp, env, fixture


def test_django_runner_task_is_imported_as_swebench_runs_it(django_tasks):
    import yaml

    tmp, _, _ = django_tasks
    task = yaml.safe_load((tmp / "tasks" / IID / "task.yaml").read_text())
    assert task["tests"]["runner"] == "swebench:django/django"
    # SWE-bench's test command on the test patch's module, with no grader arguments.
    assert task["tests"]["command"] == ("./tests/runtests.py --verbosity 2 --settings=test_sqlite "
                                        "--parallel 1 utils_tests.test_text")
    assert task["environment"]["env"]["LANG"] == "C.UTF-8"  # SWE-bench's export, no locale-gen
    assert task["environment"]["env"]["LANGUAGE"] == "en_US:en"
    # SWE-bench's `packages: requirements.txt`: Django's own, read at the setup commit.
    packages = task["environment"]["python_packages"]
    assert "pylibmc; sys.platform != 'win32'" in packages and "selenium" in packages


def test_django_environment_builds_what_has_no_wheel(django_tasks):
    """pywatchman has no wheel: the environment layer installed a compiler and built it."""
    from bashenv.images.build import build_task_image
    from bashenv.task import load_tasks

    tmp, _, _ = django_tasks
    task = load_tasks(tmp / "tasks" / IID)[0]
    image, _ = build_task_image(task)
    done = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--label", f"bashenv={rid('swe-django')}",
         image.tag, "python", "-c", "import pylibmc, pywatchman.bser, PIL, numpy; print('ok')"],
        capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr


def test_django_gold_resolves_no_change_and_a_wrong_fix_do_not(django_tasks):
    tmp, env, fixture = django_tasks
    validate_behaves(tmp, IID, rid("swe-django"), _bashenv, env)

    wrong = fixture["gold"].replace("phone.lower()", "phone.upper()")
    preds = [{"instance_id": IID, "model_name_or_path": m, "model_patch": p}
             for m, p in (("gold", fixture["gold"]), ("wrong", wrong))]
    reports = {}
    for pred in preds:
        (tmp / "preds.jsonl").write_text(json.dumps(pred) + "\n")
        run = tmp / pred["model_name_or_path"]
        done = _bashenv("eval", str(tmp / "preds.jsonl"), "--tasks", str(tmp / "tasks"), "-o",
                        str(run), "--run-id", rid("swe-django"), env=env)
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        verdict = json.loads((run / IID / "verdict.json").read_text())
        assert verdict["apply_method"] == "git apply" and verdict["grader_plugin"] is False
        assert "Ran " in (run / IID / "test_output.txt").read_text()  # Django's own runner
        reports[pred["model_name_or_path"]] = (json.loads((run / "report.json").read_text()),
                                               verdict)
    gold_report, gold_verdict = reports["gold"]
    assert gold_report["resolved_ids"] == [IID]
    assert set(gold_verdict["pass_to_pass"].values()) == {"passed"}
    wrong_report, wrong_verdict = reports["wrong"]
    assert wrong_report["unresolved_ids"] == [IID]
    assert wrong_verdict["fail_to_pass"] == {F2P: "failed"}
    # upper() maps nothing: the lower-case test that passed before now fails too.
    assert wrong_verdict["pass_to_pass"]["test_phone2numeric (utils_tests.test_text.TestUtilsText)"] \
        == "failed"
