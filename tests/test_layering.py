"""Imports flow one way between bashenv's rooms (the README's table), checked on the source.

A room may import rooms of lower layers only. The sandbox room in particular knows
nothing of tasks or images: a new back-end is one module, and the shell, the grader and
the env reach sandboxes only through its protocols.
"""

from __future__ import annotations

import ast
from pathlib import Path

USES_ENGINE = False  # reads source files only (conftest)

PACKAGE = Path(__file__).resolve().parents[1] / "bashenv"
LAYERS = {  # room -> layer; a room imports rooms of a strictly lower layer (or itself)
    "errors": 0, "bundled": 1, "_data": 1, "jsonl": 1, "cache": 1,
    "task": 2, "sandbox": 2,
    "images": 3,
    "grading": 4,
    "swebench": 5, "trace": 5,
    "agents": 6, "env": 6,
    "runner": 7, "rl": 7, "worlds": 7,
    "bench": 8, "report": 8, "cluster": 8,
    "cli": 9, "__init__": 9, "__main__": 9,
}


def _room(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def _is_room(name: str) -> bool:
    return (PACKAGE / f"{name}.py").exists() or (PACKAGE / name / "__init__.py").exists()


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module == "bashenv" and node.level == 0:
            # `from bashenv import jsonl` imports a room; `from bashenv import run`, __init__
            found.update(f"bashenv.{a.name}" if _is_room(a.name) else "bashenv" for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "bashenv" or name.startswith("bashenv.")}


def test_every_room_has_a_layer():
    rooms = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    assert rooms <= set(LAYERS), f"rooms without a layer: {rooms - set(LAYERS)}"


def test_imports_flow_one_way():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        room = _room(".".join(relative.parts))
        for imported in _imports(path):
            target = _room(imported)
            if target != room and LAYERS[target] >= LAYERS[room]:
                wrong.append(f"{relative}: {room} (layer {LAYERS[room]}) imports {imported} "
                             f"(layer {LAYERS[target]})")
    assert not wrong, "\n".join(wrong)


def test_the_docker_client_lives_with_the_docker_backend():
    users = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
             if "import docker" in p.read_text() or "from docker" in p.read_text()]
    assert all(u.startswith(("sandbox/", "images/")) for u in users), users
