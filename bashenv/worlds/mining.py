"""Self-contained functions with loops, mined from a repository's Python source, for
Halt-v0's "mined" programs.

Reading only: the files come from git on the host (or a plain directory), are parsed with
`ast`, and nothing mined ever runs here; the sandbox runs it (bashenv/worlds/halt.py).
A function is kept when it holds a `while` loop or a `for ... in range(...)` loop, and
every name it does not bind itself is an argument or a harmless builtin (checked with
`symtable`, so closures, comprehensions and nested functions are scoped as Python does);
it may import only pure standard modules. Files the host's Python cannot parse are skipped.
"""

from __future__ import annotations

import ast
import builtins
import copy
import os
import symtable
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

import git

from bashenv.errors import BashenvError

MAX_FILE_BYTES = 300_000
MAX_FUNCTION_LINES = 60
SKIP_DIRS = {".git", "__pycache__", ".tox", ".venv", "venv", "node_modules", "build", "dist"}
# Builtins a mined program may not use: they reach outside the program (files, stdin, which
# carries the arguments, the interpreter), or give answers that differ between runs (id).
UNSAFE_BUILTINS = {"open", "exec", "eval", "compile", "input", "breakpoint", "exit", "quit",
                   "help", "globals", "locals", "vars", "id", "super", "memoryview",
                   "setattr", "delattr", "copyright", "credits", "license"}
SAFE_BUILTINS = frozenset(n for n in dir(builtins) if not n.startswith("_")) - UNSAFE_BUILTINS
# Standard modules a mined function may import: no files, clock, randomness or processes.
PURE_MODULES = {"math", "cmath", "re", "string", "itertools", "functools", "collections",
                "operator", "difflib", "bisect", "heapq", "textwrap", "fnmatch", "unicodedata",
                "keyword", "fractions", "decimal", "statistics", "copy", "json", "struct",
                "binascii", "codecs", "enum", "typing", "dataclasses", "numbers", "array",
                "base64", "hashlib", "zlib", "html", "shlex", "posixpath", "ntpath"}
PARSE_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError)


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # the guessed type of its argument: int, str, list or dict
    keyword_only: bool = False


@dataclass(frozen=True)
class Mined:
    """A function as found: `source` is it alone, annotations and decorators removed."""

    path: str
    name: str  # qualified: Class.method for a staticmethod
    line: int
    source: str
    params: tuple[Param, ...]  # the ones without defaults: the ones a call must give
    origin: str = ""  # the repository and commit it came from
    generator: bool = False  # called through list(...)


# -- reading a repository -----------------------------------------------------------------

def files_at_commit(git_dir: str | Path, commit: str = "HEAD",
                    seen: set[str] | None = None) -> Iterator[tuple[str, str]]:
    """(path, text) of every Python file in the tree of `commit` of a (bare) repository,
    but those whose blob is in `seen` (which gets the rest)."""
    tree = tree_at(git_dir, commit)  # here, not at the first read: a bad commit is named at once
    return _texts(tree, set() if seen is None else seen)


def tree_at(git_dir: str | Path, commit: str) -> git.Tree:
    try:
        return git.Repo(git_dir).commit(commit).tree
    except (git.exc.GitError, ValueError, git.BadName) as exc:
        raise BashenvError(f"Halt-v0: cannot read commit {commit!r} of {git_dir}: {exc}") from None


def python_blobs(tree: git.Tree) -> Iterator[git.Blob]:
    """The tree's Python files worth parsing (not too big, not in build or tool dirs)."""
    for item in tree.traverse():
        if isinstance(item, git.Blob) and str(item.path).endswith(".py") \
                and item.size <= MAX_FILE_BYTES and not SKIP_DIRS.intersection(Path(item.path).parts):
            yield item


def blob_text(blob: git.Blob) -> str | None:
    """A blob's text, or None when it is not UTF-8."""
    try:
        return str(blob.data_stream.read().decode("utf-8"))
    except UnicodeDecodeError:
        return None


def _texts(tree: git.Tree, seen: set[str]) -> Iterator[tuple[str, str]]:
    for blob in python_blobs(tree):
        if blob.hexsha not in seen:
            seen.add(blob.hexsha)
            text = blob_text(blob)
            if text is not None:
                yield str(blob.path), text


def files_in_directory(root: Path) -> Iterator[tuple[str, str]]:
    """(path, text) of the Python files under a plain directory (or one file)."""
    paths = [root] if root.is_file() else sorted(
        Path(d, n) for d, dirs, names in os.walk(root)
        for _ in [dirs.sort()] for n in names if n.endswith(".py"))
    for path in paths:
        if SKIP_DIRS.intersection(path.relative_to(root).parts) \
                or path.stat().st_size > MAX_FILE_BYTES:
            continue
        try:
            yield (path.name if path == root else str(path.relative_to(root))), path.read_text("utf-8")
        except UnicodeDecodeError:
            continue


def source_files(source: str | Path | tuple[str | Path, str]) -> Iterator[tuple[str, str]]:
    """A `sources=` entry: a git repository (its HEAD), (repository, commit), a directory
    of Python files, or one .py file."""
    if isinstance(source, tuple):
        return files_at_commit(source[0], source[1])
    path = Path(source)
    if not path.exists():
        raise BashenvError(f"Halt-v0: sources: no such repository, directory or file: {path}")
    if (path / ".git").exists() or (path / "HEAD").is_file():
        return files_at_commit(path)
    return files_in_directory(path)


# -- finding functions --------------------------------------------------------------------

def mine(files: Iterable[tuple[str, str]], origin: str = "") -> list[Mined]:
    """Every self-contained function with a loop in these files, each distinct source once."""
    found: dict[str, Mined] = {}
    for path, text in files:
        if "while" not in text and "range(" not in text:
            continue  # parsing is most of the cost: no loop of ours, no parse
        lines = text.splitlines()
        try:
            with warnings.catch_warnings():  # old code's invalid escapes are not ours to report
                warnings.simplefilter("ignore")
                tree = ast.parse(text, filename=path)
        except PARSE_ERRORS:
            continue  # syntax this Python does not read (or Python 2): not minable here
        for node, qualname in _functions(tree):
            body = "\n".join(lines[node.lineno - 1:node.end_lineno])
            if "while" not in body and "range(" not in body:
                continue
            mined = _examine(node, path, qualname, origin)
            if mined is not None:
                found.setdefault(mined.source, mined)
    return list(found.values())


def _functions(tree: ast.Module) -> Iterator[tuple[ast.FunctionDef, str]]:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.decorator_list:
            yield node, node.name
        elif isinstance(node, ast.ClassDef):
            for item in node.body:  # only static methods: a method needs an object
                if isinstance(item, ast.FunctionDef) and [ast.unparse(d) for d in
                                                          item.decorator_list] == ["staticmethod"]:
                    yield item, f"{node.name}.{item.name}"


def has_loop(node: ast.AST) -> bool:
    return any(isinstance(n, ast.While) or (isinstance(n, ast.For) and is_range_call(n.iter))
               for n in ast.walk(node))


def is_range_call(node: ast.expr) -> TypeGuard[ast.Call]:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
        and node.func.id == "range" and not node.keywords and 1 <= len(node.args) <= 3


def _examine(node: ast.FunctionDef, path: str, qualname: str, origin: str) -> Mined | None:
    if (node.end_lineno or node.lineno) - node.lineno >= MAX_FUNCTION_LINES or not has_loop(node):
        return None
    if any(isinstance(n, (ast.Await, ast.Global, ast.Nonlocal, ast.AsyncFunctionDef,
                          ast.ClassDef)) or _foreign_import(n) for n in ast.walk(node)):
        return None
    clean = _Unannotate().visit(copy.deepcopy(node))
    clean.decorator_list = []
    defaults = [*clean.args.defaults, *(d for d in clean.args.kw_defaults if d is not None)]
    if any(isinstance(n, ast.Name) and n.id not in SAFE_BUILTINS
           for d in defaults for n in ast.walk(d)):
        return None
    try:
        source = ast.unparse(ast.fix_missing_locations(clean))
        table = symtable.symtable(source, path, "exec").get_children()[0]
    except (*PARSE_ERRORS, IndexError):
        return None
    # a module function may call itself: the program defines it under the same name
    if not _only_builtins(table, SAFE_BUILTINS | ({node.name} if qualname == node.name else set())):
        return None
    generator = any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in _own_nodes(clean))
    return Mined(path, qualname, node.lineno, source + "\n", _params(clean), origin, generator)


def _foreign_import(node: ast.AST) -> bool:
    """An import of anything but a deterministic, self-contained stdlib module (the
    repository's own modules are not in the sandbox the program runs in)."""
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] not in PURE_MODULES
    return isinstance(node, ast.Import) and any(
        alias.name.split(".")[0] not in PURE_MODULES for alias in node.names)


def _own_nodes(func: ast.FunctionDef) -> Iterator[ast.AST]:
    """The nodes of a function's own scope (not those of functions or lambdas inside it)."""
    todo: list[ast.AST] = list(func.body)
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))


def _only_builtins(table: symtable.SymbolTable, allowed: frozenset[str]) -> bool:
    """No name of this scope or the scopes inside it resolves to a module-level name, other
    than the builtins a program may use (`allowed`)."""
    for symbol in table.get_symbols():
        if symbol.is_global() and symbol.get_name() not in allowed:
            return False
    return all(_only_builtins(child, allowed) for child in table.get_children())


class _Unannotate(ast.NodeTransformer):
    """Annotations name module-level types (List, Path): dropped, as behaviour does not
    depend on them."""

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.annotation = None
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        node.returns = None
        self.generic_visit(node)
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.stmt:
        if node.value is None:
            return ast.copy_location(ast.Pass(), node)
        return ast.copy_location(ast.Assign(targets=[node.target], value=node.value), node)


# -- what arguments a function wants --------------------------------------------------------

STR_METHODS = {"split", "rsplit", "strip", "lstrip", "rstrip", "startswith", "endswith", "lower",
               "upper", "find", "rfind", "replace", "isdigit", "isalpha", "isspace", "isalnum",
               "splitlines", "partition", "rpartition", "encode", "format", "casefold",
               "expandtabs", "title", "zfill", "center", "ljust", "rjust"}
LIST_METHODS = {"append", "pop", "insert", "extend", "sort", "reverse", "remove", "copy", "clear",
                "index", "count"}
DICT_METHODS = {"items", "keys", "values", "get", "setdefault", "update"}
STR_NAMES = ("str", "text", "name", "line", "path", "url", "word", "char", "prefix", "suffix")
SEQUENCE_USES = {"len", "enumerate", "sorted", "reversed", "list", "tuple", "set", "zip",
                 "sum", "min", "max", "any", "all", "iter"}


def _params(node: ast.FunctionDef) -> tuple[Param, ...]:
    """The parameters a call must fill (no default), each with a guessed argument type."""
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    required = positional[:len(positional) - len(args.defaults)]
    keyword = [a for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None]
    return (*(Param(a.arg, _guess(node, a.arg)) for a in required),
            *(Param(a.arg, _guess(node, a.arg), keyword_only=True) for a in keyword))


def _guess(func: ast.FunctionDef, name: str) -> str:
    """int, str, list or dict, from how the body uses the name (int when nothing says)."""
    votes = {"int": 0, "str": 0, "list": 0, "dict": 0}
    sequence = 0  # uses a str and a list share: they count for a list when nothing else does
    for node in ast.walk(func):
        if isinstance(node, ast.Attribute) and (_is(node.value, name) or (  # x.m(), x[i:].m()
                isinstance(node.value, ast.Subscript) and _is(node.value.value, name)
                and isinstance(node.value.slice, ast.Slice))):
            for kind, methods in (("str", STR_METHODS), ("list", LIST_METHODS),
                                  ("dict", DICT_METHODS)):
                votes[kind] += 2 * (node.attr in methods)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and any(_is(a, name) for a in node.args):
            votes["int"] += 2 * (node.func.id in ("range", "abs", "divmod", "bin", "hex", "chr"))
            sequence += node.func.id in SEQUENCE_USES
            votes["str"] += node.func.id in ("ord",)
        elif (isinstance(node, (ast.For, ast.comprehension)) and _is(node.iter, name)) or \
                (isinstance(node, ast.Subscript) and _is(node.value, name)):
            sequence += 1
        elif isinstance(node, ast.Subscript) and _is(node.slice, name):
            votes["int"] += 1
        elif isinstance(node, (ast.BinOp, ast.Compare, ast.AugAssign)):
            operands = [node.left, node.right] if isinstance(node, ast.BinOp) else \
                [node.left, *node.comparators] if isinstance(node, ast.Compare) else \
                [node.target, node.value]
            if any(_is(o, name) for o in operands):
                for o in operands:
                    if isinstance(o, ast.Constant) and not isinstance(o.value, bool):
                        if isinstance(o.value, (int, float)):
                            votes["int"] += 1
                        elif isinstance(o.value, str):
                            votes["str"] += 1
    if any(word in name.lower() for word in STR_NAMES):
        votes["str"] += 2
    if not votes["str"] and not votes["dict"]:  # indexed, iterated, measured: a list
        votes["list"] += sequence
    best = max(votes, key=lambda k: votes[k])
    return best if votes[best] > 0 else "int"


def _is(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name

