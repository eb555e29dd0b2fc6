"""Wrong values for must-fail canaries (canary.py), drawn like a test file's own literals.

A must-fail canary compares one of the file's own calls with a value it must not equal.
If that value looked unlike the file's (far-off numbers, letters the file never uses),
library code could spot it and answer honestly for it alone; so it is another literal of
the same type in the file or a small edit of the expected value, at random per grading.

Runs on the host and in the grading container beside canary.py (stdlib only, Python 3.8+).
"""

from __future__ import annotations

import ast
import random

POOL_MAX = 2000  # literals of a test file that wrong values are drawn from


def literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def pool(tree: ast.Module) -> list[object]:
    """The literal values the file uses (its expected values among them): wrong values are
    drawn from these, so a canary's value looks like one of the file's own."""
    found: list[object] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Constant, ast.List, ast.Tuple, ast.Dict, ast.Set)) and literal(node):
            found.append(ast.literal_eval(node))
            if len(found) >= POOL_MAX:
                break
    return found


def writable(value: object) -> bool:
    """`repr(value)` reads back as an equal literal (not nan, inf, or a 10,000-digit int)."""
    try:
        text = repr(value)
        return len(text) <= 4096 and type(ast.literal_eval(text)) is type(value) \
            and ast.literal_eval(text) == value
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


def _alike(value: object, rng: random.Random, pool: list[object]) -> list[object]:
    """Candidates for a wrong value, most of the same type as `value`: other literals of
    that type in the file, and small edits of `value` (neighbours of a number, a string of
    the same length and characters, a list with one element dropped, added or changed)."""
    same = [p for p in pool if type(p) is type(value)]
    if isinstance(value, bool):
        return [not value, None]
    if value is None:
        return [p for p in pool if p is not None] + ["", 0, []]
    if isinstance(value, int):
        steps = [1, 2, 3, 10, abs(value) or 1, max(1, abs(value) // 2)]
        return same + [value + rng.choice((-1, 1)) * step for step in steps] + [-value]
    if isinstance(value, float):
        digits = len(repr(value).partition(".")[2].partition("e")[0]) or 1
        scale = max(abs(value), 1.0)
        return same + [round(value + sign * scale * f, digits)
                       for sign in (-1, 1) for f in (0.5, 0.1, 1.0)] + [value + 1.0, value - 1.0]
    if isinstance(value, (str, bytes)):
        return _alike_text(value, rng, same)
    if isinstance(value, (list, tuple)):
        return same + _alike_sequence(value, rng, pool)
    if isinstance(value, dict):
        edits: list[object] = [{**value, key: _pick(_alike(item, rng, pool), item, rng)}
                               for key, item in list(value.items())[:8]]
        edits += [{k: v for k, v in value.items() if k != key} for key in list(value)[:8]]
        return same + edits + [{**value, _pick(_alike("", rng, pool), "", rng): 1}]
    if isinstance(value, (set, frozenset)):
        return same + [type(value)(value - {item}) for item in list(value)[:8]] + \
            [type(value)(value | {p}) for p in pool[:50] if _hashable(p)]
    return [p for p in pool if type(p) is not type(value)] + ["", 0]


def _alike_text(value: str | bytes, rng: random.Random, same: list) -> list:
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    others = [p.decode("latin-1") if isinstance(p, bytes) else p for p in same]
    near = [o for o in others if abs(len(o) - len(text)) <= 2] or others
    chars = sorted(set(text) or set("".join(others)) or set("abcdefghijklmnopqrstuvwxyz"))
    edits = []
    for _ in range(6):
        at = rng.randrange(len(text) + 1)
        new = rng.choice(chars)
        edits += [text[:at] + new + text[at + 1:], text[:at] + new + text[at:],
                  text[:at] + text[at + 1:]]
    if len(text) > 1:
        at = rng.randrange(len(text) - 1)
        edits.append(text[:at] + text[at + 1] + text[at] + text[at + 2:])
    edits += [text + rng.choice(chars), text[:-1] or rng.choice(chars)]
    found = near + edits
    return [t.encode("latin-1") for t in found] if isinstance(value, bytes) else found


def _alike_sequence(value: list | tuple, rng: random.Random, pool: list[object]) -> list[object]:
    items = list(value)
    kind = type(value)
    edits: list[object] = []
    if items:
        at = rng.randrange(len(items))
        edits += [kind(items[:at] + items[at + 1:]), kind([*items[:at], items[at], *items[at:]]),
                  kind([*items[:at], _pick(_alike(items[at], rng, pool), items[at], rng), *items[at + 1:]])]
        if len(items) > 1:
            edits.append(kind(items[::-1]))
    else:
        edits += [kind([p]) for p in pool[:20] if not isinstance(p, (list, tuple, dict, set))]
    edits.append(kind([*items, items[-1] if items else 0]))
    return edits


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _differs(a: object, b: object) -> bool:
    try:
        return bool(a != b) and not bool(a == b)
    except Exception:
        return False


def _pick(candidates: list[object], value: object, rng: random.Random) -> object:
    """One candidate that differs from `value` (a fallback of its type when none does)."""
    usable = [c for c in candidates if _differs(c, value) and writable(c)]
    return rng.choice(usable) if usable else _fallback(value)


def _fallback(value: object) -> object:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + (value[:1] or "0")
    if isinstance(value, bytes):
        return value + (value[:1] or b"0")
    return "" if value is None else None


def wrong_values(value: object, rng: random.Random, pool: list[object]) -> list[object]:
    """Two different values, neither equal to `value`, drawn like the file's own literals
    (per grading, at random). A result made to equal anything equals both; an honest
    result, however buggy, equals at most one of them."""
    candidates = [c for c in _alike(value, rng, pool) if _differs(c, value) and writable(c)]
    rng.shuffle(candidates)
    chosen: list[object] = []
    for candidate in [*candidates, _fallback(value), [value]]:
        if _differs(candidate, value) and all(_differs(candidate, c) for c in chosen):
            chosen.append(candidate)
            if len(chosen) == 2:
                break
    return chosen
