"""Halt-v0 programs from mined functions: a loop bound mutated, and a call with generated
arguments.

A mutation is made to tip the function towards halting or not (its `intent`), but the
intent only steers which drafts are tried: the label is always what a run in the sandbox
did (bashenv/worlds/halt.py screens every draft). Mutations:

- none:           the function as found;
- shrink_range:   `range(.., stop)` -> `range(.., stop // 2)`;
- grow_range:     `range(.., stop)` -> `range(.., stop * 10**6)` (ends, but past any budget);
- flip_compare:   one comparison of a `while` test turned (`<` -> `>`, `!=`, `<=` ...), or
                  `while x` -> `while not x`;
- drop_update:    a statement updating a variable the loop's exit depends on removed
                  (`i += 1`, `n = n // 2`, `stack.pop()`), so the loop never progresses;
- reverse_update: such an update made to go the other way (`+=` <-> `-=`);
- drop_break:     the `break` of a `while` loop removed;
- stall_range:    `for i in range(a, b)` written as `i = a; while i < b:` without the
                  update of i, so it never moves on.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bashenv.worlds.mining import Mined, Param, is_range_call
from bashenv.worlds.programs import Program

GROW = 10**6
ALPHABET = "ab c1_-./:=,x"
MUTATING_METHODS = {"pop", "popleft", "append", "remove", "insert", "extend", "clear", "add",
                    "discard", "update", "appendleft", "popitem"}
# For each comparison, what it may become, and whether that change aims at halting.
FLIPS: dict[type[ast.cmpop], list[tuple[type[ast.cmpop], bool]]] = {
    ast.Lt: [(ast.Gt, False), (ast.NotEq, False), (ast.LtE, True)],
    ast.Gt: [(ast.Lt, False), (ast.NotEq, False), (ast.GtE, True)],
    ast.LtE: [(ast.GtE, False), (ast.Lt, True)],
    ast.GtE: [(ast.LtE, False), (ast.Gt, True)],
    ast.Eq: [(ast.NotEq, False)], ast.NotEq: [(ast.Eq, True), (ast.Lt, False)],
    ast.Is: [(ast.IsNot, False)], ast.IsNot: [(ast.Is, False)],
    ast.In: [(ast.NotIn, False)], ast.NotIn: [(ast.In, False)],
}
AUG_REVERSE: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv, ast.FloorDiv: ast.Mult,
    ast.RShift: ast.LShift, ast.LShift: ast.RShift}


@dataclass(frozen=True)
class Mutant:
    source: str  # the function's source
    mutation: str
    aims_to_halt: bool  # the intent: a hint for steering, never a label


@dataclass(frozen=True)
class Site:
    """One change a function allows: `apply` makes it in place on the parsed tree."""

    mutation: str
    aims_to_halt: bool
    apply: Callable[[], None]


def mutation_sites(func: ast.FunctionDef) -> list[Site]:
    """Every single change this function allows (each closes over a node of `func`)."""
    sites: list[Site] = []
    for loop in ast.walk(func):
        if isinstance(loop, ast.For) and is_range_call(loop.iter):
            sites += [_range_site(loop.iter, grow=True), _range_site(loop.iter, grow=False)]
        elif isinstance(loop, ast.While):
            sites += _while_sites(loop)
    for block in _statement_lists(func):
        sites += [_stall_site(block, i) for i, stmt in enumerate(block) if _stallable(stmt)]
    return sites


def _statement_lists(node: ast.AST) -> list[list[ast.stmt]]:
    """Every statement list under `node` (bodies, else branches, handlers)."""
    return [value for n in ast.walk(node) for field in ("body", "orelse", "finalbody")
            if isinstance(value := getattr(n, field, None), list)
            and value and isinstance(value[0], ast.stmt)]


def _stallable(stmt: ast.stmt) -> bool:
    """`for i in range([start,] stop): ...` with no else: it can be written as a while
    loop whose update of i is left out (a `continue` then means the same)."""
    return isinstance(stmt, ast.For) and is_range_call(stmt.iter) \
        and len(stmt.iter.args) <= 2 and isinstance(stmt.target, ast.Name) and not stmt.orelse


def _stall_site(block: list[ast.stmt], i: int) -> Site:
    """`for i in range(a, b): body` -> `i = a` / `while i < b: body`: the loop variable is
    never moved on."""
    def apply() -> None:
        loop = block[i]
        assert isinstance(loop, ast.For) and isinstance(loop.iter, ast.Call)
        args = loop.iter.args
        start, stop = (ast.Constant(0), args[0]) if len(args) == 1 else (args[0], args[1])
        name = loop.target.id if isinstance(loop.target, ast.Name) else "_"
        block[i:i + 1] = [
            ast.Assign(targets=[ast.Name(name, ast.Store())], value=start, lineno=loop.lineno),
            ast.While(test=ast.Compare(ast.Name(name, ast.Load()), [ast.Lt()], [stop]),
                      body=loop.body, orelse=[], lineno=loop.lineno)]
    return Site("stall_range", False, apply)


def _range_site(call: ast.Call, grow: bool) -> Site:
    def apply() -> None:
        at = 0 if len(call.args) == 1 else 1
        op, by = (ast.Mult(), GROW) if grow else (ast.FloorDiv(), 2)
        call.args[at] = ast.BinOp(call.args[at], op, ast.Constant(by))
    return Site("grow_range", False, apply) if grow else Site("shrink_range", True, apply)


def _while_sites(loop: ast.While) -> list[Site]:
    sites: list[Site] = []
    for compare in (n for n in ast.walk(loop.test) if isinstance(n, ast.Compare)):
        for i, op in enumerate(compare.ops):
            for new, halts in FLIPS.get(type(op), []):
                sites.append(_flip_site(compare, i, new, halts))
    if not any(isinstance(n, ast.Compare) for n in ast.walk(loop.test)) \
            and not (isinstance(loop.test, ast.Constant)):
        sites.append(_negate_site(loop))
    control = _control_names(loop)
    for block in _blocks(loop):
        for i, stmt in enumerate(block):
            target = _updated_name(stmt)
            if target in control:
                sites.append(_replace_site(block, i, "drop_update"))
                if isinstance(stmt, ast.AugAssign) and type(stmt.op) in AUG_REVERSE:
                    sites.append(_reverse_site(stmt))
            elif isinstance(stmt, ast.Break):
                sites.append(_replace_site(block, i, "drop_break"))
    return sites


def _flip_site(compare: ast.Compare, i: int, new: type[ast.cmpop], halts: bool) -> Site:
    def apply() -> None:
        compare.ops[i] = new()
    return Site("flip_compare", halts, apply)


def _negate_site(loop: ast.While) -> Site:
    def apply() -> None:
        test = loop.test
        loop.test = test.operand if isinstance(test, ast.UnaryOp) \
            and isinstance(test.op, ast.Not) else ast.UnaryOp(ast.Not(), test)
    return Site("flip_compare", False, apply)


def _replace_site(block: list[ast.stmt], i: int, name: str) -> Site:
    def apply() -> None:
        block[i] = ast.copy_location(ast.Pass(), block[i])
    return Site(name, False, apply)


def _reverse_site(stmt: ast.AugAssign) -> Site:
    def apply() -> None:
        stmt.op = AUG_REVERSE[type(stmt.op)]()
    return Site("reverse_update", False, apply)


def _blocks(loop: ast.While) -> list[list[ast.stmt]]:
    """The statement lists of the loop's body, nested ifs/trys/withs included, but not
    those of inner loops or functions (their breaks and updates are theirs)."""
    blocks, todo = [], [loop.body]
    while todo:
        block = todo.pop()
        blocks.append(block)
        for stmt in block:
            if isinstance(stmt, (ast.If, ast.Try, ast.With)):
                todo += [b for b in (getattr(stmt, "body", []), getattr(stmt, "orelse", []),
                                     getattr(stmt, "finalbody", [])) if b]
                todo += [h.body for h in getattr(stmt, "handlers", [])]
    return blocks


def _control_names(loop: ast.While) -> set[str]:
    """Names the loop's exit depends on: its test's, and those of the ifs that break or
    return out of it."""
    tests = [loop.test] + [stmt.test for block in _blocks(loop) for stmt in block
                           if isinstance(stmt, ast.If) and any(
                               isinstance(s, (ast.Break, ast.Return)) for s in stmt.body)]
    return {n.id for test in tests for n in ast.walk(test) if isinstance(n, ast.Name)}


def _updated_name(stmt: ast.stmt) -> str | None:
    """The variable a statement moves on: `x += ..`, `x = ..`, `x.pop()` and the like."""
    if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
        return stmt.target.id
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
            and isinstance(stmt.targets[0], ast.Name):
        return stmt.targets[0].id
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) \
            and isinstance(stmt.value.func, ast.Attribute) \
            and isinstance(stmt.value.func.value, ast.Name) \
            and stmt.value.func.attr in MUTATING_METHODS:
        return stmt.value.func.value.id
    return None


def mutate(mined: Mined, rng: np.random.Generator, aim_to_halt: bool) -> Mutant:
    """One variant of the function: a change whose intent is `aim_to_halt` when it has one
    (else any), or, aiming to halt, now and then the function unchanged."""
    if aim_to_halt and rng.random() < 0.5:
        return Mutant(mined.source, "none", True)
    func = ast.parse(mined.source).body[0]
    assert isinstance(func, ast.FunctionDef)
    sites = mutation_sites(func)
    wanted = [s for s in sites if s.aims_to_halt is aim_to_halt] or sites
    if not wanted:
        return Mutant(mined.source, "none", True)
    site = wanted[int(rng.integers(len(wanted)))]
    site.apply()
    return Mutant(ast.unparse(ast.fix_missing_locations(func)) + "\n", site.mutation,
                  site.aims_to_halt)


def arguments(params: tuple[Param, ...], rng: np.random.Generator) -> tuple[list, dict]:
    """Generated arguments, by each parameter's guessed type (small values: a loop over
    them stays far below any budget unless a mutation makes it not)."""
    args, kwargs = [], {}
    for param in params:
        value = _value(param.kind, rng)
        if param.keyword_only:
            kwargs[param.name] = value
        else:
            args.append(value)
    return args, kwargs


def _value(kind: str, rng: np.random.Generator) -> object:
    if kind == "list" and rng.random() < 0.3:
        kind = "str"
    if kind == "str":
        size = int(rng.integers(0, 13))
        return "".join(ALPHABET[int(i)] for i in rng.integers(0, len(ALPHABET), size))
    if kind == "list":
        return [int(v) for v in rng.integers(0, 21, int(rng.integers(0, 9)))]
    if kind == "dict":
        return {f"k{i}": int(rng.integers(0, 21)) for i in range(int(rng.integers(0, 5)))}
    return int(rng.integers(0, 21)) if rng.random() < 0.85 else int(rng.integers(-5, 0))


def draft(mined: Mined, rng: np.random.Generator, aim_to_halt: bool) -> Program:
    """A program from a mined function, mutated towards `aim_to_halt`, called with
    generated arguments read from stdin. `halts` holds the intent until a run decides."""
    mutant = mutate(mined, rng, aim_to_halt)
    args, kwargs = arguments(mined.params, rng)
    name = mined.name.rsplit(".", 1)[-1]
    call = f"{name}(*args, **kwargs)"
    source = (f"import ast\n\n\n{mutant.source}\n\nargs, kwargs = ast.literal_eval(input())\n"
              f"print(repr({f'list({call})' if mined.generator else call}))\n")
    return Program(source, f"{(args, kwargs)!r}\n", mutant.aims_to_halt, "mined",
                   origin=f"{mined.origin}:{mined.path}::{mined.name}", mutation=mutant.mutation)
