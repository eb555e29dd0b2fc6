"""Halt-v0's mined programs without an engine: which functions a repository gives (read
with git at a commit, unparsable and non-UTF-8 files skipped), what each mutation does to
them, and that drafts are reproducible programs. Runs use the sandbox's runner in-process,
only on the functions written here."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import bashenv  # noqa: F401  (registers Halt-v0)
from bashenv.errors import BashenvError
from bashenv.task import Task
from bashenv.worlds import task_mining
from bashenv.worlds.halt import HaltEnv
from bashenv.worlds.halt_runner import run
from bashenv.worlds.mining import files_at_commit, mine, source_files
from bashenv.worlds.mutations import draft, mutate, mutation_sites

from .conftest import TASKS_DIR

USES_ENGINE = False

MODULE = '''\
from typing import List

LIMIT = 10


def countdown(n: int, step: int) -> int:
    """Halves until small."""
    rounds: int = 0
    while n > 1:
        n //= step
        rounds += 1
    return rounds


def total(values: List[int]) -> int:
    acc = 0
    for i in range(len(values)):
        acc += values[i]
    return acc


def capped(n):
    while n < LIMIT:
        n += 1
    return n


def no_loop(x):
    return x + 1


def reads(path):
    while True:
        with open(path) as f:
            return f.read()


def chunks(text, size=3):
    pos = 0
    while pos < len(text):
        yield text[pos:pos + size]
        pos += size


def first_space(text):
    i = 0
    while True:
        if text[i] == " ":
            break
        i += 1
    return i


def uses_import(n):
    import math
    while n > 1:
        n = math.isqrt(n)
    return n


def imports_its_own(n):
    from .loops import countdown
    while n > 1:
        n = countdown(n, 2)
    return n


def digits(n, base):
    if n < base:
        return [n]
    out = digits(n // base, base)
    for i in range(1):
        out.append(n % base)
    return out


def climbs(node):
    while node.parent:
        node = node.parent
    return node


def same_prefix(left, right):
    i = 0
    while i < len(left) and left[i] == right[i]:
        i += 1
    return left[i:].isspace()


class Box:
    def method(self, n):
        for i in range(n):
            self.n = i

    @staticmethod
    def drain(items):
        while items:
            items.pop()
        return items
'''


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                                          "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
                                          "PATH": "/usr/bin:/bin"}).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str, str]:
    """A repository with the module above at a first commit, and a later commit that
    deletes countdown; also a Python 2 file and a Latin-1 file, which are skipped."""
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "loops.py").write_text(MODULE)
    (root / "pkg" / "old.py").write_text('def f(n):\n    while n:\n        print "x"\n')
    (root / "pkg" / "latin.py").write_bytes(b"# \xe9\ndef g(n):\n    while n:\n        n -= 1\n")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-qm", "first")
    first = _git(root, "rev-parse", "HEAD")
    (root / "pkg" / "loops.py").write_text(MODULE.replace("def countdown", "def _unused"))
    _git(root, "commit", "-qam", "second")
    return root, first, _git(root, "rev-parse", "HEAD")


def _by_name(found):
    return {m.name: m for m in found}


def test_self_contained_functions_with_loops_are_mined_at_a_commit(repo):
    root, first, second = repo
    found = _by_name(mine(files_at_commit(root, first), origin="t@1"))
    assert set(found) == {"countdown", "total", "chunks", "first_space", "same_prefix",
                          "uses_import", "climbs", "digits", "Box.drain"}
    # capped reads a module constant, reads calls open, imports_its_own imports from its
    # package, method needs self, no_loop has no loop; old.py (Python 2) and latin.py (not
    # UTF-8) are skipped, not errors. climbs is mined though it needs an object
    # (node.parent): its drafts raise, and screening never shows a program that raised
    countdown = found["countdown"]
    assert countdown.path == "pkg/loops.py" and countdown.origin == "t@1"
    assert "int" not in countdown.source.split(":")[0] and "List" not in found["total"].source
    assert [(p.name, p.kind) for p in countdown.params] == [("n", "int"), ("step", "int")]
    assert [(p.name, p.kind) for p in found["total"].params] == [("values", "list")]
    assert [p.name for p in found["chunks"].params] == ["text"]  # size has a default
    assert _program(found["digits"].source, "digits", [37, 2])["output"] == \
        "[1, 0, 0, 1, 0, 1]\n"  # it calls itself by its own name
    # indexed and measured like both, but .isspace() is a str's; right is only indexed
    assert [p.kind for p in found["same_prefix"].params] == ["str", "list"]
    assert found["chunks"].generator and not countdown.generator
    assert "countdown" not in _by_name(mine(files_at_commit(root, second)))
    assert set(_by_name(mine(source_files(root)))) == set(found) - {"countdown"} | {"_unused"}
    assert set(_by_name(mine(source_files((root, first))))) == set(found)


def test_the_same_blob_is_read_once_across_commits(repo):
    root, first, second = repo
    seen: set[str] = set()
    paths = [path for path, _ in files_at_commit(root, first, seen)]
    assert sorted(paths) == ["pkg/loops.py", "pkg/old.py"] and len(seen) == 3  # latin.py: not UTF-8
    assert [path for path, _ in files_at_commit(root, second, seen)] == ["pkg/loops.py"]


def test_a_bad_commit_or_source_is_named(repo, tmp_path):
    root, *_ = repo
    with pytest.raises(BashenvError, match="cannot read commit 'nope'"):
        HaltEnv(sources=[(root, "nope")])
    with pytest.raises(BashenvError, match="no such repository, directory or file"):
        HaltEnv(sources=[tmp_path / "missing"])
    with pytest.raises(BashenvError, match="mined_share"):
        HaltEnv(sources=[root], mined_share=2)


def _program(source: str, name: str, args: list) -> dict:
    call = f"{source}\nprint(repr({name}(*{args!r})))\n"
    return run({"source": call, "input": "", "budget": 20_000})


def _mutants(source: str) -> dict[str, list[str]]:
    """Every single mutation of the function, by name."""
    func = ast.parse(source).body[0]
    assert isinstance(func, ast.FunctionDef)
    out: dict[str, list[str]] = {}
    for i in range(len(mutation_sites(func))):
        fresh = ast.parse(source).body[0]
        assert isinstance(fresh, ast.FunctionDef)
        site = mutation_sites(fresh)[i]
        site.apply()
        out.setdefault(site.mutation, []).append(ast.unparse(fresh))
    return out


def test_each_mutation_changes_what_the_loop_does(repo):
    root, first, _ = repo
    found = _by_name(mine(files_at_commit(root, first)))
    countdown = _mutants(found["countdown"].source)
    assert set(countdown) == {"flip_compare", "drop_update", "reverse_update"}
    assert _program(found["countdown"].source, "countdown", [100, 2])["output"] == "6\n"
    # only n's update is one the exit depends on (rounds is not in the test)
    assert len(countdown["drop_update"]) == len(countdown["reverse_update"]) == 1
    assert _program(countdown["drop_update"][0], "countdown", [100, 2])["status"] == "budget"
    assert _program(countdown["reverse_update"][0], "countdown", [100, 2])["status"] == "budget"
    flips = {_program(m, "countdown", [100, 2])["output"] for m in countdown["flip_compare"]}
    assert flips == {"0\n", "6\n", "7\n"}  # n < 1: no round; n != 1: 6; n >= 1: to 0, 7
    total = _mutants(found["total"].source)
    assert set(total) == {"grow_range", "shrink_range", "stall_range"}
    stalled = total["stall_range"][0]
    assert "while i < len(values):" in stalled and "for " not in stalled
    assert _program(stalled, "total", [[1, 2, 3, 4]])["status"] == "budget"
    assert _program(stalled, "total", [[]])["output"] == "0\n"  # no round: still halts
    assert _program(total["shrink_range"][0], "total", [[1, 2, 3, 4]])["output"] == "3\n"
    grown = _program(total["grow_range"][0], "total", [[1, 2, 3, 4]])
    assert grown["error"].startswith("IndexError")  # the truth, whatever the intent was
    first_space = _mutants(found["first_space"].source)
    assert set(first_space) == {"drop_update", "reverse_update", "drop_break"}  # while True
    assert _program(first_space["drop_break"][0], "first_space", ["ab c"])["error"] \
        .startswith("IndexError")
    assert _program(first_space["drop_update"][0], "first_space", ["ab c"])["status"] == "budget"
    drain = _mutants(found["Box.drain"].source)
    assert _program(drain["drop_update"][0], "drain", [[1, 2]])["status"] == "budget"
    assert _program(drain["flip_compare"][0], "drain", [[1, 2]])["output"] == "[1, 2]\n"


def test_mutate_follows_the_intent_it_is_asked_for(repo):
    root, first, _ = repo
    countdown = _by_name(mine(files_at_commit(root, first)))["countdown"]
    rng = np.random.default_rng(0)
    aims = [mutate(countdown, rng, aim_to_halt=False) for _ in range(30)]
    assert all(not m.aims_to_halt and m.mutation != "none" for m in aims)
    halting = [mutate(countdown, rng, aim_to_halt=True) for _ in range(30)]
    assert {m.mutation for m in halting} == {"none", "flip_compare"}  # `>=`: still halts
    assert all(m.aims_to_halt for m in halting)


def test_drafts_are_reproducible_runnable_programs(repo):
    root, first, _ = repo
    found = mine(files_at_commit(root, first), origin="t@1")
    one = [draft(found[s % len(found)], np.random.default_rng(s), bool(s % 2)) for s in range(40)]
    assert one == [draft(found[s % len(found)], np.random.default_rng(s), bool(s % 2))
                   for s in range(40)]
    assert all(p.family == "mined" and p.origin.startswith("t@1:pkg/loops.py::") for p in one)
    assert all(p.mutation and p.mutation not in p.source + p.input for p in one)
    statuses = set()
    for program in one:
        args, kwargs = ast.literal_eval(program.input)
        assert isinstance(args, list) and isinstance(kwargs, dict)
        result = run({"source": program.source, "input": program.input, "budget": 20_000})
        assert result["error"] is None or "SyntaxError" not in result["error"], program.source
        statuses.add((result["status"], result["error"] is None))
    assert ("halted", True) in statuses and ("budget", True) in statuses


def test_mining_needs_no_engine_and_plain_directories_work(tmp_path):
    (tmp_path / "one.py").write_text("def up(n):\n    i = 0\n    while i < n:\n        i += 1\n"
                                     "    return i\n")
    env = gym.make("Halt-v0", sources=[tmp_path / "one.py"]).unwrapped
    assert [m.name for m in env.mined_functions()] == ["up"]
    assert env.mined_share == 0.5 and HaltEnv().mined_share == 0.0
    assert env.sandbox is None


def test_tasks_without_loops_fall_back_to_generated_programs():
    """The bundled tasks' repositories have no loops: nothing is mined (read through the
    task's own repository source), and every episode is a generated one, still balanced."""
    env = HaltEnv(tasks=TASKS_DIR, mined_share=1.0)
    assert len(env.tasks) >= 3 and env.mined_functions() == []
    families, labels = [], []
    for seed in range(40):
        families.append(env.reset(seed=seed)[1]["family"])
        labels.append(env.program.halts)
    assert "mined" not in families and env.sandbox is None
    assert 10 <= sum(labels) <= 30  # halting_share 0.5


def _task(repo: Path, commit: str, name: str) -> Task:
    return Task.model_validate({"id": name, "repo": str(repo), "base_commit": commit,
                                "problem_statement": "x", "tests": {"fail_to_pass": ["t"]}})


def test_tasks_are_mined_at_their_commits_and_remembered_per_blob(repo, tmp_path, monkeypatch):
    root, first, second = repo
    monkeypatch.setenv("BASHENV_CACHE", str(tmp_path / "cache"))
    tasks = [_task(root, first, "a"), _task(root, second, "b")]
    parsed = []
    real_mine = task_mining.mine
    monkeypatch.setattr(task_mining, "mine", lambda files: parsed.extend(files) or
                        real_mine(files))
    found = _by_name(task_mining.mine_tasks(tasks))
    # b's commit adds _unused (countdown renamed); everything else is a's, named by a
    assert set(found) == set(_by_name(mine(files_at_commit(root, first)))) | {"_unused"}
    assert found["countdown"].origin == f"a@{first[:12]}"
    assert found["_unused"].origin == f"b@{second[:12]}"
    assert len(parsed) == 3  # loops.py twice (two blobs), old.py once; latin.py is not UTF-8
    assert task_mining.cache_file(root.resolve().as_uri()).is_file()
    parsed.clear()
    again = task_mining.mine_tasks(list(reversed(tasks)))
    assert parsed == []  # every blob was remembered: nothing parsed again
    assert {m.source: m.path for m in again} == {m.source: m.path for m in found.values()}
