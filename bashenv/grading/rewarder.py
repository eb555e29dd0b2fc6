"""A change in, a verdict out: a fresh container, the change, the hidden tests, a report.

The agent's container is never used for grading. The change is either the agent's
working tree (read from the host side, see tree.py) or a plain diff (a predictions file).
Inside a fresh grading container whose workdir starts empty, the script rebuilds the
repository from the image's seed copy (the grader's record of the base tree), applies
the change, and box_scan.py works out from the files themselves what changed, restores
what the hidden tests own and removes what would load implicitly. The tests then run as
the unprivileged user; results come back through a directory only root can read.
"""

from __future__ import annotations

import json
import secrets
import shlex
import time
import xml.etree.ElementTree as ET
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from bashenv.errors import BashenvError, DockerUnavailable, SandboxError
from bashenv.grading.apply import applied_with, apply_snippet
from bashenv.grading.canary import canary_reason, check
from bashenv.grading.channel import GradingRun, input_tar, open_grading
from bashenv.grading.diff import changed_paths
from bashenv.grading.parsers import PARSERS, _pytest_key, hardened
from bashenv.grading.tree import TREE_CAP_MB, AgentTree, TreeTooLarge, read_tree, stdin_input
from bashenv.grading.verdict import OUTCOMES, Verdict, capped, tail
from bashenv.images.build import AGENT_UID, AGENT_USER, SEED_DIR, TaskImage
from bashenv.images.specs import spec_for_task
from bashenv.sandbox import PROCESS_RUN_ID, Backend, Sandbox, get_backend
from bashenv.sandbox.pool import WarmPool
from bashenv.sandbox.spec import copy_seed_command
from bashenv.task.model import Task

__all__ = ["OUTCOMES", "Rewarder", "Verdict", "owned_test_paths"]

GRADE_DIR = "/bashenv_grade"  # outside the repository
IN_DIR = f"{GRADE_DIR}/in"  # the grader's inputs and in-box helpers (root-owned, read-only)
PY_DIR = f"{GRADE_DIR}/py"  # first on the tests' PYTHONPATH: only the grader's plugin
OUT_DIR = f"{GRADE_DIR}/out"  # the only place the test user may write outside the repo
PRIVATE_DIR = f"{GRADE_DIR}/private"  # 0700 root: results, log, report copy
PLUGIN = "_bashenv_grader"
ERR_PATCH, ERR_SETUP, ERR_TREE = 90, 91, 92  # exit codes of the script before the tests
EMBED_TREE_MAX = 16 << 20  # a tree up to this size travels with the inputs (one API call)
LOG_HEAD, LOG_TAIL, REPORT_CAP = 8 << 10, 64 << 10, 64 << 20  # what comes back from a run
GRADER_CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETUID", "SETGID")
_HERE = Path(__file__).parent
BOX_FILES = {f"{IN_DIR}/box_scan.py": (_HERE / "box_scan.py").read_bytes(),
             f"{IN_DIR}/config_guard.py": (_HERE / "config_guard.py").read_bytes(),
             f"{IN_DIR}/canary.py": (_HERE / "canary.py").read_bytes(),
             f"{IN_DIR}/canary_values.py": (_HERE / "canary_values.py").read_bytes(),
             f"{PY_DIR}/{PLUGIN}.py": (_HERE / "grader_plugin.py").read_bytes()}
# git as the grader runs it: no user config, no attribute drivers, paths never quoted.
GIT = ("HOME=/nonexistent git -c core.quotePath=false -c core.attributesFile=/dev/null "
       "-c core.hooksPath=/dev/null")
# The test process: no plugin autoload, no bytecode written or trusted, the repository
# not first on sys.path at start-up (Python 3.11+; older ones ignore PYTHONSAFEPATH).
# Other runners (a repository's own runtests.py) get what does not change how they start.
TEST_ENV = ("PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 PYTHONDONTWRITEBYTECODE=1 PYTHONSAFEPATH=1 "
            f"PYTHONNOUSERSITE=1 PYTHONPATH={PY_DIR}${{PYTHONPATH:+:$PYTHONPATH}}")
OTHER_RUNNER_ENV = "PYTHONDONTWRITEBYTECODE=1 PYTHONNOUSERSITE=1"


# After the tests, with every process of the test user dead (the host's cgroup sweep; where
# the host cannot see the box's processes, e.g. under gVisor, `kill -9 -1` as that user: one
# system call that reaches every process of the user at once, so a test that keeps
# re-forking cannot outrun it): the report moved (never followed if a symlink; capped), head
# and tail of the log kept, and the result written. The reserve frees room first, in case
# the tests' output filled the scratch volume.
# Sizes by `wc -c`: stat(1) fails under gVisor's runsc from Debian (no statx there).
_P, _LOG = PRIVATE_DIR, f"{PRIVATE_DIR}/test.log"
KILL_TEST_USER = f"setpriv --reuid={AGENT_USER} --regid={AGENT_USER} --clear-groups bash -c 'kill -9 -1'"
# kill -9 -1 once missed a process forked while it ran (gVisor, a loaded machine): again,
# until /proc shows no process of the test user twice in a row, a kill between (bounded;
# grep runs as root): a child still being forked may not show in /proc yet when its
# parent is gone (seen once under gVisor on a loaded machine with one clean look).
TEST_USER_ALIVE = f"grep -qs '^Uid:[[:space:]]*{AGENT_UID}[[:space:]]' /proc/[0-9]*/status"
KILL_TEST_USER_ALL = (f"clean=0; for _ in $(seq 100); do {KILL_TEST_USER} 2>/dev/null; "
                      f"if {TEST_USER_ALIVE}; then clean=0; else clean=$((clean + 1)); "
                      f"[ $clean -ge 2 ] && break; fi; done")
FINISH = [
    f"read -r rc start end <{_P}/times || exit {ERR_SETUP}",
    f"rm -f {_P}/reserve",
    f"if [ -f {OUT_DIR}/report.xml ] && [ ! -L {OUT_DIR}/report.xml ] && "
    f"[ $(wc -c <{OUT_DIR}/report.xml) -le {REPORT_CAP} ]; then "
    f"mv {OUT_DIR}/report.xml {_P}/report.xml; fi",
    f"if [ -e {OUT_DIR}/started ]; then started=true; else started=false; fi",
    f"n=$(wc -c <{_LOG}); if [ $n -gt {LOG_HEAD + LOG_TAIL} ]; then "
    f"{{ head -c {LOG_HEAD} {_LOG}; printf '\\n[... %d bytes of test output cut ...]\\n' "
    f"$((n - {LOG_HEAD + LOG_TAIL})); tail -c {LOG_TAIL} {_LOG}; }} >{_P}/log.txt && rm {_LOG}; "
    f"else mv {_LOG} {_P}/log.txt; fi || exit {ERR_SETUP}",
    "printf '{\"rc\": %d, \"start\": %s, \"end\": %s, \"started\": %s}' "
    f"$rc $start $end $started >{_P}/result.json || exit {ERR_SETUP}",
]


# The script's results, however it ends once its inputs are in: its exit status on a line
# of its own, then its root-only directory as a tar (the raw log and the reserve left out).
RESULTS_TRAP = ("trap 'code=$?; exec 2>/dev/null; printf \"\\n%s:results %d\\n\" \"$token\" $code; "
                f"tar -c -C {PRIVATE_DIR} --exclude=test.log --exclude=reserve --exclude=model.index .; "
                "exit $code' EXIT")
# When the tests have ended: the host is told, kills every process of the test user through
# the cgroup and answers `swept`; any other answer (it cannot see the box's processes, e.g.
# under gVisor) has the script kill them itself.
AFTER_TESTS = ['printf "\\n%s:tests-done\\n" "$token"', "read -r swept",
               f'[ "$swept" = swept ] || {{ {KILL_TEST_USER_ALL}; }}']


# Per task image: its environment's module names and pytest plugins, as the first grading
# found them (the image cannot change under a tag, so later gradings skip the probe).
_PROBES: dict[str, dict[str, Any]] = {}


def owned_test_paths(task: Task) -> set[str]:
    """Files the hidden tests own: those the test patch touches, test files, test-id files."""
    owned = set(task.tests.files)
    if task.tests.patch:
        owned |= changed_paths(task.tests.patch)
    owned |= {tid.split("::")[0] for tid in task.test_ids() if "::" in tid}
    return owned


class Rewarder:
    """Grades changes for one task. Thread-safe: every grading uses its own fresh container,
    taken from `pool` when one is given (never a container an agent has used)."""

    def __init__(self, task: Task, image: TaskImage, run_id: str = PROCESS_RUN_ID,
                 pool: WarmPool | None = None, runtime: str | None = None,
                 backend: str | Backend | None = None) -> None:
        self.task = task
        self.image = image
        self.pool = pool
        self.backend = get_backend(backend) if pool is None else pool.backend
        # A pytest -rA log parser (SWE-bench's) gets the hardened run too: plugin, canaries.
        self.parser = hardened(PARSERS[task.tests.runner], task.tests.command)
        # The grader runs as root (tests as the agent user), with a network never, and an
        # empty workdir: the script fills it from the seed or from the agent's tree.
        spec = spec_for_task(task, image.tag, "grader", run_id, cap_add=GRADER_CAPS,
                             user="", network=False, runtime=runtime, scratch=GRADE_DIR)
        self.spec = replace(spec, seed=None)
        self.tree_cap_mb = TREE_CAP_MB  # a working tree over it is patch_failed, said in error
        # None: canary tests are planted at each grading (else why they are not).
        self.canary_reason = canary_reason(task.tests.command, self._runs_pytest,
                                           task.tests.canaries)
        self._owned = owned_test_paths(task)
        self._hidden_files = self._hidden_test_files()

    def prefill(self) -> None:
        """Have a grading container ready before the first grading (with a pool)."""
        if self.pool is not None:
            self.pool.prefill(self.spec, opener=open_grading)

    def grade(self, diff: bytes | str) -> Verdict:
        """Grade a diff against the base commit (e.g. from a predictions file)."""
        return self.grade_with_report(diff)[0]

    def grade_with_report(self, diff: bytes | str) -> tuple[Verdict, bytes | None]:
        patch = diff.encode("utf-8", "surrogateescape") if isinstance(diff, str) else diff
        verdict, report, _ = self._guarded(lambda: self._grade(patch=patch))
        return verdict, report

    def grade_workdir(self, box: Sandbox) -> Verdict:
        """Grade what an agent left in `box`'s workdir (its git is neither used nor trusted)."""
        return self.grade_workdir_with_patch(box)[0]

    def grade_workdir_with_patch(self, box: Sandbox) -> tuple[Verdict, str]:
        """`grade_workdir`, and the change as a diff against the base commit (SWE-bench's
        model_patch: "" when there is none, or it is over 1 MiB), made by the grader's git in
        the grading container from the tree as read, before anything in it is reverted."""
        verdict, _, patch = self._guarded(lambda: self._grade(tree_of=box))
        return verdict, (patch or b"").decode("utf-8", errors="replace")

    def _guarded(self, run: Any) -> tuple[Verdict, bytes | None, bytes | None]:
        started = time.monotonic()
        report = patch = None
        try:
            verdict, report, patch = run()
        except TreeTooLarge as exc:
            verdict = Verdict(self.task.id, "patch_failed", error=str(exc))
        except (SandboxError, DockerUnavailable) as exc:
            verdict = Verdict(self.task.id, "error", error=str(exc), infra=True)
        except BashenvError as exc:
            verdict = Verdict(self.task.id, "error", error=str(exc))
        verdict.seconds = time.monotonic() - started
        return verdict, report, patch

    def _hidden_test_files(self) -> dict[str, bytes]:
        files = {f"{IN_DIR}/files/{i}": content.encode()
                 for i, (_, content) in enumerate(sorted(self.task.tests.files.items()))}
        if self.task.tests.patch:
            files[f"{IN_DIR}/tests.patch"] = self.task.tests.patch.encode()
        return files

    def _job(self, from_tree: bool) -> bytes:
        tests = self.task.tests
        return json.dumps({
            "model_patch": from_tree, "tree_on_stdin": from_tree, "tree_error": ERR_TREE,
            "base": self.image.base_sha,
            "hidden": "\n".join(["set -e", *self._hidden_commands()]),
            "workdir": self.task.workdir, "seed": SEED_DIR, "grade_dir": GRADE_DIR,
            "user": AGENT_USER, "owned": sorted(self._owned), "protect_config": tests.protect_config,
            "allow_extensions": tests.allow_compiled_extensions, "probe": _PROBES.get(self.image.tag),
            # Fresh each grading, and unreadable to the tests (IN_DIR is closed before them).
            "canaries": None if self.canary_reason else {
                "seed": secrets.randbits(64), "ids": self.task.test_ids(),
                "focus": self.task.tests.fail_to_pass},
        }).encode()

    def _hidden_commands(self) -> list[str]:
        """Shell commands, run in the workdir, that write the hidden tests."""
        tests, hidden = self.task.tests, []
        if tests.patch:
            hidden.append(f"{GIT} apply --whitespace=nowarn {IN_DIR}/tests.patch")
        for i, (path, _) in enumerate(sorted(tests.files.items())):
            target = shlex.quote(str(PurePosixPath(path)))
            hidden.append(f"mkdir -p \"$(dirname {target})\" && cp {IN_DIR}/files/{i} {target}")
        return hidden

    def _plugin_conf(self) -> bytes:
        files = sorted({tid.split("::")[0] for tid in self.task.test_ids()})
        return json.dumps({"workdir": self.task.workdir, "files": files,
                           "started": f"{OUT_DIR}/started"}).encode()

    def _script(self, from_tree: bool, inputs_size: int) -> str:
        """The grading, as root (channel.py): the inputs from stdin; the base tree and the
        change, the scan, the hidden tests; the tests as the agent user, output to a file;
        their exit code and timing into a directory the test user can never reach; once
        every process of theirs is dead, the results (FINISH), sent back by RESULTS_TRAP."""
        tests, user = self.task.tests, AGENT_USER
        if from_tree:  # the grader's own git, then the agent's tree (it has no `.git`):
            # the tree follows the inputs on stdin, after a line with its size, and
            # box_scan.py takes it (receive_tree). The host reads it from the agent's box
            # while this script and box_scan.py start.
            change = [f"{copy_seed_command(SEED_DIR, '.', git_only=True)} || exit {ERR_SETUP}"]
        else:
            change = [f"{copy_seed_command(SEED_DIR, '.')} || exit {ERR_SETUP}",
                      # git apply, else git apply --reject, else patch --fuzz (SWE-bench's order)
                      apply_snippet(f"{IN_DIR}/agent.patch", GIT, SEED_DIR, ERR_PATCH)]
        # pytest runs get the grader's plugin and the environment's plugins by name.
        pytest_run = self._runs_pytest
        base = f"{tests.command} -p {PLUGIN} $(cat {PY_DIR}/pargs)" if pytest_run else tests.command
        test_env = TEST_ENV if pytest_run else OTHER_RUNNER_ENV
        command = self.parser.command(base, f"{OUT_DIR}/report.xml")
        limit = max(1, int(tests.timeout + 0.999))
        helper = f"python3 -I -S {IN_DIR}/box_scan.py"
        return "\n".join([
            "umask 022",
            f"mkdir -p {GRADE_DIR} && head -c {inputs_size} | tar -x -C {GRADE_DIR} -f - "
            f"|| exit {ERR_SETUP}",
            f"read -r token <{IN_DIR}/token || exit {ERR_SETUP}",
            RESULTS_TRAP,
            f"chmod 755 {GRADE_DIR} && mkdir -m 700 {PRIVATE_DIR} || exit {ERR_SETUP}",
            f"cd {shlex.quote(self.task.workdir)} || exit {ERR_SETUP}",
            *change,
            # The scan, then the hidden tests (`hidden`), then the canaries: one process.
            f"{helper} prepare {IN_DIR}/job.json || {{ c=$?; [ $c = {ERR_TREE} ] && exit $c; "
            f"exit {ERR_SETUP}; }}",
            # The tests may not read the inputs: the hidden test files as written, the job.
            f"chmod 700 {IN_DIR} && chown -R {user}: . && mkdir -p {OUT_DIR} && "
            f"chown {user}: {OUT_DIR} || exit {ERR_SETUP}",
            f"head -c 262144 /dev/zero >{PRIVATE_DIR}/reserve || exit {ERR_SETUP}",
            "start=$EPOCHREALTIME",
            f"timeout -s KILL {limit} setpriv --reuid={user} --regid={user} --init-groups "
            f"env -u PYTEST_PLUGINS HOME=/home/{user} {test_env} bash -c {shlex.quote(command)} "
            f"</dev/null >{PRIVATE_DIR}/test.log 2>&1",
            "rc=$?",
            "end=$EPOCHREALTIME",
            f"echo $rc $start $end >{PRIVATE_DIR}/times || exit {ERR_SETUP}",
            *AFTER_TESTS,
            *FINISH,
        ])

    def _grade(self, patch: bytes | None = None,
               tree_of: Sandbox | None = None) -> tuple[Verdict, bytes | None, bytes | None]:
        """Grade `patch`, or the working tree of the agent's box `tree_of`. The tree is read
        (tree.py) in a thread while the grading container starts its script, and follows
        the inputs on the script's stdin."""
        if tree_of is None:
            return self._run(patch, None)
        reader = ThreadPoolExecutor(1, thread_name_prefix="bashenv-tree")
        tree = reader.submit(read_tree, tree_of, self.tree_cap_mb)
        try:
            return self._run(None, tree)
        finally:
            reader.shutdown(wait=True)  # the read ended, whatever happened: its file goes
            if tree.exception() is None:
                tree.result().close()

    def _run(self, patch: bytes | None,
             tree: Future[AgentTree] | None) -> tuple[Verdict, bytes | None, bytes | None]:
        task = self.task
        from_tree = tree is not None
        inputs = {**self._hidden_files, **BOX_FILES, f"{IN_DIR}/job.json": self._job(from_tree),
                  f"{PY_DIR}/plugin.json": self._plugin_conf()}
        if patch is not None:
            inputs[f"{IN_DIR}/agent.patch"] = patch
        token = secrets.token_hex(16)  # the script's lines to the host (channel.py)
        inputs[f"{IN_DIR}/token"] = f"{token}\n".encode()
        # A warm grading container comes with its grading process already started.
        box, stream = (self.pool.acquire_opened(self.spec, open_grading) if self.pool
                       else (self.backend.start(self.spec), None))

        try:
            sent = input_tar({str(PurePosixPath(p).relative_to(GRADE_DIR)): data
                              for p, data in inputs.items()})
            script = self._script(from_tree, len(sent))
            grading = GradingRun(box, script, int(task.tests.timeout) + 300, token,
                                 task.tests.timeout + 330, stream)
            # Whatever the tests left running dies before their results are read: by
            # cgroup, from the host, pass after pass (a process that keeps re-forking
            # cannot outrun it), else by the test user's kill -9 -1 in the box.
            ran = grading.run(sent, lambda: b"swept\n" if _kill_test_user(box) else b"sweep\n",
                              then=None if tree is None else lambda: stdin_input(
                                  box, tree.result(), EMBED_TREE_MAX))
            private = grading.files()
        finally:
            box.remove_later()
        tested = grading.tests_done
        prepared = _json(private.get("prepared.json")) or {}
        if prepared.get("probe"):
            _PROBES[self.image.tag] = prepared["probe"]
        log = ran.text + private.get("log.txt", b"").decode("utf-8", errors="replace")
        verdict = Verdict(task.id, "unresolved", log=tail(log),
                          touched_test_files=capped(prepared.get("touched", [])),
                          reverted_config=capped(prepared.get("reverted", [])),
                          removed_bytecode=capped(prepared.get("bytecode", [])),
                          changed_files=capped(prepared.get("changed", [])),
                          grader_plugin=self._runs_pytest,
                          suspicious=capped(prepared.get("suspicious", [])))
        report = private.get("report.xml")
        canaries = _json(private.get("canaries.json")) or []
        if self.canary_reason or (not canaries and "canaries.json" in private):
            verdict.canaries = {"used": False, "reason": self.canary_reason
                                or "no place for them beside the task's tests"}
        else:  # checked once the tests ran (see _judge)
            verdict.canaries = {"used": True, "planted": len(canaries), "checked": False, "wrong": []}
        if patch is not None:  # the script's own output, never cut like the test log
            verdict.apply_method = ("failed" if ran.exit_code == ERR_PATCH and not tested
                                    else applied_with(ran.text))
        if ran.exit_code == ERR_PATCH and not tested:
            verdict.outcome = "patch_failed"
        elif ran.exit_code == ERR_TREE and not tested:
            verdict.outcome = "patch_failed"
            verdict.error = "the working tree could not be written for grading (over the disk bound?)"
        elif ran.exit_code != 0:
            verdict.outcome = "error"
            when = "after" if tested else "before"
            verdict.error = f"the grading script failed {when} the tests ran (exit {ran.exit_code})"
        else:
            self._judge(verdict, log, report, _json(private.get("result.json")), canaries)
        return verdict, _without(report, canaries), private.get("model.patch")

    @property
    def _runs_pytest(self) -> bool:
        return bool(getattr(self.parser, "runs_pytest", False))

    def _judge(self, verdict: Verdict, log: str, report: bytes | None,
               result: dict[str, Any] | None, canaries: list[dict[str, str]]) -> None:
        tests = self.task.tests
        if not result:
            verdict.outcome, verdict.error = "error", "the grading script left no result"
            return
        rc = int(result["rc"])
        verdict.test_seconds = max(0.0, float(result["end"]) - float(result["start"]))
        if rc == 137 and verdict.test_seconds >= tests.timeout - 0.5:
            verdict.outcome, verdict.error = "timeout", f"tests ran over {tests.timeout:g}s"
            return
        if not report:
            if result.get("started") and rc != 0:
                # pytest was up, with the grader's plugin: the code under test broke the run
                # (e.g. a conftest importing code with a syntax error).
                verdict.note = f"the test run ended (exit code {rc}) without a report"
            else:
                verdict.outcome = "error"
                verdict.error = f"the test command wrote no report (exit code {rc})"
            return
        try:
            distrust = self.parser.verify(report, rc, log)
            statuses = self.parser.parse(report, self.task.test_ids())
            planted = self.parser.parse(report, [c["id"] for c in canaries]) if canaries else {}
        except Exception as exc:  # a broken report is an error verdict, never a pass
            verdict.outcome, verdict.error = "error", f"unreadable test report: {exc}"
            return
        verdict.fail_to_pass = {t: statuses[t] for t in tests.fail_to_pass}
        verdict.pass_to_pass = {t: statuses[t] for t in tests.pass_to_pass}
        wrong = check(canaries, planted, statuses)
        if canaries:
            verdict.canaries.update(checked=True, wrong=wrong)
        if wrong:  # a test whose outcome is certain came out otherwise: the run was forged
            verdict.outcome = "tampered"
            verdict.error = (f"{len(wrong)} of {len(canaries)} canary tests had the wrong outcome "
                             "(see canaries)")
        elif distrust:
            verdict.outcome, verdict.error = "error", f"test report not trusted: {distrust}"
        elif all(s == "passed" for s in statuses.values()):
            verdict.outcome = "resolved"


def _without(report: bytes | None, canaries: list[dict[str, str]]) -> bytes | None:
    """The JUnit report with the canaries' test cases taken out (they are the grader's)."""
    if not report or not canaries:
        return report
    keys = {_pytest_key(c["id"]) for c in canaries}
    try:
        root = ET.fromstring(report)
    except ET.ParseError:  # a console log (swebench runners): the lines naming a canary go
        ids = [c["id"].encode() for c in canaries]
        return b"".join(line for line in report.splitlines(keepends=True)
                        if not any(i in line for i in ids))
    for parent in list(root.iter()):
        for case in [c for c in parent if c.tag == "testcase"]:
            if f"{case.get('classname', '')}::{case.get('name', '')}" in keys:
                parent.remove(case)
    return ET.tostring(root, encoding="utf-8")


def _kill_test_user(box: Sandbox) -> bool:
    """Every process of the test user killed from the host (False: it cannot see them)."""
    kill = getattr(box, "kill_all_but_root", None)  # the grading script itself lives on
    return bool(kill()) if kill is not None else False


def _json(data: bytes | None) -> Any:
    try:
        return json.loads(data) if data else None
    except ValueError:
        return None
