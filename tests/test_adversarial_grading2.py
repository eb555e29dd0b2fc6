"""Red team against the grading path of 2026-11-27 (62aaf7f, b9dbedb): the box's `.git`
borrows the seed's objects, the tree is read from the agent's box while a pre-started
grading process waits for it on its stdin, the script's stderr shares its stdout.

Each attack is made as an agent would, through `env.step`; it must neither pay (a reward
without the fix) nor take a genuine fix's reward away as `infra` (an engine fault).
"""

from __future__ import annotations

import pytest

from bashenv.agents import heredoc_write
from bashenv.env import BashSWEEnv
from bashenv.sandbox.container import flush_removals

from .conftest import rid
from .test_adversarial import play

RUN = rid("adversarial-grading2")


@pytest.fixture
def env(textkit):
    environment = BashSWEEnv(textkit, run_id=RUN, command_timeout=20)
    yield environment
    environment.close()
    flush_removals()


# What the agent leaves in its tree that the host's tar reader (tree.py) or the grading
# box's extraction must take: odd metadata the engine's archive carries as PAX records.
ODD_TREES = {
    # before 1970 and far future: PAX mtime records (floats to Python's tarfile)
    "timestamps": ["touch -d @-86400 README.md && touch -h -d @-1 README.md",
                   "echo x > future.txt && touch -d @99999999999 future.txt",
                   "mkdir old && touch -d @-2208988800 old"],
    # user xattrs (tmpfs has them): a name with '=', values with newlines and NUL
    "xattrs": ["python3 - <<'EOF'\nimport os\n"
               "open('attrs.txt', 'w').write('x')\n"
               "for name, value in [(b'user.a=b', b'1\\n2'), (b'user.z', b'\\x00\\xff=\\n' * 500),"
               " (b'user.' + b'n' * 200, b'v')]:\n"
               "    try:\n        os.setxattr('attrs.txt', name, value)\n"
               "    except OSError as exc:\n        print('xattr', exc)\nEOF"],
    # a path longer than PATH_MAX (4096): the engine cannot stat it by its full name
    "path over PATH_MAX": ["top=$PWD; d=$(printf 'd%.0s' $(seq 200)); for i in $(seq 25); do "
                           "mkdir $d && cd $d || break; done; echo deep > deep.txt; cd \"$top\"; "
                           "find . -name deep.txt | wc -c"],
    # the agent's .git made useless or hostile: it is never read, only counted to the cap
    ".git a symlink to /": ["rm -rf .git && ln -s / .git"],
    "alternates loop": ["echo \"$PWD/.git/objects\" > .git/objects/info/alternates && "
                        "mkdir -p sub/.git/objects/info && echo /proc/self/root > "
                        "sub/.git/objects/info/alternates"],
}


# A command whose output shows the odd state is really there (the attack was made).
PROOF = {
    "timestamps": ("stat -c %Y README.md future.txt old", "-1\n99999999999\n-2208988800"),
    "xattrs": ("python3 -c \"import os; print(len(os.listxattr('attrs.txt')))\"", "3"),
    "path over PATH_MAX": ("find . -name deep.txt | wc -c", None),
    ".git a symlink to /": ("readlink .git", "/"),
    "alternates loop": ("cat .git/objects/info/alternates", "/.git/objects"),
}


@pytest.mark.parametrize("case", list(ODD_TREES))
def test_odd_trees_grade_the_fix_not_an_engine_fault(env, case):
    command, expected = PROOF[case]
    observations, reward, verdict = play(env, [*ODD_TREES[case], command], gold=True)
    shown = observations[-1]["output"].strip()
    assert (int(shown) > 4096) if expected is None else shown.endswith(expected), shown
    assert not verdict["infra"], verdict["error"]
    assert reward == 1.0, (verdict["outcome"], verdict["error"], verdict["log"][-1500:])


# -- the grading stream: stderr now shares the script's stdout ------------------------------

# Imported with the library by the tests (as the test user): at exit it prints, on every
# descriptor it can reach, results lines with guessed tokens followed by a tar of a passing
# result, and tries to steal the host's answer from any stdin it can open. The real token
# is 32 hex digits read from a root-only file; the tests' output is a file.
CHANNEL_FORGERY = r'''
import atexit as _atexit, glob as _glob, io as _io, os as _os, tarfile as _tarfile


def _forged():
    names = ["test_truncate_never_longer_than_width", "test_truncate_width_smaller_than_suffix",
             "test_truncate_custom_suffix", "test_slugify_basic", "test_slugify_accents",
             "test_truncate_short_text_unchanged", "test_truncate_negative_width"]
    files = {"result.json": b'{"rc": 0, "start": 1, "end": 2, "started": true}',
             "report.xml": ('<testsuites><testsuite tests="7">' + "".join(
                 '<testcase classname="tests.test_core" name="%s"/>' % n for n in names)
                 + "</testsuite></testsuites>").encode(),
             "log.txt": b"==== 7 passed in 0.01s ====\n", "canaries.json": b"[]",
             "prepared.json": b"{}"}
    buf = _io.BytesIO()
    with _tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = _tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, _io.BytesIO(data))
    token = "0" * 32
    try:
        token = open("/bashenv_grade/in/token").read().strip()
    except OSError:
        pass
    lines = b"".join(b"\n%s:tests-done\n" % t.encode() for t in (token, "f" * 32))
    return lines + b"\n%s:results 0\n" % token.encode() + buf.getvalue()


def _spray():
    data = _forged()
    targets = {"/dev/stdout", "/dev/stderr", "/proc/1/fd/1", "/proc/1/fd/2"}
    targets |= set(_glob.glob("/proc/[0-9]*/fd/[12]"))
    for path in sorted(targets):
        try:
            fd = _os.open(path, _os.O_WRONLY | _os.O_NONBLOCK)
            _os.write(fd, data)
            _os.close(fd)
        except OSError:
            pass
    for path in _glob.glob("/proc/[0-9]*/fd/0"):
        try:
            fd = _os.open(path, _os.O_RDONLY | _os.O_NONBLOCK)
            _os.read(fd, 4096)
            _os.close(fd)
        except OSError:
            pass
    for fd in (1, 2):
        try:
            _os.write(fd, data)
        except OSError:
            pass


_spray()
_atexit.register(_spray)
'''


def test_forged_grader_lines_and_results_tar_from_the_tests_change_nothing(env):
    """Printed by code the tests import, at import and at exit, on every descriptor it can
    open, and as file names in the tree (a root tool that prints a name would carry it)."""
    name = "$'\\n'$(printf '%032d' 0)$':results 0\\n'"
    _, reward, verdict = play(env, [
        f"cat >> textkit/__init__.py <<'EOF'\n{CHANNEL_FORGERY}EOF",
        f"touch {name} && ls | wc -l",
    ])
    assert reward == 0.0 and not verdict["infra"], verdict["error"]
    assert verdict["outcome"] == "unresolved" and verdict["error"] is None, verdict["error"]
    assert verdict["fail_to_pass"] and "passed" not in verdict["fail_to_pass"].values()
    assert "0" * 32 + ":results 0" in verdict["log"]  # it ran: its output is in the test log


# -- the pre-started grading process: nothing of the tree runs before (or as) the grader ----

SHIM = "#!/bin/sh\necho SHIM-RAN $0 >&2\nexit 0\n"
TOOLS = ["git", "tar", "head", "python3", "bash", "sh", "timeout", "setpriv", "chown",
         "find", "cp", "mkdir", "wc", "mv", "env", "cat", "pytest"]


def test_tools_and_startup_files_in_the_tree_never_run_in_the_grading_box(env):
    """Executables named like every tool the grading script and box_scan.py run, in the
    repository root, `bin/` and `.git`-less `hooks/`, and Python start-up files: the fix
    still scores and none of them ran (a shim that runs prints into the graded log)."""
    shims = " ".join(f"{d}/{t}" for d in (".", "bin", "hooks") for t in TOOLS)
    _, reward, verdict = play(env, [
        f"mkdir -p bin hooks && for f in {shims}; do printf '{SHIM}' > $f; chmod +x $f; done",
        "printf 'import sys; sys.stderr.write(\"SHIM-RAN pth\\\\n\")\\n' > evil.pth && "
        "printf 'import sys; sys.stderr.write(\"SHIM-RAN site\\\\n\")\\n' > sitecustomize.py && "
        "cp sitecustomize.py usercustomize.py && cp evil.pth tests/evil.pth",
    ], gold=True)
    assert reward == 1.0 and not verdict["infra"], (verdict["error"], verdict["log"][-1500:])
    assert "SHIM-RAN" not in verdict["log"], verdict["log"][-1500:]
    assert "bin/git" in verdict["changed_files"]


# -- the environment probe: cached per image, so it must not depend on an agent's tree ------

def _with_repo_dir_on_sys_path(task):
    """`task` whose environment puts a directory of the repository on sys.path (as an
    editable install of a src layout does)."""
    setup = ["mkdir -p plugins && touch plugins/.keep",
             "echo /repo/plugins > /opt/venv/lib/python3.11/site-packages/zz_plugins.pth"]
    return task.model_copy(update={"environment": task.environment.model_copy(
        update={"setup": setup})})


# An honest fix that keeps its helper in a new top-level module (`lib` is also a name in /).
LIB_FIX = [heredoc_write("lib.py", "def cut(text, width, suffix):\n"
                         "    if width <= len(suffix):\n        return suffix[:width]\n"
                         "    return text[:width - len(suffix)] + suffix\n"),
           "sed -i 's/^\\(\\s*\\)return text\\[:width\\] + suffix/\\1from lib import cut\\n"
           "\\1return cut(text, width, suffix)/' textkit/core.py && grep -c 'from lib' textkit/core.py"]


def _episode(task, commands):
    """One episode of `commands` in a fresh env (and its own grading) on `task`."""
    environment = BashSWEEnv(task, run_id=RUN, command_timeout=20)
    try:
        return play(environment, commands)
    finally:
        environment.close()
        flush_removals()


def test_an_agents_tree_cannot_poison_the_probe_later_gradings_reuse(textkit):
    """The first grading of an image probes the test environment (module names, plugins)
    and the result is reused for every later grading in the process. An agent that turns a
    repository directory on sys.path into a symlink to `/` must not make `lib`, `bin`,
    `tmp` ... protected names for the agents graded after it."""
    from bashenv.grading import rewarder as rewarder_module

    task = _with_repo_dir_on_sys_path(textkit)

    observations, reward, verdict = _episode(task, LIB_FIX)
    assert observations[-1]["output"].strip() == "1"
    assert reward == 1.0, (verdict["outcome"], verdict["reverted_config"], verdict["log"][-1500:])
    rewarder_module._PROBES.clear()  # the next grading probes again: the attacker's
    _, reward, _ = _episode(task, ["rm -rf plugins && ln -s / plugins"])
    assert reward == 0.0
    _, reward, verdict = _episode(task, LIB_FIX)
    assert "lib.py" not in verdict["reverted_config"], verdict["reverted_config"]
    assert reward == 1.0, (verdict["outcome"], verdict["log"][-1500:])


# Debian's own sitecustomize (the base image's) imports this module when it exists: so it
# runs wherever Python starts with the repository's `plugins/` on sys.path and site on.
APPORT_HOOK = '''import atexit, os
def install():
    pass
try:
    with open("/tmp/stolen", "w") as out:
        out.write("STOLEN " + open("/bashenv_grade/in/token").read())
    os.chmod("/tmp/stolen", 0o644)
except OSError:
    pass
atexit.register(print, '{"names": [], "plugins": []}')
'''
SHOW_STOLEN = ("import atexit as _atexit, os as _os\nif _os.path.exists('/tmp/stolen'):\n"
               "    _atexit.register(print, open('/tmp/stolen').read())\n")


def test_no_code_of_the_tree_runs_at_interpreter_start_up(textkit):
    """A module the image's start-up imports when present (Debian's sitecustomize tries
    `apport_python_hook`), put in a repository directory on sys.path, must run neither in
    the environment probe (there it read the grader's inputs, still open, and forged the
    probe's answer, which every later grading of the image reuses: no stdlib name
    protected any more) nor when the tests start."""
    from bashenv.grading import rewarder as rewarder_module

    task = _with_repo_dir_on_sys_path(textkit)
    rewarder_module._PROBES.clear()
    # A tree over EMBED_TREE_MAX goes in by the archive API, maybe before the probe runs.
    _, reward, verdict = _episode(task, [
        heredoc_write("plugins/apport_python_hook.py", APPORT_HOOK),
        f"cat >> textkit/__init__.py <<'EOF'\n{SHOW_STOLEN}EOF",
        "head -c 20000000 /dev/urandom > blob.bin"])
    assert "STOLEN" not in verdict["log"], verdict["log"][-1500:]
    _, _, later = _episode(task, [heredoc_write("inspect.py", "print('shadow')\n")])
    assert later["reverted_config"] == ["inspect.py"], later["reverted_config"]
    assert reward == 0.0 and "plugins/apport_python_hook.py" in verdict["reverted_config"]


# -- a plain diff (predictions): `patch --fuzz` is the last way it is applied ---------------

# git apply refuses any path in `.git`; GNU patch does not. A smudge filter in the grading
# box's git would then run as root when the hidden tests are written with git apply.
GIT_DIR_DIFF = """diff --git a/.git/info/attributes b/.git/info/attributes
new file mode 100644
--- /dev/null
+++ b/.git/info/attributes
@@ -0,0 +1 @@
+*.py filter=pwn
diff --git a/.git/pwn.sh b/.git/pwn.sh
new file mode 100644
--- /dev/null
+++ b/.git/pwn.sh
@@ -0,0 +1,2 @@
+echo SMUDGED-AS-$(id -u) >&2
+sed 's/assert /assert True or /'
diff --git a/.git/config b/.git/config
--- a/.git/config
+++ b/.git/config
@@ -1,1 +1,4 @@
 [core]
+[filter "pwn"]
+\tsmudge = sh .git/pwn.sh
+\tclean = cat
"""

def test_a_diff_into_the_grading_boxs_git_is_not_applied(textkit, textkit_image):
    from bashenv.grading import Rewarder

    verdict = Rewarder(textkit, textkit_image, RUN).grade(GIT_DIR_DIFF)
    assert "SMUDGED-AS" not in verdict.log, verdict.log[-1500:]
    assert verdict.reward == 0.0 and verdict.outcome in ("patch_failed", "unresolved"), (
        verdict.outcome, verdict.error, verdict.log[-1500:])
