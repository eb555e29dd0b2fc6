"""Recipes → Docker images, content-hashed so that an unchanged recipe or task is a cache hit.

Layers: base (debootstrap or FROM) → environment (venv + Python packages, shared by
tasks with equal environments) → task (repository at its base commit + setup).
Hidden tests are never part of any image.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import docker.errors
import git

from bashenv.cache import file_lock
from bashenv.errors import ImageBuildError
from bashenv.images.native import pip_install_step
from bashenv.images.prune import Pruning, prune
from bashenv.images.recipes import RECIPE_VERSION, BaseRecipe, load_recipe
from bashenv.images.setup_layer import (
    PROBE,
    SETUP_DIR,
    DepsSource,
    declared_requirements,
    deps_source,
    deps_stage,
    setup_extras,
    setup_script,
)
from bashenv.sandbox.engine import ENGINE_ERRORS, LABEL, client, explain
from bashenv.task.model import Task
from bashenv.task.source import export_base_repo, resolve_commit

log = logging.getLogger("bashenv.images")

# A non-interactive shell environment: no pagers, no prompts, no progress bars.
QUIET_ENV = {
    "LANG": "C.UTF-8",
    "PAGER": "cat",
    "GIT_PAGER": "cat",
    "MANPAGER": "cat",
    "PIP_PROGRESS_BAR": "off",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "TQDM_DISABLE": "1",
    "DEBIAN_FRONTEND": "noninteractive",
    "GIT_TERMINAL_PROMPT": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
}
AGENT_USER, AGENT_UID = "agent", 1000  # the unprivileged user agents (and tests) run as
SEED_DIR = "/opt/bashenv/repo"  # the repository at its base commit, read-only
GITIGNORE = "__pycache__/\n*.py[co]\n.pytest_cache/\n*.egg-info/\n"


@dataclass(frozen=True)
class TaskImage:
    tag: str
    base_sha: str  # the one commit of the repository inside the image


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps([RECIPE_VERSION, *parts], sort_keys=True).encode()).hexdigest()


def _image_labels(tag: str) -> dict[str, str] | None:
    try:
        return client().images.get(tag).labels or {}
    except docker.errors.ImageNotFound:
        return None


def ca_bundle() -> Path | None:
    """The host's CA bundle, for pip behind a TLS-intercepting proxy (PIP_CERT etc. win)."""
    for var in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        if os.environ.get(var) and Path(os.environ[var]).is_file():
            return Path(os.environ[var])
    default = Path("/etc/ssl/certs/ca-certificates.crt")
    return default if default.is_file() else None


def _docker_build(context: Path, tag: str, what: str, labels: dict[str, str]) -> list[str]:
    """Build `context` (its Dockerfile) as `tag`; errors name `what` and the failing step.
    Returns the images its steps made (the last one is `tag`)."""
    step = "(before the first step)"
    tail: list[str] = []
    layers: list[str] = []  # the image each step left, to remove if the build fails
    # The labels as one LABEL instruction (the API's `labels` adds one build step per label,
    # each a container commit: seconds per task image on a loaded machine).
    label_line = "LABEL " + " ".join(f"{k}={json.dumps(v)}" for k, v in
                                     {LABEL: "image", **labels}.items())
    dockerfile = context / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().rstrip("\n") + "\n" + label_line + "\n")
    try:
        for chunk in client().api.build(
            path=str(context), tag=tag, rm=True, forcerm=True, network_mode="host", decode=True,
        ):
            # One chunk may hold several lines (coalesced when the machine is busy).
            for line in chunk.get("stream", "").splitlines():
                line = line.rstrip()
                if line.startswith("Step "):
                    step = line
                elif line.startswith(" ---> ") and " " not in line[6:]:
                    layers.append(line[6:])
                if line:
                    tail = [*tail[-19:], line]
                    log.debug("%s: %s", what, line)
            if "error" in chunk:
                _remove_untagged(layers)
                output = "\n".join(tail[-10:])
                step = _failed_setup_step(step, tail)
                raise ImageBuildError(
                    f"building {what} failed at {step}: {chunk['error'].strip()}\n{output}"
                )
    except ENGINE_ERRORS as exc:
        _remove_untagged(layers)
        raise ImageBuildError(f"building {what} failed at {step}: {explain(exc)}") from None
    return layers


def _failed_setup_step(step: str, output: list[str]) -> str:
    """The task's setup step named by the command of it that failed (`Step 3/4 : RUN CMD`),
    as if each command were a step of its own; setup.sh says which one it was."""
    marker = "bashenv: setup command failed: "
    failed = [line[len(marker):] for line in output if line.startswith(marker)]
    return f"{step.split(' : ', 1)[0]} : RUN {failed[-1]}" if failed else step


def _remove_untagged(layers: list[str]) -> None:
    """Remove what a failed build left behind: its untagged step images, last first.
    Tagged images (the FROM image) and layers other images still build on stay."""
    for image_id in reversed(layers):
        try:
            if not client().api.inspect_image(image_id)["RepoTags"]:
                client().api.remove_image(image_id, noprune=False)
        except ENGINE_ERRORS:
            pass


def _debootstrap_base(recipe: BaseRecipe) -> None:
    spec = recipe.debootstrap
    assert spec is not None
    if shutil.which("debootstrap") is None:
        raise ImageBuildError(f"base {recipe.name}: debootstrap is not installed "
                              "(Debian: apt-get install debootstrap; from a checkout, "
                              "scripts/bootstrap.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="bashenv-rootfs-", dir="/var/tmp") as tmp:
        root, tarball = Path(tmp, "root"), Path(tmp, "root.tar")
        cmd = ["debootstrap", f"--variant={spec.variant}"]
        if spec.packages:
            cmd.append("--include=" + ",".join(spec.packages))
        cmd += [spec.suite, str(root), spec.mirror]
        log.info("base %s: %s", recipe.name, " ".join(cmd))
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-10:])
            raise ImageBuildError(f"base {recipe.name}: debootstrap failed:\n{tail}")
        shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
        shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
        subprocess.run(["tar", "-C", str(root), "-cf", str(tarball), "."], check=True)
        repo, tag = recipe.tag.split(":")
        client().api.import_image(
            src=str(tarball), repository=repo, tag=tag,
            changes=[f"LABEL {LABEL}=image", "ENV LANG=C.UTF-8", 'CMD ["sleep", "infinity"]'],
        )


def _from_base(recipe: BaseRecipe) -> None:
    """FROM a registry image, then the recipe's steps; pip in them (e.g. the slim recipes'
    `pip install pytest`) gets the host's CA bundle as the task layer's setup does."""
    with tempfile.TemporaryDirectory(prefix="bashenv-build-") as tmp:
        lines = [f"FROM {recipe.from_image}"]
        if recipe.run:
            bundle = ca_bundle()
            Path(tmp, "ca.crt").write_bytes(bundle.read_bytes() if bundle else b"")
            lines += ["COPY ca.crt /tmp/bashenv-ca.crt",
                      SETUP_ARGS,
                      *(f"RUN {cmd}" for cmd in recipe.run), "RUN rm -f /tmp/bashenv-ca.crt"]
        Path(tmp, "Dockerfile").write_text("\n".join(lines) + "\n")
        _docker_build(Path(tmp), recipe.tag, f"base {recipe.name}", {})


def build_base(recipe: BaseRecipe) -> tuple[str, bool]:
    """(tag, built?) for a base recipe; skipped when an image of its hash exists."""
    with file_lock(_lock_name(recipe.tag)):
        if _image_labels(recipe.tag) is not None:
            return recipe.tag, False
        (_debootstrap_base if recipe.debootstrap else _from_base)(recipe)
        return recipe.tag, True


def _lock_name(tag: str) -> str:
    return "image-" + tag.replace("/", "_").replace(":", "_")


def _env_dockerfile(task: Task, base_tag: str, source: DepsSource | None) -> str:
    """The environment layer; its text is hashed into the tag, so any change rebuilds.
    `source`: the tree whose dependencies it prepares for the task's setup (setup_layer.py)."""
    env = task.environment
    envs = {**QUIET_ENV, "VIRTUAL_ENV": "/opt/venv", **env.env}
    lines = [
        f"FROM {base_tag} AS env",
        "ENV " + " ".join(f"{k}={json.dumps(v)}" for k, v in envs.items()),
        "COPY gitignore /etc/bashenv-gitignore",
        "RUN git config --system core.excludesFile /etc/bashenv-gitignore"
        " && git config --system safe.directory '*'"
        " && git config --system init.defaultBranch main"
        " && python3 -m venv --system-site-packages /opt/venv"
        f" && useradd --create-home --uid {AGENT_UID} --shell /bin/bash {AGENT_USER}",
        'ENV PATH="/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"',
    ]
    if env.python_packages:
        # ca.crt: the host's CA bundle, for pip behind a TLS-intercepting proxy. (These steps
        # are unchanged so that Docker's cache reuses older environments' package layers.)
        cert = ("PIP_CERT=/tmp/bashenv-ca.crt SSL_CERT_FILE=/tmp/bashenv-ca.crt "
                "REQUESTS_CA_BUNDLE=/tmp/bashenv-ca.crt ")
        # A package without a wheel here makes the step install build tools (native.py).
        install = pip_install_step(env.python_packages, cert, upgrade=True)
        lines += ["COPY ca.crt /tmp/bashenv-ca.crt",
                  f"RUN ({install}) && rm -f /tmp/bashenv-ca.crt"]
    # The task layer's setup step, and the CA bundle it gives pip (kept: tasks need it).
    # The task's workdir is set here, not in the task layer: one build step fewer per task.
    lines += [f"COPY ca.crt setup.sh {SETUP_DIR}/", 'CMD ["sleep", "infinity"]',
              f"WORKDIR {task.workdir}"]
    if source:
        cert = " ".join(f"{var}={SETUP_DIR}/ca.crt" for var in
                        ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")) + " " \
            if ca_bundle() else ""
        extras = setup_extras(env.setup)
        declared = declared_requirements(task, extras)
        install = pip_install_step(["-r", f"{SETUP_DIR}/deps/requirements.txt", *declared], cert)
        lines += deps_stage("env", source, extras, cert, install, bool(declared))
    return "\n".join(lines) + "\n"


def _env_tag(dockerfile: str) -> str:
    return "bashenv/env:" + _digest(dockerfile, GITIGNORE, SETUP_SCRIPT, PROBE.read_text())[:16]


def build_env(task: Task, base_tag: str) -> tuple[str, bool]:
    source = deps_source(task)
    dockerfile = _env_dockerfile(task, base_tag, source)
    tag = _env_tag(dockerfile)
    with file_lock(_lock_name(tag)):
        if _image_labels(tag) is not None:
            return tag, False
        with tempfile.TemporaryDirectory(prefix="bashenv-build-") as tmp:
            context = Path(tmp)
            (context / "Dockerfile").write_text(dockerfile)
            (context / "gitignore").write_text(GITIGNORE)
            (context / "setup.sh").write_text(SETUP_SCRIPT)
            bundle = ca_bundle()
            (context / "ca.crt").write_bytes(bundle.read_bytes() if bundle else b"")
            if source:
                _export(task.model_copy(update={"base_commit": source.commit}), context / "project",
                        f"environment of task {task.id}", "export the project at its "
                        "environment commit")
                shutil.copy(PROBE, context / PROBE.name)
            layers = _docker_build(context, tag, f"environment of task {task.id}", {})
            _remove_untagged(layers)  # the throwaway stage, project tree and all
        return tag, True


def _export(task: Task, dest: Path, what: str, step: str) -> str:
    try:
        return export_base_repo(task, dest)
    except (OSError, git.GitCommandError) as exc:  # e.g. the disk is full
        raise ImageBuildError(f"building {what} failed at step '{step}': {exc}") from None


CA_ENV = ("PIP_CERT=/tmp/bashenv-ca.crt SSL_CERT_FILE=/tmp/bashenv-ca.crt "
          "REQUESTS_CA_BUNDLE=/tmp/bashenv-ca.crt ")
# For a base recipe's steps, as one ARG instruction (one build step): the CA bundle, and no
# pip cache (it would stay in the layer).
SETUP_ARGS = f"ARG {CA_ENV.strip()} PIP_NO_CACHE_DIR=1"
SETUP_SCRIPT = setup_script(SEED_DIR, AGENT_UID)


def _task_dockerfile(task: Task, env_tag: str) -> str:
    """The task layer: the repository goes straight to SEED_DIR, owned by the agent user,
    in one layer (a later `mv`/`chown -R` would store every file a second time); each
    container copies it into its own workdir (a size-bounded tmpfs, or the writable layer).
    It comes as one tar whose entries already name the agent user (ADD unpacks it keeping
    owners): the builder then checksums one file, not every file of the tree as COPY does.

    Then one RUN: the environment's setup.sh runs the setup commands in the seed copy (as
    root, pip given the host's CA bundle and first no index but the environment's
    wheelhouse), hands what they created to the agent user, and points the paths to the
    seed they left in the venv at the workdir, where the repository is when tests run.
    The step is named by the task's own commands. Few steps: each is a container commit."""
    setup = ["/bin/sh", f"{SETUP_DIR}/setup.sh", task.workdir, *task.environment.setup]
    lines = [f"FROM {env_tag}", f"ADD repo.tar {SEED_DIR}/", f"RUN {json.dumps(setup)}"]
    return "\n".join(lines) + "\n"


def _agent_tar(tree: Path, dest: Path) -> None:
    """`tree` as a tar whose entries belong to the agent user."""
    def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = AGENT_UID
        info.uname = info.gname = ""
        return info

    with tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as archive:
        archive.add(tree, arcname=".", filter=owned)


def _task_tag(task: Task, dockerfile: str) -> str:
    _, source_sha = resolve_commit(task)
    return f"bashenv/task-{task.id.lower()}:{_digest(dockerfile, source_sha)[:16]}"


def image_tags(task: Task) -> tuple[str, str, str]:
    """The base, environment and task image tags `task` needs as it is now (builds nothing)."""
    base_tag = load_recipe(task.environment.base).tag
    env_tag = _env_tag(_env_dockerfile(task, base_tag, deps_source(task)))
    return base_tag, env_tag, _task_tag(task, _task_dockerfile(task, env_tag))


def build_task_image(task: Task) -> tuple[TaskImage, int]:
    """The task's image (built when missing) and how many images were built on the way."""
    base_tag, built_base = build_base(load_recipe(task.environment.base))
    env_tag, built_env = build_env(task, base_tag)
    dockerfile = _task_dockerfile(task, env_tag)
    tag = _task_tag(task, dockerfile)
    with file_lock(_lock_name(tag)):
        labels = _image_labels(tag)
        if labels is not None:
            return TaskImage(tag, labels["bashenv.base_sha"]), int(built_base) + int(built_env)
        with tempfile.TemporaryDirectory(prefix="bashenv-build-") as tmp:
            context = Path(tmp, "context")
            context.mkdir()
            base_sha = _export(task, Path(tmp, "repo"), f"task {task.id}",
                               "export the repository at its base commit")
            _agent_tar(Path(tmp, "repo"), context / "repo.tar")
            (context / "Dockerfile").write_text(dockerfile)
            _docker_build(context, tag, f"task {task.id}",
                          {"bashenv.task": task.id, "bashenv.base_sha": base_sha})
        return TaskImage(tag, base_sha), int(built_base) + int(built_env) + 1


def ensure_task_image(task: Task) -> TaskImage:
    return build_task_image(task)[0]


def build_images(tasks: Iterable[Task]) -> dict[str, int]:
    """Build what is missing for many tasks; returns task id → images built for it."""
    return {task.id: build_task_image(task)[1] for task in tasks}


def prune_images(tasks: Iterable[Task] = (), *, everything: bool = False,
                 dry_run: bool = False) -> Pruning:
    """Remove the bashenv images provably stale for `tasks` (older versions of the same
    task ids, and environments only those built on; see prune.py), or with `everything`
    every bashenv image nothing uses or builds on. `dry_run` removes nothing and reports
    the same lists, with sizes."""
    return prune({task.id: image_tags(task) for task in tasks}, everything, dry_run)
