"""What the environment layer prepares so that a task's setup is quick and adds little.

A task's setup (SWE-bench's `pip install -e .`) used to fetch the project's build backend
from the package index in every task image (pip's build isolation), and to install the
dependencies the environment's pins left out (pytest 5.4's `wcwidth`) into the task layer.
Now the environment layer (shared, built with the network) also
- runs project_deps.py on the project's tree (at the environment commit, in a throwaway
  build stage, so the tree is not stored): wheels of its build requirements go into a
  wheelhouse, and what installing the project would add is installed;
- installs the runtime requirements the project declares at the task's own base commit
  (pyproject.toml, setup.cfg, setup.py's literals), which may differ from the environment
  commit's (pytest 5.4's base commits need `wcwidth`, its environment commit does not).
Both are keyed by file contents, so tasks that declare the same share the layer. The
task's setup then runs each command first with `PIP_NO_INDEX=1` and the wheelhouse as
`PIP_FIND_LINKS`, and only if that fails again with the index (saying so in the build
log). The commands run as written; build isolation stays on.
"""

from __future__ import annotations

import ast
import configparser
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from bashenv.task.model import Task
from bashenv.task.source import read_at, repo_url, resolve_commit

SETUP_DIR = "/opt/bashenv/setup"  # in environment images: setup.sh, ca.crt, deps/
DEPS_DIR = f"{SETUP_DIR}/deps"  # requirements.txt (pinned), wheelhouse/ (when prepared)
PROBE = Path(__file__).with_name("project_deps.py")
PACKAGING_FILES = ("pyproject.toml", "setup.py", "setup.cfg")
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
# `.[test]`, `".[dev,docs]"`, `-e .[testing]`: the extras a setup command installs.
EXTRAS = re.compile(r"""(?:^|\s)["']?\.\[([\w.,-]+)\]""")


def setup_script(seed: str, uid: int) -> str:
    """setup.sh WORKDIR [COMMAND...]: the task layer's one RUN step. Runs the commands in
    the seed copy as root; then hands what they created to the agent user and points paths
    they left in the venv (an editable install's .pth / finder) at the workdir. Only files
    changed during the setup are searched for such paths (the whole venv took seconds).
    The offline attempt also skips byte-compiling: most of what pip installs then is the
    throwaway build environment (setuptools: hundreds of .pyc files, about a second)."""
    return f"""#!/bin/sh
workdir=$1; shift
cd {seed} || exit 1
stamp=$(mktemp)
export PIP_NO_CACHE_DIR=1
if [ -s {SETUP_DIR}/ca.crt ]; then  # pip behind a TLS-intercepting proxy
  export PIP_CERT={SETUP_DIR}/ca.crt SSL_CERT_FILE={SETUP_DIR}/ca.crt REQUESTS_CA_BUNDLE={SETUP_DIR}/ca.crt
fi
for cmd in "$@"; do
  if [ -d {DEPS_DIR}/wheelhouse ]; then
    if PIP_NO_INDEX=1 PIP_FIND_LINKS={DEPS_DIR}/wheelhouse PIP_NO_COMPILE=1 sh -c "$cmd"; then
      continue
    fi
    echo "bashenv: setup without the package index failed; again with it: $cmd"
  fi
  sh -c "$cmd" || {{ echo "bashenv: setup command failed: $cmd"; exit 1; }}
done
find {seed} ! -user {uid} -exec chown -h {uid}:{uid} {{}} +
find /opt/venv -cnewer "$stamp" -type f -exec grep -lF {seed} {{}} + | xargs -r sed -i "s#{seed}#$workdir#g"
rm -f "$stamp"
chown root:root /opt/bashenv && mkdir -p "$workdir" && chown {uid}:{uid} "$workdir"
"""


def setup_extras(commands: list[str]) -> str:
    """The extras the setup commands install the project with, as pip writes them
    (`[dev,test]`), or ""."""
    names = sorted({name for cmd in commands for match in EXTRAS.finditer(cmd)
                    for name in match.group(1).split(",") if name})
    return f"[{','.join(names)}]" if names else ""


@dataclass(frozen=True)
class DepsSource:
    commit: str  # the tree the probe runs on
    key: str  # the hash of its packaging files: what the environment's tag depends on


def deps_source(task: Task) -> DepsSource | None:
    """The tree whose dependencies the environment layer prepares: an imported task's
    `metadata.environment_setup_commit` (shared by the instances of one repository
    version, as SWE-bench builds its environments), else the base commit. Keyed by its
    packaging files, so that tasks whose files are equal share the layer. None when the
    task has no setup or the tree is no Python project."""
    if not task.environment.setup:
        return None
    given = task.metadata.get("environment_setup_commit")
    url, sha = (repo_url(task), given) if isinstance(given, str) and FULL_SHA.match(given) \
        else resolve_commit(task)
    texts = [read_at(url, sha, name) for name in PACKAGING_FILES]
    if texts[0] is None and texts[1] is None:
        return None
    return DepsSource(sha, hashlib.sha256(json.dumps(texts).encode()).hexdigest()[:16])


def _lines(value: str) -> list[str]:
    """setup.cfg's list value: one requirement a line (or `;`-free), comments dropped."""
    items = (line.split("#", 1)[0].strip() for line in value.splitlines())
    return [item for item in items if item]


def _setup_py_requirements(text: str, extras: list[str]) -> list[str]:
    """`install_requires` (and the named `extras_require`) of setup.py's setup(...) call,
    when given as literals or as names bound to literals at module level (pytest 5.4's
    `INSTALL_REQUIRES = [...]`); whatever setup.py computes otherwise is not seen."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    bound = {target.id: node.value for node in tree.body if isinstance(node, ast.Assign)
             for target in node.targets if isinstance(target, ast.Name)}

    def literal(node: ast.expr) -> object:
        node = bound.get(node.id, node) if isinstance(node, ast.Name) else node
        try:
            return ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None

    found: list[str] = []
    for call in ast.walk(tree):
        func = call.func if isinstance(call, ast.Call) else None
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name != "setup" or not isinstance(call, ast.Call):
            continue
        for keyword in call.keywords:
            value = literal(keyword.value) if keyword.arg in (
                "install_requires", "extras_require") else None
            if keyword.arg == "install_requires" and isinstance(value, (list, tuple)):
                found += [str(item) for item in value]
            elif isinstance(value, dict):
                found += [str(item) for extra in extras
                          if isinstance(value.get(extra), (list, tuple)) for item in value[extra]]
    return found


def declared_requirements(task: Task, extras: str) -> list[str]:
    """The runtime requirements (and those of the named extras) the project declares at the
    task's base commit: pyproject.toml's [project], setup.cfg's [options], setup.py's
    literal setup(install_requires=...). Computed ones only the probe sees (at the
    environment commit)."""
    url, sha = resolve_commit(task)
    names = [e for e in extras.strip("[]").split(",") if e]
    found: list[str] = []
    pyproject = read_at(url, sha, "pyproject.toml")
    if pyproject:
        try:
            project = tomllib.loads(pyproject).get("project", {})
        except tomllib.TOMLDecodeError:
            project = {}
        found += project.get("dependencies", [])
        for name in names:
            found += project.get("optional-dependencies", {}).get(name, [])
    setup_cfg = read_at(url, sha, "setup.cfg")
    if setup_cfg:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(setup_cfg)
        except configparser.Error:
            parser = configparser.ConfigParser()
        found += _lines(parser.get("options", "install_requires", fallback=""))
        for name in names:
            found += _lines(parser.get("options.extras_require", name, fallback=""))
    setup_py = read_at(url, sha, "setup.py")
    if setup_py:
        found += _setup_py_requirements(setup_py, names)
    requirement = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[\w,.-]*\])?\s*([<>=!~;(@]|$)")
    return list(dict.fromkeys(r for r in found if isinstance(r, str) and requirement.match(r)))


def deps_stage(env_stage: str, source: DepsSource, extras: str, pip_env: str, install: str,
               declared: bool) -> list[str]:
    """Dockerfile lines after the environment stage `env_stage`: a throwaway stage runs the
    probe on the project (the context's project/, exported at `source.commit`); the final stage
    copies only its results and runs `install` (pip on DEPS_DIR/requirements.txt, plus
    the `declared` requirements if any: else only when the probe found something)."""
    note = "echo 'bashenv: the project dependencies did not install; the task setup will try'"
    return [
        f"# the project's dependencies, from packaging files {source.key}",
        f"FROM {env_stage} AS deps",
        "COPY project/ /tmp/bashenv-project/",
        "COPY project_deps.py /tmp/bashenv-project-deps.py",
        f"RUN cd /tmp/bashenv-project && {pip_env}python /tmp/bashenv-project-deps.py "
        f"{DEPS_DIR} '{extras}'",
        f"FROM {env_stage}",
        f"COPY --from=deps {DEPS_DIR}/ {DEPS_DIR}/",
        f"RUN ({install}) || {note}" if declared else
        f"RUN if [ -s {DEPS_DIR}/requirements.txt ]; then ({install}) || {note}; fi",
    ]
