"""A run directory read back: its results records, trajectories and casts.

Layout (written by `bashenv run`): RUN_DIR/results.jsonl, whose records name their
`trajectory` and `cast` files relative to the results file's directory. A results .jsonl
file may be given instead of its directory. Everything read here was produced while an
untrusted agent ran, so it is parsed tolerantly and never executed or trusted as markup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bashenv.errors import BashenvError
from bashenv.runner import ResultsFile
from bashenv.runner import read_trajectory as runner_read_trajectory

RESULTS_NAME = "results.jsonl"


@dataclass
class Trajectory:
    """A trajectory JSONL (`bashenv-trajectory/1`): header, steps and the end line (None when
    the run was cut before it was written)."""

    path: Path
    header: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    end: dict[str, Any] | None = None


@dataclass
class Episode:
    record: dict[str, Any]
    trajectory: Path | None
    cast: Path | None

    @property
    def task_id(self) -> str:
        return str(self.record.get("task_id", ""))


@dataclass
class Run:
    results: Path
    episodes: list[Episode]

    @property
    def base(self) -> Path:
        return self.results.parent


def results_path(path: str | Path) -> Path:
    """The results file of RUN_DIR (or the .jsonl given)."""
    path = Path(path)
    if path.is_dir():
        if (path / RESULTS_NAME).is_file():
            return path / RESULTS_NAME
        legacy = path.with_suffix(".jsonl")  # `-o results/gold.jsonl` keeps its files in results/gold/
        if legacy.is_file():
            return legacy
        raise BashenvError(f"{path}: not a run directory (no {RESULTS_NAME} in it)")
    if path.is_file():
        return path
    raise BashenvError(f"{path}: no such run directory or results file")


def load_run(path: str | Path) -> Run:
    """The latest record per (agent, task) of a run, with its trajectory and cast files."""
    results = results_path(path)
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for record in ResultsFile(results).load():
        latest[(str(record.get("agent", "")), str(record["task_id"]))] = record
    if not latest:
        raise BashenvError(f"{results}: no results records in it")
    episodes = [Episode(record, _inside(results.parent, record.get("trajectory")),
                        _inside(results.parent, record.get("cast")))
                for _, record in sorted(latest.items())]
    return Run(results, episodes)


def _inside(base: Path, relative: Any) -> Path | None:
    """An existing file named by a record, only when it lies under the run's directory."""
    if not isinstance(relative, str) or not relative:
        return None
    root = base.resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target


def read_trajectory(path: str | Path) -> Trajectory:
    """A trajectory file (the runner's reader: torn lines skipped, a missing end tolerated);
    an unreadable or foreign file is an error naming it."""
    path = Path(path)
    try:
        header, steps, end = runner_read_trajectory(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise BashenvError(f"{path}: cannot read trajectory: {exc}") from None
    if not header and not steps:
        raise BashenvError(f"{path}: not a bashenv trajectory (no header or step lines)")
    return Trajectory(path, header, steps, end)
