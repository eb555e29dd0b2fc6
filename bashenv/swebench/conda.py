"""Conda package specs as pip requirements: SWE-bench creates conda environments (a spec's
`packages: "numpy=1.19 'pandas<2'"`, or the repository's environment.yml); bashenv's
environments are a venv filled by pip, so each conda spec becomes the pip requirement of
the same project, and what only conda ships (Python itself, C libraries, compilers) is
left out and named in the task's notes.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import yaml

# Conda package names whose project is called otherwise on PyPI.
PIP_NAMES = {
    "dask-core": "dask", "matplotlib-base": "matplotlib", "iris": "scitools-iris",
    "pytables": "tables", "pyqt": "PyQt5", "pytorch": "torch", "msgpack-python": "msgpack",
    "python-graphviz": "graphviz", "netcdf4": "netCDF4", "ruamel_yaml": "ruamel.yaml",
    "cf_units": "cf-units", "setuptools-scm": "setuptools_scm", "pyside2": "PySide2",
}
# Conda packages that are not Python projects (or have no usable wheel): pip cannot install
# them; Debian packages or the base image stand in where a test needs them.
CONDA_ONLY = frozenset({
    "python", "pip", "hdf5", "libnetcdf", "netcdf-fortran", "gdal", "libgdal", "proj",
    "geos", "compilers", "c-compiler", "cxx-compiler", "fortran-compiler", "make", "nodejs",
    "ffmpeg", "graphviz", "imagemagick", "ghostscript", "inkscape", "pkg-config", "tk",
    "gtk3", "gtk4", "pygobject", "wxpython", "qt", "mkl", "openblas", "libblas", "liblapack",
    "blas", "cudatoolkit", "esmpy", "cdms2", "pynio", "pandoc", "texlive-core", "git",
    "libstdcxx-ng", "libgcc-ng", "zlib", "freetype", "libpng", "jpeg", "poppler", "eccodes",
})
_SPEC = re.compile(r"^([A-Za-z0-9_.\-]+)\s*(.*)$")


def pip_requirement(conda: str) -> str | None:
    """`numpy=1.19` → `numpy==1.19.*`, `conda-forge::dask-core>=2022` → `dask>=2022`;
    None for a package only conda has (see CONDA_ONLY)."""
    text = conda.strip().split("::")[-1]
    match = _SPEC.match(text)
    if not match:
        return None
    name, rest = match.group(1), match.group(2).strip()
    if name.lower() in CONDA_ONLY:
        return None
    name = PIP_NAMES.get(name.lower(), name)
    # `name 1.19 build`: conda's version (and build string) as separate words.
    version = rest.split()[0] if rest[:1].isdigit() else rest.replace(" ", "")
    if version.startswith("=="):
        return f"{name}=={version[2:].split('=')[0]}"  # a trailing `=build` is conda's
    if version.startswith("=") or version[:1].isdigit():
        # conda's `=1.19` (or `1.19`) is a prefix: 1.19, 1.19.1, ...
        prefix = version.lstrip("=").split("=")[0].rstrip("*").rstrip(".")
        return f"{name}=={prefix}.*" if prefix else name
    return f"{name}{version}"


@dataclass
class Converted:
    """pip requirements from conda specs, and what was left out (for the task's notes)."""

    requirements: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def add(self, conda: str) -> None:
        req = pip_requirement(conda)
        if req is None:
            self.dropped.append(conda.strip())
        elif req not in self.requirements:
            self.requirements.append(req)


def from_packages(packages: str) -> Converted:
    """A spec's `packages` string as conda's command line takes it (shell words, quoted
    or not: scikit-learn's `'numpy==1.19.2' 'pandas<2.0.0' pytest`)."""
    out = Converted()
    for word in shlex.split(packages):
        out.add(word)
    return out


def from_environment_yml(text: str, where: str) -> Converted:
    """The `dependencies` of a conda environment file: conda specs converted, the `pip:`
    sub-list kept as it is (less editable installs and `-r` files, which name paths of
    the repository's own checkout). Raises ValueError naming `where` when it is not one."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{where}: not valid YAML: {exc}") from None
    deps = data.get("dependencies") if isinstance(data, dict) else None
    if not isinstance(deps, list):
        raise ValueError(f"{where}: no `dependencies` list")
    out = Converted()
    for dep in deps:
        if isinstance(dep, dict):
            for line in dep.get("pip") or []:
                line = str(line).strip()
                if line.startswith(("-e", "-r", "--")) or line == ".":
                    out.dropped.append(f"pip: {line}")
                elif line not in out.requirements:
                    out.requirements.append(line)
        elif dep is not None:
            out.add(str(dep))
    return out
