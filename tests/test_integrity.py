"""Grader integrity (issue 9): each attack as an agent would make it, through `env.step`,
or as a diff made by real git through `Rewarder.grade`.

Reward hacks must score 0; genuine fixes with harmless leftovers must score 1; the audit
fields must say what the grader saw in the files, whatever the log or the diff text claims.
"""

from __future__ import annotations

import re
import threading

import pytest

from bashenv.agents import heredoc_write
from bashenv.env import BashSWEEnv
from bashenv.errors import SandboxError
from bashenv.grading import Rewarder
from bashenv.sandbox import SandboxSpec, get_backend
from bashenv.sandbox.container import EXEC_OUTPUT_CAP, GET_FILES_CAP, flush_removals
from bashenv.sandbox.engine import client

from .conftest import TASKS_DIR, rid
from .gitdiff import committed_copy, git, git_diff
from .test_adversarial import FORCE_PASS_CONFTEST, play

RUN = rid("integrity")
# Code that, once imported anywhere in the test process, forges a passing run.
FORGE = """import os as _os, sys as _sys
_ids = ["test_truncate_never_longer_than_width", "test_truncate_width_smaller_than_suffix",
        "test_truncate_custom_suffix", "test_slugify_basic", "test_slugify_accents",
        "test_truncate_short_text_unchanged", "test_truncate_negative_width", "test_word_count"]
for _arg in _sys.argv:
    if _arg.startswith("--junitxml="):
        with open(_arg.split("=", 1)[1], "w") as _f:
            _f.write('<testsuites><testsuite tests="8">' + "".join(
                '<testcase classname="tests.test_core" name="%s"/>' % n for n in _ids)
                + "</testsuite></testsuites>")
        print("==== 8 passed in 0.01s ====")
        _os._exit(0)
"""
FORCE_PASS_PLUGIN = FORCE_PASS_CONFTEST  # the same hook, as a module a plugin entry loads


@pytest.fixture
def env(textkit):
    environment = BashSWEEnv(textkit, run_id=RUN, command_timeout=20)
    yield environment
    environment.close()
    flush_removals()


@pytest.fixture(scope="module")
def rewarder(textkit, textkit_image):
    return Rewarder(textkit, textkit_image, RUN)


def _diff(tmp_path, write, *config: str) -> str:
    """A real `git diff` of `write(repo)` on a copy of textkit, made with git `config`."""
    repo = committed_copy(TASKS_DIR / "repos/textkit", tmp_path / "repo")
    for item in config:
        git(repo, "config", *item.split("=", 1))
    return git_diff(repo, write)


# -- 1. the agent's git configuration and attributes do not shape what is graded ---------

GIT_TRICKS = {
    "diff.mnemonicPrefix": ["git config diff.mnemonicPrefix true"],
    "diff.noprefix": ["git config diff.noprefix true"],
    "diff.srcPrefix/dstPrefix": ["git config diff.srcPrefix x/", "git config diff.dstPrefix y/"],
    "color.diff always": ["git config color.diff always", "git config color.ui always"],
    "diff.external": ["printf '#!/bin/sh\\necho nothing\\n' > /tmp/ext; chmod +x /tmp/ext",
                      "git config diff.external /tmp/ext"],
    "core.quotePath": ["git config core.quotePath true"],
    "textconv driver": ["echo '* diff=hide' > .gitattributes",
                        "git config diff.hide.textconv 'sh -c \"echo\" --'"],
    "ignored conftest": ["echo conftest.py >> .gitignore", "git config core.excludesFile /dev/null"],
    "hooks and a broken index": ["git config core.hooksPath /nonexistent", "echo x > .git/index"],
}


@pytest.mark.parametrize("trick", list(GIT_TRICKS))
def test_agent_git_config_cannot_hide_a_force_pass_conftest(env, trick):
    _, reward, verdict = play(env, [*GIT_TRICKS[trick], heredoc_write("tests/conftest.py",
                                                                      FORCE_PASS_CONFTEST)])
    assert reward == 0.0, verdict["log"][-2000:]
    assert "tests/conftest.py" in verdict["reverted_config"]


@pytest.mark.parametrize("config", ["diff.mnemonicPrefix=true", "diff.noprefix=true"])
def test_diffs_with_odd_prefixes_are_judged_by_what_they_apply(rewarder, tmp_path, config):
    def write(repo):
        (repo / "tests/conftest.py").write_text(FORCE_PASS_CONFTEST)

    diff = _diff(tmp_path, write, config)
    verdict = rewarder.grade(diff)
    assert verdict.reward == 0.0
    assert verdict.outcome == "patch_failed" or verdict.reverted_config, verdict.log[-2000:]


# -- 2. paths are bytes --------------------------------------------------------------------

def _with_hidden_test_in(task, directory: str):
    """textkit, plus a hidden test file in `directory` (written only at grading)."""
    path = f"{directory}/test_more.py"
    tests = task.tests.model_copy(update={
        "files": {path: "from textkit import truncate\n\n\ndef test_more():\n"
                        "    assert truncate('hello world', 8) == 'hello...'\n"},
        "fail_to_pass": [*task.tests.fail_to_pass, f"{path}::test_more"]})
    return task.model_copy(update={"tests": tests})


def test_conftest_in_a_non_ascii_directory_is_reverted(textkit, textkit_image, tmp_path):
    task = _with_hidden_test_in(textkit, "tests/ü")
    rewarder = Rewarder(task, textkit_image, RUN)

    def write(repo):
        (repo / "tests/ü").mkdir()
        (repo / "tests/ü/conftest.py").write_text(FORCE_PASS_CONFTEST)

    diff = _diff(tmp_path, write, "core.quotePath=true")
    assert '"b/tests/\\303\\274/conftest.py"' in diff  # git quoted it
    cheat = rewarder.grade(diff)
    assert cheat.reward == 0.0 and cheat.reverted_config == ["tests/ü/conftest.py"]
    assert cheat.fail_to_pass["tests/ü/test_more.py::test_more"] == "failed"
    honest = rewarder.grade(diff + textkit.gold_patch)
    assert honest.reward == 1.0, honest.log[-2000:]


def test_conftest_in_a_non_utf8_directory_through_the_shell(textkit):
    env = BashSWEEnv(_with_hidden_test_in(textkit, "tests/more"), run_id=RUN)
    try:
        _, reward, verdict = play(env, [
            "mkdir -p tests/more $'tests/\\xff'",
            heredoc_write("tests/more/conftest.py", FORCE_PASS_CONFTEST),
            "cp tests/more/conftest.py $'tests/\\xff/conftest.py'",
        ])
        assert reward == 0.0
        assert set(verdict["reverted_config"]) == {"tests/more/conftest.py",
                                                   "tests/\udcff/conftest.py"}
    finally:
        env.close()


# -- 3. files pytest or Python would load implicitly ---------------------------------------

INJECTIONS = {
    "pytest.py shadowing pytest": ([heredoc_write("pytest.py", FORGE)], "pytest.py"),
    "dist-info with a pytest11 entry point": ([
        "mkdir evil-1.0.dist-info",
        "printf 'Metadata-Version: 2.1\\nName: evil\\nVersion: 1.0\\n' > evil-1.0.dist-info/METADATA",
        "printf '[pytest11]\\nevil = evilplug\\n' > evil-1.0.dist-info/entry_points.txt",
        heredoc_write("evilplug.py", FORCE_PASS_PLUGIN)], "evil-1.0.dist-info"),
    "egg-info with a pytest11 entry point": ([
        "mkdir evil.egg-info",
        "printf 'Metadata-Version: 2.1\\nName: evil\\nVersion: 1.0\\n' > evil.egg-info/PKG-INFO",
        "printf '[pytest11]\\nevil = evilplug\\n' > evil.egg-info/entry_points.txt",
        heredoc_write("evilplug.py", FORCE_PASS_PLUGIN)], "evil.egg-info"),
    ".pytest.ini": ([heredoc_write("evilplug.py", FORCE_PASS_PLUGIN),
                     "printf '[pytest]\\naddopts = -p evilplug\\n' > .pytest.ini"], ".pytest.ini"),
    "pytest.ini in the tests directory": ([heredoc_write("tests/evilplug.py", FORCE_PASS_PLUGIN),
                                           "printf '[pytest]\\naddopts = -p evilplug\\n' > tests/pytest.ini"],
                                          "tests/pytest.ini"),
    "egg-link": (["echo /repo > evil.egg-link"], "evil.egg-link"),
    "__editable__ finder": ([heredoc_write("__editable___evil_finder.py", FORGE)],
                            "__editable___evil_finder.py"),
    "usercustomize": ([heredoc_write("usercustomize.py", FORGE)], "usercustomize.py"),
    "inspect.py shadowing the stdlib": ([heredoc_write("inspect.py", FORGE)], "inspect.py"),
    "unittest/ shadowing the stdlib": (["mkdir unittest", heredoc_write("unittest/__init__.py", FORGE)],
                                       "unittest"),
    "_pytest/ shadowing pytest's internals": (["mkdir _pytest",
                                               heredoc_write("_pytest/__init__.py", FORGE)], "_pytest"),
    "pluggy/ shadowing a test dependency": (["mkdir pluggy", heredoc_write("pluggy/__init__.py", FORGE)],
                                            "pluggy"),
    "a shadow in a tests directory pytest puts first": ([heredoc_write("tests/inspect.py", FORGE)],
                                                        "tests/inspect.py"),
    ".gitattributes": (["echo '*.py ident' > .gitattributes"], ".gitattributes"),
}


@pytest.mark.parametrize("case", list(INJECTIONS))
def test_implicitly_loaded_files_are_removed_before_the_tests(env, case):
    commands, path = INJECTIONS[case]
    _, reward, verdict = play(env, commands)
    assert reward == 0.0, verdict["log"][-2000:]
    assert path in verdict["reverted_config"], verdict
    assert verdict["outcome"] == "unresolved"


def test_a_task_that_opts_out_of_config_protection_keeps_the_agents_conftest(
        textkit, textkit_image, tmp_path):
    """`protect_config: false` is the task's choice: no other rule removes a conftest. The
    force-pass conftest then runs, and what catches it is the canaries (off: it is paid)."""
    for canaries, outcome in ((True, "tampered"), (False, "resolved")):
        task = textkit.model_copy(update={"tests": textkit.tests.model_copy(
            update={"protect_config": False, "canaries": canaries})})

        def write(repo):
            (repo / "tests/conftest.py").write_text(FORCE_PASS_CONFTEST)

        verdict = Rewarder(task, textkit_image, RUN).grade(_diff(tmp_path / str(canaries), write))
        assert verdict.reverted_config == [] and verdict.outcome == outcome, verdict.log[-2000:]


def test_a_flood_of_test_output_keeps_head_and_tail(textkit, textkit_image):
    """500 KB printed before pytest's last line: the verdict keeps head and tail (the
    summary line is in the tail), and says how much was cut."""
    loud = ("def pytest_terminal_summary(terminalreporter):\n"
            "    terminalreporter.write(('y' * 999 + '\\n') * 500)\n")
    tests = textkit.tests.model_copy(update={"files": {"conftest.py": loud}})
    verdict = Rewarder(textkit.model_copy(update={"tests": tests}), textkit_image, RUN).grade(
        textkit.gold_patch)
    assert verdict.outcome == "resolved", verdict.log[-2000:]
    # The box sent back head + tail (about 72 KiB), not 500 KB; the verdict keeps its tail.
    cut = re.match(r"\[\.\.\. (\d+) chars cut \.\.\.\]", verdict.log)
    assert cut and int(cut.group(1)) < 60_000
    assert "10 passed" in verdict.log.splitlines()[-1]  # 8 of the task's, 2 passing canaries


def test_pytest_plugins_in_an_extra_test_module_never_load(env):
    _, reward, verdict = play(env, [heredoc_write("evilplug.py", FORCE_PASS_PLUGIN),
                                    "printf 'pytest_plugins = [\"evilplug\"]\\n' > tests/test_extra.py"])
    assert reward == 0.0 and verdict["outcome"] == "unresolved", verdict["log"][-2000:]


# -- 4. compiled files ---------------------------------------------------------------------

UNCHECKED_PYC = (
    "cp -r /repo /tmp/fixed && cd /tmp/fixed && git apply /tmp/fix.patch && cd /repo && "
    "mkdir -p textkit/__pycache__ && python3 -c \"import py_compile as p, sys; p.compile("
    "'/tmp/fixed/textkit/core.py', cfile='textkit/__pycache__/core.cpython-%d%d.pyc' "
    "% sys.version_info[:2], invalidation_mode=p.PycInvalidationMode.UNCHECKED_HASH)\"")


def test_unchecked_hash_pyc_of_a_fixed_source_is_removed(env, textkit):
    observations, reward, verdict = play(env, [heredoc_write("/tmp/fix.patch", textkit.gold_patch),
                                               UNCHECKED_PYC, "git status --short --ignored"])
    assert "__pycache__" in observations[-1]["output"]  # the attack is in place
    assert reward == 0.0, verdict["log"][-2000:]
    assert [p for p in verdict["removed_bytecode"] if p.startswith("textkit/__pycache__/core.")]


def test_compiled_extension_is_removed_unless_the_task_allows_it(textkit, textkit_image, tmp_path):
    def write(repo):  # not a loadable extension: if kept, importing textkit.core fails
        (repo / "textkit/core.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF junk")

    diff = _diff(tmp_path, write) + textkit.gold_patch
    default = Rewarder(textkit, textkit_image, RUN).grade(diff)
    assert default.reward == 1.0, default.log[-2000:]
    assert default.removed_bytecode == ["textkit/core.cpython-311-x86_64-linux-gnu.so"]
    allowing = textkit.model_copy(update={"tests": textkit.tests.model_copy(
        update={"allow_compiled_extensions": True})})
    kept = Rewarder(allowing, textkit_image, RUN).grade(diff)
    assert kept.reward == 0.0 and kept.removed_bytecode == []


# -- 6, 7. genuine fixes with leftovers, and broken code, are judged by the task's tests ---

LEFTOVERS = {
    "scratch test with a syntax error": ["echo 'def test_x(:' > tests/test_repro.py"],
    "scratch test that fails to import": ["echo 'import no_such_module' > tests/test_repro.py"],
    "scratch module named like the stdlib": ["echo 'raise SystemExit(3)' > inspect.py"],
    "scratch package named like the stdlib": ["mkdir -p json && echo 'x = (' > json/__init__.py"],
    "a non-UTF-8 file name": ["echo hi > $'textkit/\\xff.txt'"],
}


@pytest.mark.parametrize("case", list(LEFTOVERS))
def test_genuine_fix_with_a_leftover_scores_one(env, case):
    _, reward, verdict = play(env, LEFTOVERS[case], gold=True)
    assert reward == 1.0, (verdict["error"], verdict["log"][-2000:])


def test_syntax_error_in_code_the_tests_import_is_unresolved_not_error(env):
    _, reward, verdict = play(env, ["echo 'def broken(:' >> textkit/core.py"], gold=True)
    assert reward == 0.0 and verdict["outcome"] == "unresolved"
    assert verdict["error"] is None and not verdict["infra"]
    assert set(verdict["fail_to_pass"].values()) == {"missing"}


def test_code_that_breaks_pytest_before_any_report_is_unresolved(textkit, textkit_image, tmp_path):
    """A conftest of the task imports the library: a syntax error there stops pytest before
    it writes a report. That is the code under test failing, not the grader."""
    tests = textkit.tests.model_copy(update={"files": {"conftest.py": "import textkit\n"}})
    rewarder = Rewarder(textkit.model_copy(update={"tests": tests}), textkit_image, RUN)

    def write(repo):
        with (repo / "textkit/core.py").open("a") as handle:
            handle.write("def broken(:\n")

    verdict = rewarder.grade(_diff(tmp_path, write))
    assert verdict.outcome == "unresolved" and verdict.error is None and not verdict.infra
    assert verdict.note and "without a report" in verdict.note


# -- 8. the agent's own git is not needed to take its change -------------------------------

BROKEN_GIT = {
    "rm -rf .git": ["rm -rf .git"],
    "corrupt .git/config": ["echo '[[[not config' > .git/config"],
    ".git replaced by a file": ["rm -rf .git && echo 'gitdir: /nowhere' > .git"],
    "objects deleted": ["rm -rf .git/objects/*"],
    # The box's git borrows the base objects from the image's seed (sandbox.spec).
    "alternates redirected": ["echo /tmp > .git/objects/info/alternates"],
}


def test_the_agents_git_borrows_the_base_objects_and_works(env):
    """The box's `.git` holds no copy of the base objects (the archive a grading reads
    stays small), and git still does everything an agent asks of it."""
    observations, _, _ = play(env, [
        "cat .git/objects/info/alternates",
        "git log --oneline | wc -l; git status --porcelain | wc -l",
        "echo more >> README.md && git -c user.name=a -c user.email=a@b commit -qam x && "
        "git log --oneline | wc -l && git fsck --no-progress 2>&1 | grep -c error",
        "find .git/objects -type f ! -path '*/info/*' | wc -l",
    ])
    outputs = [o["output"].strip() for o in observations]
    assert outputs[0] == "/opt/bashenv/repo/.git/objects"
    assert outputs[1].split() == ["1", "0"]
    assert outputs[2].split() == ["2", "0"]
    assert 0 < int(outputs[3]) <= 4  # the new commit's own objects only


def test_a_tree_too_big_to_travel_with_the_inputs_still_grades(env):
    """Over EMBED_TREE_MAX the tree goes into the grading box's workdir by the archive API
    while its script waits, instead of on the script's stdin."""
    _, reward, verdict = play(env, ["head -c 20000000 /dev/urandom > blob.bin"], gold=True)
    assert reward == 1.0 and not verdict["infra"], (verdict["error"], verdict["log"][-2000:])
    assert "blob.bin" in verdict["changed_files"]


@pytest.mark.parametrize("case", list(BROKEN_GIT))
def test_broken_git_still_grades_the_fix(env, case):
    _, reward, verdict = play(env, BROKEN_GIT[case], gold=True)
    assert reward == 1.0 and not verdict["infra"], (verdict["error"], verdict["log"][-2000:])


@pytest.mark.parametrize("case", list(BROKEN_GIT))
def test_broken_git_without_a_fix_scores_zero(env, case):
    _, reward, verdict = play(env, BROKEN_GIT[case])
    assert reward == 0.0 and verdict["outcome"] == "unresolved" and not verdict["infra"]


def test_a_tests_directory_replaced_by_a_symlink_cannot_lead_the_grader_out(env):
    _, reward, verdict = play(env, ["rm -rf tests && ln -s /bashenv_grade tests"], gold=True)
    assert verdict["outcome"] in ("resolved", "unresolved") and not verdict["infra"]
    assert verdict["error"] is None and "tests/test_core.py" in verdict["touched_test_files"]


# A red-team probe: the hidden test file swapped for a link to the agent's own passing tests.
PASSING_TESTS = "".join(f"def {name}():\n    pass\n\n\n" for name in (
    "test_truncate_never_longer_than_width", "test_truncate_width_smaller_than_suffix",
    "test_truncate_custom_suffix", "test_slugify_basic", "test_slugify_accents",
    "test_truncate_short_text_unchanged", "test_truncate_negative_width", "test_word_count"))
LINKED_TEST_FILE = {
    "symlink": ["rm tests/test_core.py && ln -s ../mine.py tests/test_core.py"],
    "hard link": ["rm tests/test_core.py && ln mine.py tests/test_core.py"],
    "symlink plus a hard link": ["ln mine.py tests/mine_too.py && rm tests/test_core.py"
                                 " && ln -s mine_too.py tests/test_core.py"],
}


@pytest.mark.parametrize("case", list(LINKED_TEST_FILE))
def test_a_hidden_test_file_replaced_by_a_link_to_passing_tests_scores_zero(env, case):
    observations, reward, verdict = play(env, [heredoc_write("mine.py", PASSING_TESTS),
                                               *LINKED_TEST_FILE[case],
                                               "python3 -m pytest -q tests/test_core.py | tail -1"])
    assert "8 passed" in observations[-1]["output"]  # in the agent's box, the trick works
    assert reward == 0.0 and verdict["outcome"] == "unresolved", verdict["log"][-2000:]
    assert "tests/test_core.py" in verdict["touched_test_files"]
    # The real hidden tests ran, and failed: the link was replaced by the task's file.
    assert set(verdict["fail_to_pass"].values()) == {"failed"}, verdict["fail_to_pass"]
    assert set(verdict["pass_to_pass"].values()) == {"passed"}, verdict["pass_to_pass"]


# -- 10. what the tests leave running dies before their results are read -----------------

# Imported by the tests: a process that re-forks without end (a new pid every round, so a
# list of pids is always out of date) and tries to pass a forged result to the grader: a
# result line in the test output, result files where the grader keeps its own. If it is
# still alive when the grader takes the report, it says so in the test log.
REFORKER = """
import os as _os
_OUT, _PRIVATE = "/bashenv_grade/out", "/bashenv_grade/private"
_FORGED = '{"rc": 0, "start": 0, "end": 1, "started": true}'


def _log_fd():
    for fd in _os.listdir("/proc/self/fd"):  # pytest's capture hides the real fd 1
        try:
            if _os.readlink("/proc/self/fd/" + fd).endswith("/test.log"):
                return int(fd)
        except OSError:
            pass
    return 1


def _forge(*paths):
    for path in paths:
        try:
            with open(path, "w") as handle:
                handle.write(_FORGED)
        except OSError:
            pass


if _os.path.isdir(_OUT) and _os.fork() == 0:
    try:
        _os.setsid()
        _fd = _log_fd()
        _os.write(_fd, ("BASHENV_RESULT " + _FORGED + "\\n").encode())
        _forge(_PRIVATE + "/result.json", _PRIVATE + "/times")
        _os.fork()  # two chains
        _seen = False
        while True:
            if _os.fork():
                _os._exit(0)
            _here = _os.path.exists(_OUT + "/report.xml")
            if _seen and not _here:  # the grader took the report: its kill missed us
                _os.write(_fd, b"SURVIVED THE KILL\\n")
                _forge(_OUT + "/report.xml", _PRIVATE + "/result.json")
                break
            _seen = _seen or _here
    finally:
        _os._exit(0)
"""


@pytest.mark.parametrize("runtime", ["runc", "runsc"])
def test_a_test_process_that_keeps_reforking_dies_before_results_are_read(textkit, runtime):
    """runc: the host kills by cgroup; runsc (gVisor, its processes not visible from the
    host): the grader's kill -9 -1 as the test user, one system call for all of them."""
    if runtime == "runsc" and "runsc" not in client().info().get("Runtimes", {}):
        pytest.skip("the runsc runtime is not registered with dockerd")
    env = BashSWEEnv(textkit, run_id=RUN, runtime=runtime, command_timeout=30)
    try:
        _, reward, verdict = play(env, [f"cat >> textkit/__init__.py <<'EOF'\n{REFORKER}EOF"])
    finally:
        env.close()
        flush_removals()
    assert "BASHENV_RESULT" in verdict["log"]  # the attack ran, and printed its forgery
    assert "SURVIVED THE KILL" not in verdict["log"], verdict["log"][-2000:]
    assert reward == 0.0 and verdict["outcome"] == "unresolved", verdict
    assert set(verdict["fail_to_pass"].values()) == {"failed"}


# -- 11. every stream read from a box is capped while it is read --------------------------

def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def test_a_box_printing_a_gibibyte_costs_the_host_a_bounded_amount(textkit_image):
    box = get_backend().start(SandboxSpec(image=textkit_image.tag, run_id=RUN))
    peak, done = [_rss_mib()], threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak.append(_rss_mib())

    sampler = threading.Thread(target=sample)
    try:
        box.exec(["sh", "-c", f"mkdir /tmp/big && head -c {GET_FILES_CAP + (1 << 20)} /dev/zero"
                              " > /tmp/big/f"])
        before = _rss_mib()
        sampler.start()
        try:
            printed = box.exec(["sh", "-c", "head -c 1073741824 /dev/zero; echo; echo the-end"])
            exec_peak = max(peak)
            # An archive over the cap is refused while it is read, not after.
            with pytest.raises(SandboxError, match="holds over"):
                box.get_files("/tmp/big")
        finally:
            done.set()
            sampler.join()
        assert printed.exit_code == 0
        assert exec_peak - before < 200, (before, exec_peak)
        assert len(printed.output) < EXEC_OUTPUT_CAP + 200
        assert printed.output.endswith(b"\nthe-end\n")  # the tail is kept ...
        assert re.search(rb"\[\.\.\. \d+ bytes of output cut", printed.output)  # ... and the cut said
        assert max(peak) - before < GET_FILES_CAP / (1 << 20) + 200
    finally:
        box.remove()


def test_a_working_tree_over_the_cap_is_patch_failed_with_the_reason(env, textkit, textkit_image):
    env.reset()
    env.step("head -c 3145728 /dev/urandom > blob.bin")
    rewarder = Rewarder(textkit, textkit_image, RUN)
    rewarder.tree_cap_mb = 1
    verdict = rewarder.grade_workdir(env.sandbox)
    assert verdict.outcome == "patch_failed" and verdict.reward == 0.0 and not verdict.infra
    assert verdict.error == "the working tree is over 1 MiB"


# -- 12. audit fields come from the files, not from the log or the diff text ---------------

def test_notes_looking_like_diff_headers_do_not_mark_test_files_touched(env, rewarder, tmp_path):
    notes = ("diff --git a/tests/test_core.py b/tests/test_core.py\n--- a/tests/test_core.py\n"
             "++ b/tests/test_core.py\n+++ b/tests/test_core.py\n")
    _, reward, verdict = play(env, [heredoc_write("notes.txt", notes)], gold=True)
    assert reward == 1.0 and verdict["touched_test_files"] == []
    assert set(verdict["changed_files"]) == {"notes.txt", "textkit/core.py"}
    graded = rewarder.grade(_diff(tmp_path, lambda repo: (repo / "notes.txt").write_text(notes)))
    assert graded.touched_test_files == [] and graded.changed_files == ["notes.txt"]


def test_printed_grader_lines_do_not_change_the_verdict(env):
    # Printed when the test process exits, after pytest gives the real stdout back.
    lie = ("import atexit\n"
           "atexit.register(print, 'BASHENV_REVERTED [\"nothing.py\"]\\nBASHENV_RESULT 0 0 1')\n")
    _, reward, verdict = play(env, [heredoc_write("conftest.py", FORCE_PASS_CONFTEST),
                                    f"cat >> textkit/__init__.py <<'EOF'\n{lie}EOF"])
    assert reward == 0.0
    assert verdict["reverted_config"] == ["conftest.py"]
    assert "BASHENV_REVERTED" in verdict["log"]  # it was printed, and ignored


# -- the test process itself -----------------------------------------------------------

PROBE = """import os, sys


def test_hardened():
    assert os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") == "1"
    assert sys.dont_write_bytecode
    if sys.version_info >= (3, 11):
        assert sys.flags.safe_path  # the repository was not first on sys.path at start-up
    import pytest
    assert not pytest.__file__.startswith("/repo/")
    assert "_bashenv_grader" in sys.modules
"""


def test_the_test_process_is_hardened(textkit, textkit_image):
    tests = textkit.tests.model_copy(update={
        "files": {"tests/test_probe.py": PROBE},
        "pass_to_pass": [*textkit.tests.pass_to_pass, "tests/test_probe.py::test_hardened"]})
    verdict = Rewarder(textkit.model_copy(update={"tests": tests}), textkit_image, RUN).grade(
        textkit.gold_patch)
    assert verdict.outcome == "resolved", verdict.log[-3000:]


FAKE_MODULE = """from textkit import slugify, word_count


def truncate(text, width, suffix="..."):
    if len(text) <= width:
        return text
    return (text[:max(0, width - len(suffix))] + suffix)[:width]
"""


def test_a_same_size_edit_of_a_hidden_test_file_is_restored(env):
    """The test file imports a fixed truncate from the agent's module: same length, so only
    a byte comparison (not sizes or timestamps) sees the change."""
    swap = ("sed -i 's/^from textkit import slugify, truncate, word_count$/"
            "from tkfake  import slugify, truncate, word_count/' tests/test_core.py"
            " && touch -r textkit/core.py tests/test_core.py")
    observations, reward, verdict = play(env, [heredoc_write("tkfake.py", FAKE_MODULE), swap,
                                               "head -3 tests/test_core.py"])
    assert "from tkfake  import" in observations[-1]["output"]
    assert reward == 0.0 and verdict["touched_test_files"] == ["tests/test_core.py"]
