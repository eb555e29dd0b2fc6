"""The grading container's scan (bashenv/grading/box_scan.py) on a host directory, without an
engine: its work grows with the number of paths, not their square, and what it writes back
stays bounded however many paths the agent made (the red team's two findings)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

USES_ENGINE = False

GRADING = Path(__file__).resolve().parents[1] / "bashenv" / "grading"


def _box_scan():
    spec = importlib.util.spec_from_file_location("box_scan", GRADING / "box_scan.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _job(tmp_path: Path, work: Path, seed: Path) -> dict:
    grade = tmp_path / "grade"
    for sub in ("py", "private"):
        (grade / sub).mkdir(parents=True)
    return {"workdir": str(work), "seed": str(seed), "owned": ["tests/test_core.py"],
            "protect_config": True, "allow_extensions": False, "grade_dir": str(grade),
            "probe": {"names": ["pytest"], "plugins": []}, "user": "nobody"}


def test_many_bytecode_files_and_long_paths_are_scanned_once_and_listed_bounded(tmp_path):
    box_scan = _box_scan()
    seed, work = tmp_path / "seed", tmp_path / "work"
    for root in (seed, work):
        (root / "pkg").mkdir(parents=True)
        (root / "pkg" / "core.py").write_text("def f():\n    return 1\n")
        (root / "tests").mkdir()
        (root / "tests" / "test_core.py").write_text("def test_f():\n    pass\n")
    # 6,000 stray .pyc files: each used to be checked against every reverted path (n²).
    for i in range(60):
        cache = work / "pkg" / f"p{i}" / "__pycache__"
        cache.mkdir(parents=True)
        for j in range(100):
            (cache / f"m{j}.cpython-311.pyc").write_bytes(b"")
    deep = work / "tests" / "/".join(["d" * 200] * 5)  # long paths: a big list if written whole
    deep.mkdir(parents=True)
    for i in range(1000):
        (deep / f"f{i}.txt").write_bytes(b"")
    box_scan.prepare(_job(tmp_path, work, seed))
    prepared = json.loads((tmp_path / "grade" / "private" / "prepared.json").read_text())
    cap = box_scan.LIST_CAP
    assert len(prepared["changed"]) == cap + 1 and prepared["changed"][-1] == f"[... {7000 - cap} more]"
    assert len(prepared["bytecode"]) == cap + 1 and "more]" in prepared["bytecode"][-1]
    assert not list(work.rglob("*.pyc"))  # every one removed, each found once
    assert (tmp_path / "grade" / "private" / "prepared.json").stat().st_size < 2 * cap * 1200


def test_the_list_cap_matches_what_a_verdict_keeps():
    sys.path.insert(0, str(GRADING))
    try:
        from bashenv.grading.verdict import LIST_LIMIT

        assert _box_scan().LIST_CAP == LIST_LIMIT
    finally:
        sys.path.remove(str(GRADING))
