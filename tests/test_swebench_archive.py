"""SWE-bench's package as bashenv reads it from a wheel or sdist ($BASHENV_SWEBENCH_SPECS):
its files extracted once into the cache (nothing left in /tmp per process), and an archive
that is not one, or holds no specs, named in the error."""

from __future__ import annotations

import io
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest

from bashenv.errors import TaskError
from bashenv.swebench import specs

USES_ENGINE = False
CONSTANTS = b"MAP_REPO_VERSION_TO_SPECS_PY = {'o/n': {'1.0': {'python': '3.9'}}}\n"


def _sdist(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as sdist:
        for name, data in members.items():
            info = tarfile.TarInfo(f"swebench-9.9/{name}")
            info.size = len(data)
            sdist.addfile(info, io.BytesIO(data))
    return path


def test_an_sdist_is_extracted_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BASHENV_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    sdist = _sdist(tmp_path / "swebench-9.9.tar.gz",
                   {"swebench/harness/constants/python.py": CONSTANTS})
    first = specs._spec_file_from(sdist)
    assert first.read_bytes() == CONSTANTS and (tmp_path / "cache") in first.parents
    assert specs._spec_file_from(sdist) == first  # the same extraction, reused
    assert list((tmp_path / "tmp").iterdir()) == []
    assert [p.name for p in first.parents[2].parent.iterdir()] == [first.parents[2].name]


def test_a_wheel_works_as_an_sdist_does(tmp_path, monkeypatch):
    monkeypatch.setenv("BASHENV_CACHE", str(tmp_path / "cache"))
    wheel = tmp_path / "swebench-9.9-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("swebench/harness/constants/python.py", CONSTANTS)
    assert specs._spec_file_from(wheel).read_bytes() == CONSTANTS


@pytest.mark.parametrize(("name", "content", "match"), [
    ("swebench-9.9.tar.gz", None, "holds none of"),
    ("swebench-9.9.tar.gz", b"not gzip", "swebench-9.9.tar.gz"),
    ("swebench-9.9.whl", b"not a zip", "swebench-9.9.whl"),
    ("swebench.txt", b"", "not a .py file, wheel or sdist"),
])
def test_archives_that_hold_no_specs_are_named(tmp_path, monkeypatch, name, content, match):
    monkeypatch.setenv("BASHENV_CACHE", str(tmp_path / "cache"))
    path = tmp_path / name
    if content is None:
        _sdist(path, {"README.md": b"no specs here"})
    else:
        path.write_bytes(content)
    with pytest.raises(TaskError, match=match):
        specs._spec_file_from(path)
