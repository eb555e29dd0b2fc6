"""SWE-bench's log parsers: bashenv's built-ins agree with SWE-bench's own (loaded from its
4.1.0 sdist) on real logs, for every family; the loader's routes (sdist, wheel, installed
package, older single-file releases, a bare constants file) and its errors; runner names;
and the hardened pytest run (JUnit cross-check) for families that rewrite test ids, run
for real under pytest. No engine."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bashenv.errors import TaskError
from bashenv.grading.parsers import PytestLogAndJUnit, hardened, parser_for
from bashenv.swebench import log_parsers
from bashenv.swebench.log_parsers import BY_NAME, BY_REPO, FAMILIES, for_runner
from bashenv.swebench.swebench_parsers import (
    PARSER_FILES,
    LoadedParsers,
    source_digest,
    swebench_parsers,
)
from bashenv.task.model import HiddenTests

USES_ENGINE = False
LOGS = Path(__file__).parent / "data" / "swebench_logs"
PARSER_MEMBER = PARSER_FILES[0]


def swebench_sdist() -> Path:
    """SWE-bench 4.1.0's sdist (134 kB), fetched once from PyPI into the bashenv cache, as
    tests/test_swebench_e2e.py does."""
    cache = Path(os.environ.get("BASHENV_CACHE", Path.home() / ".cache" / "bashenv"))
    sdist = cache / "swebench" / "swebench-4.1.0.tar.gz"
    if not sdist.is_file():
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--no-binary", ":all:", "swebench==4.1.0", "-d", str(sdist.parent)],
                       check=True)
    return sdist


@pytest.fixture(scope="module")
def sdist() -> Path:
    return swebench_sdist()


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BASHENV_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("BASHENV_SWEBENCH_SPECS", raising=False)


@pytest.fixture(scope="module")
def theirs(sdist, tmp_path_factory) -> Iterator[LoadedParsers]:
    """SWE-bench 4.1.0's own parsers, loaded from its sdist."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BASHENV_CACHE", str(tmp_path_factory.mktemp("cache")))
        patch.setenv("BASHENV_SWEBENCH_SPECS", str(sdist))
        loaded = swebench_parsers()
    assert loaded is not None
    yield loaded


# --- agreement on real logs -----------------------------------------------------------------

REAL_LOGS = sorted(LOGS.glob("*.log"))


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("log", REAL_LOGS, ids=[p.name for p in REAL_LOGS])
def test_builtin_parsers_agree_with_swebenchs_on_real_logs(theirs, family, log):
    text = log.read_text(errors="replace")
    assert FAMILIES[family].parse(text) == theirs.by_name[family][1](text)


def test_every_family_reads_real_logs_of_its_kind(theirs):
    """The agreement above is not vacuous: each family finds tests in the logs it is for."""
    def read(family: str, log: str) -> dict[str, str]:
        found = FAMILIES[family].parse((LOGS / log).read_text())
        assert found == theirs.by_name[family][1]((LOGS / log).read_text())
        return found

    own = "pytest-8.3.5-own-suite-rA.log"
    found = read("parse_log_pytest", own)
    assert found["testing/test_mark_expression.py::test_basic[not"] == "FAILED"  # cut at a space
    assert found["testing/test_compat.py::test_is_generator_async_syntax"] == "PASSED"
    # The last line about a test wins: an inner session's "FAILED" line printed in the
    # PASSES section names a test of that inner session, which the outer run never lists.
    assert found["test_xfail_raises.py::test_raises"] == "FAILED"
    assert sum(s == "FAILED" for s in found.values()) >= 5

    colour = "pytest-8.3.5-own-suite-vv-classic-color.log"
    assert read("parse_log_pytest", colour) == {}  # colour codes hide every line from it
    v2 = read("parse_log_pytest_v2", colour)
    assert v2["testing/test_mark_expression.py::test_empty_is_false"] == "PASSED"
    assert v2["testing/test_mark_expression.py::test_syntax_oddities[not"] == "FAILED"
    assert len(v2) > 100
    plain = read("parse_log_pytest_v2", own)
    assert plain["testing/test_compat.py::test_is_generator_async_syntax"] == "PASSED"

    options = read("parse_log_pytest_options", "pytest-rA-path-options.log")
    assert options["test_options.py::test_reads[/a.txt]"] == "PASSED"
    assert options["test_options.py::test_reads[/c.txt]"] == "FAILED"
    assert options["test_options.py::test_xfails[/c.txt]"] == "XFAIL"
    assert options["test_options.py::test_pattern[/tmp/h1logs/opts/data/*.txt]"] == "PASSED"
    assert options["test_options.py::test_pattern[//server/share/a.txt]"] == "PASSED"

    requests = read("parse_log_pytest_options", "requests-2.32.3-rA.log")  # its own suite
    unchanged = "tests/test_utils.py::TestExtractZippedPaths::test_unzipped_paths_unchanged"
    assert requests[f"{unchanged}[/test_utils.py]"] == "FAILED"
    assert requests[f"{unchanged}[/__init__.py]"] == "FAILED"
    assert requests[f"{unchanged}[/]"] == requests[f"{unchanged}[/location]"] == "PASSED"
    # 221 passed; ids cut at a space or shortened to the same option merge, the last wins.
    assert sum(s == "PASSED" for s in requests.values()) == 213

    buttons = read("parse_log_matplotlib", "pytest-rA-path-options.log")
    assert buttons["test_options.py::test_button[1]"] == "PASSED"
    assert buttons["test_options.py::test_button[3]"] == "FAILED"

    seaborn = read("parse_log_seaborn", "pytest-rA.log")  # FAILED and PASSED only
    assert set(seaborn.values()) == {"PASSED", "FAILED"}
    assert "test_demo.py::test_xfails" not in seaborn and "test_demo.py::test_errors" not in seaborn

    django = read("parse_log_django", "django-4.2.16-runtests-basic.log")
    assert sum(s == "PASSED" for s in django.values()) == 60
    sympy = read("parse_log_sympy", "sympy-1.12-bin-test-verbose.log")
    assert sympy["test_bashenv_fails_on_purpose"] == "FAILED" and "test_ibasic" not in sympy


# Fragments real logs are made of, and the corners of SWE-bench's rules (a status word
# starting a longer word, " - ", colour codes, control characters, option paths, Django's
# and sympy's line endings), joined at random: the built-ins and SWE-bench's own must agree.
FRAGMENTS = ["PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL", "XPASS", "ERRORS", " ", "  ",
             " - ", "-", "\t", "\r", "\x1b", "[32m", "[1;31m", "[0m", "tests/test_a.py::t",
             "t[/abs/dir/f.dcm]", "[//net/x]", "[/a/*.py]", "[a b]", "]", "[", "MouseButton.LEFT",
             "MouseButton.RIGHT", "test_x", " ok", "ok", " F", " E", " f", "[OK]", "[FAIL]",
             "____", " sympy/a.py:test_y ", ".py:", " ... ", " ... ok", " ... OK", " ...  OK",
             " ... FAIL", " ... ERROR", " ... skipped 'why'", "FAIL: ", "ERROR: ",
             "test_z (m.C)", "--version is equivalent to version", " PASSED ",
             "System check identified no issues (0 silenced)", "Internal Server Error: /x/",
             "\n", "\nok", "ok\n", "\nok\n", "/", " ...\n", "\n... ", "\x0b", "\xa0",
             "Testing against Django installed in ", " silenced).", " silenced).\nok",
             "System check identified no issues (0 silenced)\nok", "Internal Server Error: /",
             "/\nok", "_ a.py: b.py:c ", ".py: ", " x.py:y z"]


def _random_log(rng: random.Random) -> str:
    lines = ["".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 6)))
             for _ in range(rng.randint(1, 12))]
    return "\n".join(lines)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_builtin_parsers_agree_with_swebenchs_on_the_corners_of_their_rules(theirs, family):
    rng = random.Random(family)
    ours, swebench = FAMILIES[family].parse, theirs.by_name[family][1]
    compared = 0
    for _ in range(3000):
        log = _random_log(rng)
        try:
            expected = swebench(log)
        except IndexError:
            # SWE-bench 4.1.0's seaborn and Django parsers stop on a bare status word or
            # `FAIL:` header; bashenv's skip that line (as later SWE-bench releases do).
            ours(log)
            continue
        assert ours(log) == expected, log
        compared += 1
    assert compared > 2500


# Django's late `ok` (three multi-line patterns in SWE-bench, found by bashenv without
# regexes): fragments that make them match often, across lines and whitespace kinds.
DJANGO_FRAGMENTS = ["t", "t x", " ... ", "\n... ", " ...\n", "\t...\x0b", "...", "\n", "ok",
                    "\nok", "okay", "Testing against Django installed in ", " silenced).",
                    " silenced).\nok", "Internal Server Error: /", "/", "/\nok", " ", "x",
                    "System check identified no issues (0 silenced)\nok"]


def test_django_late_oks_agree_with_swebenchs_patterns(theirs):
    rng = random.Random("django")
    ours, swebench = FAMILIES["parse_log_django"].parse, theirs.by_name["parse_log_django"][1]
    late = 0
    for _ in range(5000):
        log = "".join(rng.choice(DJANGO_FRAGMENTS) for _ in range(rng.randint(1, 14)))
        expected = swebench(log)
        assert ours(log) == expected, log
        late += bool(log_parsers._late_oks(log))
    assert late > 50  # the patterns did match, often


# --- the loader -------------------------------------------------------------------------

def _member_text(sdist: Path) -> bytes:
    with tarfile.open(sdist) as archive:
        data = archive.extractfile(f"swebench-4.1.0/{PARSER_MEMBER}")
        assert data is not None
        return data.read()


def test_loaded_from_an_sdist_once_into_the_cache(sdist, tmp_path, monkeypatch):
    monkeypatch.setenv("BASHENV_SWEBENCH_SPECS", str(sdist))
    loaded = swebench_parsers()
    assert loaded is not None and loaded.where == str(sdist)
    assert len(loaded.by_repo) == 18 and "parse_log_pytest_v2" in loaded.by_name
    extracted = list((tmp_path / "cache" / "swebench").iterdir())
    # One folder (shared with the specs read from the same archive), nothing else, no temp dir.
    assert extracted == [Path(loaded.path).parents[2]]
    assert Path(loaded.path).read_bytes() == _member_text(sdist)
    before = Path(loaded.path).stat().st_mtime_ns
    assert swebench_parsers() == loaded and Path(loaded.path).stat().st_mtime_ns == before
    assert "swebench" not in sys.modules  # the package is never imported
    assert source_digest() != "builtin"


def test_loaded_from_a_wheel(sdist, tmp_path, monkeypatch):
    wheel = tmp_path / "swebench-4.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("swebench/__init__.py", "raise ImportError('never imported')\n")
        archive.writestr(PARSER_MEMBER, _member_text(sdist))
    monkeypatch.setenv("BASHENV_SWEBENCH_SPECS", str(wheel))
    loaded = swebench_parsers()
    assert loaded is not None and loaded.by_repo["psf/requests"][0] == "parse_log_pytest_options"


def test_loaded_from_the_installed_package_by_path(sdist, tmp_path, monkeypatch):
    package = tmp_path / "site" / "swebench"
    (package / "harness" / "log_parsers").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('never imported')\n")
    (package / "harness" / "log_parsers" / "python.py").write_bytes(_member_text(sdist))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    loaded = swebench_parsers()
    assert loaded is not None and loaded.where == str(package / "harness/log_parsers/python.py")
    parser = for_runner("astropy/astropy")
    # SWE-bench 4.1.0's file, which the built-ins are proven equal to: run as the built-in.
    assert loaded.proven and parser.log_parser is log_parsers.parse_pytest_v2
    assert parser.reads_pytest_log
    # A constants file of that tree finds the parsers beside it; a bare one has none.
    constants = package / "harness" / "constants" / "python.py"
    constants.parent.mkdir()
    constants.write_text("MAP_REPO_VERSION_TO_SPECS_PY = {}\n")
    monkeypatch.setenv("BASHENV_SWEBENCH_SPECS", str(constants))
    found = swebench_parsers()
    assert found is not None and found.path == loaded.where
    (tmp_path / "python.py").write_text("MAP_REPO_VERSION_TO_SPECS_PY = {}\n")
    monkeypatch.setenv("BASHENV_SWEBENCH_SPECS", str(tmp_path / "python.py"))
    assert swebench_parsers() is None and source_digest() == "builtin"
    assert for_runner("astropy/astropy").log_parser is log_parsers.parse_pytest_v2


OLDER_RELEASE = '''import re
from swebench.harness.constants import TestStatus


def parse_log_pytest(log):
    """A release whose parsers take the log only, in one log_parsers.py."""
    return {m[1]: m[0] for m in re.findall(r"^(PASSED|FAILED) (\\S+)", log, re.MULTILINE)
            if m[0] in (TestStatus.PASSED.value, TestStatus.FAILED.value)}


MAP_REPO_TO_PARSER = {"pallets/flask": parse_log_pytest}
'''


def test_an_older_single_file_release_loads(tmp_path, monkeypatch):
    wheel = tmp_path / "swebench-2.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("swebench/harness/log_parsers.py", OLDER_RELEASE)
    monkeypatch.setenv("BASHENV_SWEBENCH_SPECS", str(wheel))
    parser = for_runner("pallets/flask")
    assert parser.statuses(b"PASSED a.py::t\nFAILED a.py::u\n") == {"a.py::t": "PASSED",
                                                                     "a.py::u": "FAILED"}
    # A repository or name that release lacks: bashenv's built-in for it.
    assert for_runner("sympy/sympy").log_parser is log_parsers.parse_sympy


@pytest.mark.parametrize(("member", "text", "error"), [
    (PARSER_MEMBER, "from swebench.harness.utils import x\n", "do not load: .*utils x"),
    (PARSER_MEMBER, "import swebench.harness\n", "do not load"),
    (PARSER_MEMBER, "def parse_log_pytest(log, spec):\n    return {}\n", "no MAP_REPO_TO_PARSER"),
])
def test_a_parser_file_that_does_not_load_is_a_clear_error(tmp_path, monkeypatch, member, text,
                                                           error):
    wheel = tmp_path / "swebench.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(member, text)
    monkeypatch.setenv("BASHENV_SWEBENCH_SPECS", str(wheel))
    with pytest.raises(TaskError, match=f"SWE-bench's log parsers \\({wheel}\\).*{error}"):
        swebench_parsers()


def test_a_wrong_swebench_file_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("BASHENV_SWEBENCH_SPECS", str(tmp_path / "missing.tar.gz"))
    with pytest.raises(TaskError, match="BASHENV_SWEBENCH_SPECS: .*missing.tar.gz is not a file"):
        swebench_parsers()
    (tmp_path / "specs.json").write_text("{}")
    monkeypatch.setenv("BASHENV_SWEBENCH_SPECS", str(tmp_path / "specs.json"))
    with pytest.raises(TaskError, match="specs.json is not a .py file, wheel or sdist"):
        swebench_parsers()
    empty = tmp_path / "empty.whl"
    zipfile.ZipFile(empty, "w").close()
    monkeypatch.setenv("BASHENV_SWEBENCH_SPECS", str(empty))
    assert swebench_parsers() is None  # an archive without parsers: the built-ins


# --- runner names ---------------------------------------------------------------------------

def test_the_builtin_repository_table_is_swebenchs(theirs):
    assert {repo: name for repo, (name, _) in theirs.by_repo.items()} == BY_REPO
    assert set(BY_NAME) == set(theirs.by_name)
    for name, (function, _) in theirs.by_name.items():
        assert BY_NAME[name] == function  # an alias names the family SWE-bench's points at


def test_runner_names():
    assert for_runner("pydicom/pydicom").log_parser is log_parsers.parse_pytest_options
    assert for_runner("mwaskom/seaborn").log_parser is log_parsers.parse_seaborn
    assert for_runner("parse_log_pytest_v2").log_parser is log_parsers.parse_pytest_v2
    assert for_runner("parse_log_sphinx").log_parser is log_parsers.parse_pytest_v2
    # A repository SWE-bench does not map (its harness would stop): pytest -rA.
    assert for_runner("someone/else").log_parser is log_parsers.parse_pytest
    for runner, pytest_log in (("swebench:matplotlib/matplotlib", True),
                               ("swebench:parse_log_pytest_options", True),
                               ("swebench:django/django", False),
                               ("swebench:parse_log_sympy", False)):
        parser = parser_for(runner)
        assert parser.reads_pytest_log is pytest_log
        assert isinstance(hardened(parser, "pytest -rA t.py"), PytestLogAndJUnit) is pytest_log
    # A task may name either (the task file's pattern takes both).
    for runner in ("swebench:parse_log_pytest_v2", "swebench:pydicom/pydicom"):
        assert HiddenTests(runner=runner, fail_to_pass=["a.py::t"]).runner == runner
    for unknown in ("swebench:parse_log_nope", "swebench:", "swebench:pytest"):
        with pytest.raises(KeyError, match=f"no test-report parser '{unknown}'"):
            parser_for(unknown)


def test_swebenchs_own_parsers_are_used_when_around(theirs, sdist, monkeypatch):
    monkeypatch.setenv("BASHENV_SWEBENCH_SPECS", str(sdist))
    for runner, family in (("swebench:scikit-learn/scikit-learn", "parse_log_pytest_v2"),
                           ("swebench:parse_log_pytest_options", "parse_log_pytest_options"),
                           ("swebench:someone/else", "parse_log_pytest")):
        parser = parser_for(runner)
        # 4.1.0's own functions, run as the built-ins proven to give the same maps.
        assert parser.log_parser is FAMILIES[family].parse
        assert parser.family is FAMILIES[family]
    with pytest.raises(KeyError, match=f"nor in {sdist}"):
        parser_for("swebench:parse_log_nope")


def test_statuses_for_the_grader():
    parser = for_runner("pytest-dev/pytest")
    log = (LOGS / "pytest-rA.log").read_bytes()
    got = parser.parse(log, ["test_demo.py::test_xfails", "test_demo.py::test_errors",
                             "test_demo.py::test_fails", "test_demo.py::nothing"])
    assert got == {"test_demo.py::test_xfails": "passed", "test_demo.py::test_errors": "error",
                   "test_demo.py::test_fails": "failed", "test_demo.py::nothing": "missing"}
    # A word no status (v2 reads an `id STATUS`-shaped line's second word): neither passed
    # nor failed, as in SWE-bench.
    v2 = for_runner("astropy/astropy")
    assert v2.parse(b"a.py::t[x y] PASSED\n", ["a.py::t[x"]) == {"a.py::t[x": "skipped"}
    # A coloured summary line is still the runner's summary.
    colour = (LOGS / "pytest-8.3.5-own-suite-vv-classic-color.log").read_bytes()
    assert v2.verify(colour, 1, "") is None
    assert "summary says: 5 failed, 148 passed, 1 skipped" in (v2.verify(colour, 0, "") or "")


# --- hardened runs of id-rewriting families, for real ----------------------------------------

# Made tests/data/swebench_logs/pytest-rA-path-options.log (run in /tmp/h1logs/opts).
OPTIONS_TESTS = '''"""Parametrized tests whose ids hold absolute paths (as pydicom's do) and an enum (as
matplotlib's MouseButton ids read before Python 3.11)."""
import enum
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"


class MouseButton(enum.Enum):
    LEFT = 1
    RIGHT = 3


@pytest.mark.parametrize("path", sorted(str(p) for p in DATA.glob("*.txt")))
def test_reads(path):
    assert Path(path).read_text().strip() == "ok"


@pytest.mark.parametrize("pattern", [str(DATA / "*.txt"), "//server/share/a.txt", "data/a.txt"])
def test_pattern(pattern):
    assert pattern.endswith(".txt")


@pytest.mark.parametrize("button", [MouseButton.LEFT, MouseButton.RIGHT])
def test_button(button):
    assert button.value == 1


@pytest.mark.xfail(reason="on purpose")
@pytest.mark.parametrize("path", [str(DATA / "c.txt")])
def test_xfails(path):
    assert Path(path).read_text().strip() == "ok"
'''
FORGE = '''
import atexit


@atexit.register
def _forge():
    print("PASSED {}")
'''


def _hardened_run(tmp_path: Path, runner: str, options: str = "", conftest: str = "",
                  ) -> tuple[str | None, dict[str, str], PytestLogAndJUnit]:
    """test_options.py run for real under the hardened command; (distrust, statuses)."""
    (tmp_path / "data").mkdir()
    for name, text in (("a.txt", "ok\n"), ("b.txt", "ok\n"), ("c.txt", "bad\n")):
        (tmp_path / "data" / name).write_text(text)
    (tmp_path / "test_options.py").write_text(OPTIONS_TESTS)
    (tmp_path / "conftest.py").write_text(conftest)
    parser = hardened(parser_for(runner), "python -m pytest -rA test_options.py")
    assert isinstance(parser, PytestLogAndJUnit)
    base = f"{sys.executable} -m pytest -rA -p no:cacheprovider {options} test_options.py"
    command = parser.command(base, str(tmp_path / "report"))
    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True)
    report = (tmp_path / "report").read_bytes()
    ids = parser.report_ids(report)
    return parser.verify(report, done.returncode, done.stdout), parser.parse(report, ids), parser


def test_path_options_cut_by_the_parser_are_cross_checked(tmp_path):
    distrust, statuses, _ = _hardened_run(tmp_path, "swebench:pydicom/pydicom")
    assert distrust is None  # an honest run: the cut ids match their JUnit tests
    assert statuses["test_options.py::test_reads[/c.txt]"] == "failed"
    assert statuses["test_options.py::test_reads[/a.txt]"] == "passed"
    forged = tmp_path / "forged"
    forged.mkdir()
    line = f"test_options.py::test_reads[{forged}/data/c.txt]"
    distrust, statuses, _ = _hardened_run(forged, "swebench:pydicom/pydicom",
                                          conftest=FORGE.format(line))
    assert statuses["test_options.py::test_reads[/c.txt]"] == "passed"  # what the log says
    assert distrust == ("the test log says test_options.py::test_reads[/c.txt] passed, "
                        "pytest's JUnit report that it failed")


def test_renamed_mouse_buttons_are_cross_checked(tmp_path):
    distrust, statuses, _ = _hardened_run(tmp_path, "swebench:matplotlib/matplotlib")
    assert distrust is None
    assert statuses["test_options.py::test_button[3]"] == "failed"
    forged = tmp_path / "forged"
    forged.mkdir()
    distrust, _, _ = _hardened_run(forged, "swebench:matplotlib/matplotlib",
                                   conftest=FORGE.format("test_options.py::test_button[3]"))
    assert distrust is not None and "test_button[3] passed" in distrust


def test_a_coloured_verbose_run_is_read_and_trusted(tmp_path):
    distrust, statuses, _ = _hardened_run(
        tmp_path, "swebench:astropy/astropy", "-vv -o console_output_style=classic --color=yes")
    assert distrust is None
    assert statuses[f"test_options.py::test_reads[{tmp_path}/data/c.txt]"] == "failed"
    assert statuses["test_options.py::test_button[MouseButton.LEFT]"] == "passed"


def _changed_release(sdist: Path, tmp_path: Path, monkeypatch, extra: str) -> None:
    """SWE-bench 4.1.0's parser file with `extra` appended: a release bashenv has no proof
    for, so its functions run as they are, in a child process with a time limit."""
    wheel = tmp_path / "swebench-4.9.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(PARSER_MEMBER, _member_text(sdist) + extra.encode())
    monkeypatch.setenv("BASHENV_SWEBENCH_SPECS", str(wheel))


def test_an_unproven_release_runs_swebench_own_function_in_a_child(sdist, tmp_path,
                                                                   monkeypatch):
    _changed_release(sdist, tmp_path, monkeypatch, "\n# a later release\n")
    parser = for_runner("psf/requests")
    assert not swebench_parsers().proven
    assert parser.log_parser.__name__ == "parse_log_pytest_options"
    log = (LOGS / "requests-2.32.3-rA.log").read_bytes()
    assert parser.statuses(log) == log_parsers.parse_pytest_options(log.decode())


HANGS = """
def parse_log_pytest(log, test_spec):
    while True:
        pass


def parse_log_custom(log, test_spec):
    while True:
        pass


MAP_REPO_TO_PARSER_PY["pallets/flask"] = parse_log_pytest
"""


def test_a_parse_that_never_ends_is_cut_off(sdist, tmp_path, monkeypatch):
    """A log crafted to make a parser backtrack for hours: past the limit, the family's
    linear built-in reads it; a parser of no known family yields nothing (unresolved)."""
    from bashenv.swebench import swebench_parsers as loader

    _changed_release(sdist, tmp_path, monkeypatch, HANGS)
    monkeypatch.setattr(loader, "PARSE_TIMEOUT_S", 3.0)
    log = b"PASSED t.py::a\nFAILED t.py::b - boom\n"
    assert for_runner("pallets/flask").statuses(log) == {"t.py::a": "PASSED", "t.py::b": "FAILED"}
    assert for_runner("parse_log_custom").statuses(log) == {}


def test_eval_cache_keys_follow_the_parsers_in_use(sdist, tmp_path, monkeypatch):
    """A cached verdict is reused only under the same parser code: bashenv's built-ins, or
    which SWE-bench file was loaded."""
    from bashenv.swebench.evaluate import grader_digest

    (tmp_path / "python.py").write_text("MAP_REPO_VERSION_TO_SPECS_PY = {}\n")
    monkeypatch.setenv("BASHENV_SWEBENCH_SPECS", str(tmp_path / "python.py"))
    builtin = grader_digest()
    monkeypatch.setenv("BASHENV_SWEBENCH_SPECS", str(sdist))
    released = grader_digest()
    _changed_release(sdist, tmp_path, monkeypatch, "\n# a later release\n")
    assert len({builtin, released, grader_digest()}) == 3
