"""pip packages that must be compiled: the build tools, installed only when pip needs them.

Real projects' requirement files name packages that ship no wheel for some Pythons
(Django's tests/requirements/py3.txt: `pywatchman` has none at all, `pylibmc` none for 3.12+,
and then needs libmemcached's headers). SWE-bench's images always carry a compiler
(build-essential, libffi-dev, ...). Here the environment layer first runs pip as it is; only
if that fails does the same RUN step install a compiler, Python's headers and the Debian
libraries the named packages are known to build against (NATIVE_LIBS), and run pip again.
So environments that install from wheels stay small, and the ones that cannot get what
SWE-bench's images have. A package missing from NATIVE_LIBS that needs a library of its own
still fails, with pip's compiler error in the build message: add it there, or to a base
recipe of your own (BASHENV_IMAGES).
"""

from __future__ import annotations

import json
import re

# Always, once a build is needed: a C/C++ compiler and make, pkg-config (many setup.py
# scripts ask it for flags), and the headers of Debian's Python (the bases' interpreter;
# a python:X.Y-slim base has its own in /usr/local/include and is left alone).
BUILD_TOOLS = ("build-essential", "pkg-config")
# pip project name (normalised) → the Debian -dev packages its build needs.
NATIVE_LIBS: dict[str, tuple[str, ...]] = {
    "pylibmc": ("libmemcached-dev", "zlib1g-dev"),
    "mysqlclient": ("default-libmysqlclient-dev",),
    "psycopg2": ("libpq-dev",),
    "pillow": ("libjpeg-dev", "zlib1g-dev"),
    "lxml": ("libxml2-dev", "libxslt1-dev"),
    "cffi": ("libffi-dev",),
    "argon2-cffi-bindings": ("libffi-dev",),
    "python-ldap": ("libldap2-dev", "libsasl2-dev"),
    "pycurl": ("libcurl4-openssl-dev", "libssl-dev"),
    "cryptography": ("libssl-dev", "libffi-dev"),
    "pyyaml": ("libyaml-dev",),
    "h5py": ("libhdf5-dev",),
    "tables": ("libhdf5-dev",),
    "netcdf4": ("libnetcdf-dev",),
    "gdal": ("libgdal-dev",),
    "pygraphviz": ("libgraphviz-dev",),
    "python-snappy": ("libsnappy-dev",),
    "cairocffi": ("libcairo2-dev",),
    "pycairo": ("libcairo2-dev",),
    "matplotlib": ("libfreetype6-dev", "libpng-dev"),
    "scipy": ("gfortran", "libopenblas-dev"),
}
PY_HEADERS = "$(ls -d /usr/local/include/python3.* >/dev/null 2>&1 || echo python3-dev)"


def project_name(requirement: str) -> str:
    """A requirement's project name, normalised as pip compares them (`Py_YAML>=5` → py-yaml)."""
    name = re.split(r"[\s\[<>=!~;@(]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def build_packages(requirements: list[str]) -> list[str]:
    """The Debian packages a failed pip install gets before its second attempt."""
    libs = {lib for req in requirements for lib in NATIVE_LIBS.get(project_name(req), ())}
    return [*BUILD_TOOLS, *sorted(libs)]


def pip_install_step(requirements: list[str], pip_env: str, upgrade: bool = False) -> str:
    """The shell of one RUN step: pip; if it fails, the build tools, then pip again.
    `pip_env` prefixes each pip call (the CA bundle variables). A requirement on pip itself
    is installed first, alone, so that the new pip resolves and builds the rest (Debian's
    old one is slow to resolve and lets system packages into build isolation). `upgrade`:
    the requirements are resolved as in a fresh environment (SWE-bench's conda env), not
    satisfied by the copies Debian's base ships (bullseye's pytest 6.0 for a bare `pytest`)."""
    own = [r for r in requirements if project_name(r) == "pip"]
    rest = [r for r in requirements if project_name(r) != "pip"]
    flags = "--no-cache-dir --upgrade " if upgrade else "--no-cache-dir "
    pip = " && ".join(f"{pip_env}pip install {flags}" + " ".join(map(json.dumps, group))
                      for group in (own, rest) if group)
    apt = ("apt-get update -qq && apt-get install -y -qq --no-install-recommends "
           + " ".join(build_packages(requirements)) + f" {PY_HEADERS}"
           " && rm -rf /var/lib/apt/lists/*")
    note = "echo 'bashenv: pip needs a compiler here; installing build tools, then pip again'"
    return f"{pip} || ({note} && {apt} && {pip})"
