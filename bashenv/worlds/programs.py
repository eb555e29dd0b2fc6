"""Programs whose halting behaviour is known, for Halt-v0.

`generate(rng, budget)` first draws the label (halts within `budget` line events, with
probability `halting_share`), then a family, then a program of that family with that
label. Families:

- countdown: `while n != 0: n -= step` halts iff the input is a multiple of the step;
- collatz:   `x -> x/2 | a*x+b` until 1, for (a, b) in (3, 1), (3, -1), (5, 1); from
             some inputs 3x-1 and 5x+1 fall into cycles that never reach 1;
- mutual:    mutually recursive is_even/is_odd drive `while not is_even(x): x = (x+k) % m`
             (m even): halts iff x is even or k is odd;
- gcd:       subtractive Euclid, which halts iff both inputs are positive or they are equal;
- bounded:   a counted loop (or two nested ones) that always ends, but is labelled by
             whether it ends within the budget.

Halting programs are kept to at most 1/MARGIN of the budget (by an estimate of their line
events), budget-exceeding counted loops to at least MARGIN times it, and the rest never
end, so a label does not hinge on the exact count (the sandbox run is the ground truth;
tests check the two always agree).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

MARGIN = 4
MIN_BUDGET = 2_000


@dataclass(frozen=True)
class Program:
    source: str
    input: str  # the program's stdin
    halts: bool  # the generator's label: halts within the budget it was made for
    family: str
    estimated_steps: int | None = None  # line events when it halts (a rough estimate)
    origin: str = ""  # where a mined program's function came from (task@commit:path::name)
    mutation: str = ""  # what was changed in it (shown after the decision: it hints)


Maker = Callable[[np.random.Generator, bool, int], "Program | None"]


def _countdown(rng: np.random.Generator, halts: bool, budget: int) -> Program | None:
    step = int(rng.integers(2, 10))
    rounds = int(rng.integers(1, max(2, min(1000, budget // (3 * MARGIN)))))
    n = step * rounds + (0 if halts else int(rng.integers(1, step)))
    source = (f"n = int(input())\nrounds = 0\nwhile n != 0:\n    n -= {step}\n"
              f"    rounds += 1\nprint(rounds)\n")
    return Program(source, f"{n}\n", halts, "countdown", 3 * rounds + 4 if halts else None)


def _collatz_fate(x: int, a: int, b: int, cap: int = 20_000) -> int | None:
    """Iterations until 1; -1 when x enters a cycle without 1; None when unknown."""
    seen: set[int] = set()
    for i in range(cap):
        if x == 1:
            return i
        if x in seen:
            return -1
        seen.add(x)
        x = x // 2 if x % 2 == 0 else a * x + b
        if x > 10**15:
            return None
    return None


def _collatz(rng: np.random.Generator, halts: bool, budget: int) -> Program | None:
    for _ in range(50):
        a, b = [(3, 1), (3, -1), (5, 1)][int(rng.integers(3))]
        x = int(rng.integers(2, 3000))
        fate = _collatz_fate(x, a, b)
        estimate = None if fate is None or fate < 0 else 4 * fate + 4
        if halts and estimate is not None and estimate * MARGIN <= budget:
            break
        if not halts and fate == -1:
            break
    else:
        return None
    op = f"{a} * x + {b}" if b > 0 else f"{a} * x - {-b}"
    source = (f"x = int(input())\nsteps = 0\nwhile x != 1:\n    if x % 2 == 0:\n"
              f"        x = x // 2\n    else:\n        x = {op}\n    steps += 1\n"
              f"print(steps)\n")
    return Program(source, f"{x}\n", halts, "collatz", estimate)


def _mutual(rng: np.random.Generator, halts: bool, budget: int) -> Program | None:
    m = 2 * int(rng.integers(5, 31))
    if halts:  # x even (no round), or k odd (one round makes x even)
        x, k = (int(rng.integers(0, m // 2)) * 2, int(rng.integers(1, m))) if rng.random() < 0.5 \
            else (int(rng.integers(0, m)), 2 * int(rng.integers(0, m // 2)) + 1)
    else:  # x odd and k even: x stays odd forever
        x, k = 2 * int(rng.integers(0, m // 2)) + 1, 2 * int(rng.integers(0, m // 2))
    source = ("def is_even(n):\n    if n == 0:\n        return True\n    return is_odd(n - 1)\n\n\n"
              "def is_odd(n):\n    if n == 0:\n        return False\n    return is_even(n - 1)\n\n\n"
              f"x = int(input())\nrounds = 0\nwhile not is_even(x):\n    x = (x + {k}) % {m}\n"
              "    rounds += 1\nprint(x, rounds)\n")
    estimate = 8 * m + 10 if halts else None
    return Program(source, f"{x}\n", halts, "mutual", estimate)


def _gcd_rounds(a: int, b: int, cap: int = 100_000) -> int | None:
    for i in range(cap):
        if a == b:
            return i
        if a > b:
            a -= b
        else:
            b -= a
    return None


def _gcd(rng: np.random.Generator, halts: bool, budget: int) -> Program | None:
    if halts:
        for _ in range(50):
            a, b = int(rng.integers(1, 2000)), int(rng.integers(1, 2000))
            rounds = _gcd_rounds(a, b)
            if rounds is not None and (3 * rounds + 3) * MARGIN <= budget:
                break
        else:
            return None
        estimate: int | None = 3 * rounds + 3
    else:  # a non-positive one, and unequal: the other grows (or stays) forever
        a = int(rng.integers(-50, 1))
        b = int(rng.integers(-50, 2000))
        if a == b:
            return None
        if rng.random() < 0.5:
            a, b = b, a
        estimate = None
    source = ("a, b = map(int, input().split())\nwhile a != b:\n    if a > b:\n"
              "        a -= b\n    else:\n        b -= a\nprint(a)\n")
    return Program(source, f"{a} {b}\n", halts, "gcd", estimate)


def _bounded(rng: np.random.Generator, halts: bool, budget: int) -> Program | None:
    mult, add, mod = int(rng.integers(2, 50)), int(rng.integers(0, 50)), int(rng.integers(97, 10_007))
    nested = bool(rng.random() < 0.5)
    if nested:  # about n*n line events: the outer line n times, the inner two n(n-1)/2 each
        small = int((budget / MARGIN) ** 0.5)
        n = int(rng.integers(1, small)) if halts else int(rng.integers(2 * small * MARGIN,
                                                                        4 * small * MARGIN))
        body = "for i in range(N):\n    for j in range(i):\n        acc = (acc * M + A + j) % P\n"
        estimate = n * n + 2
    else:
        n = int(rng.integers(1, budget // (2 * MARGIN))) if halts \
            else int(rng.integers(MARGIN * budget, 2 * MARGIN * budget))
        body = "for i in range(N):\n    acc = (acc * M + A) % P\n"
        estimate = 2 * n + 2
    source = ("acc = int(input())\n"
              + body.replace("N", str(n)).replace("M", str(mult)).replace("A", str(add))
              .replace("P", str(mod)) + "print(acc)\n")
    seed = int(rng.integers(0, 1000))
    return Program(source, f"{seed}\n", halts, "bounded", estimate if halts else None)


MAKERS: dict[str, Maker] = {"countdown": _countdown, "collatz": _collatz, "mutual": _mutual,
                            "gcd": _gcd, "bounded": _bounded}
FAMILIES: tuple[str, ...] = tuple(MAKERS)


def generate(rng: np.random.Generator, budget: int, halting_share: float = 0.5,
             families: Sequence[str] = FAMILIES, halts: bool | None = None) -> Program:
    """One program: its label drawn first (halts with probability `halting_share`, unless
    `halts` is given), then a family, then a program of that family with that label."""
    if halts is None:
        halts = bool(rng.random() < halting_share)
    for _ in range(200):
        family = families[int(rng.integers(len(families)))]
        program = MAKERS[family](rng, halts, budget)
        if program is not None:
            return program
    raise RuntimeError(f"no program of {list(families)} with halts={halts} for budget {budget}")
