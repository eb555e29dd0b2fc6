"""Runs *inside* the grading container as root: `python3 -I -S box_scan.py prepare JOB`.

stdlib only, Python 3.8+. `-I -S`: nothing from the repository, the user site or `.pth`
files loads into this root process.

prepare (before the hidden tests; an agent's tree is read from stdin first, see receive_tree):
  1. compares the workdir with the grader's record of the base tree (the image's read-only
     seed copy) byte by byte: paths are bytes, every file counts (ignored by git or not);
  2. restores what the hidden tests own, making sure no symlink leads out of the repo;
  3. reverts or removes what pytest or the interpreter would load implicitly: test
     configuration, bytecode, compiled extensions (unless the task allows them), package
     metadata (dist-info, egg-info, egg-link, __editable__ finders), `.gitattributes`, and
     new modules that would shadow the standard library or an installed package;
  4. asks the test interpreter, as the unprivileged user, which pytest plugins its
     environment installs (they are loaded with -p: entry-point autoload is off);
  5. notes what in the change's non-test code reaches into the test machinery (canary.py);
  writes <grade>/private/prepared.json (root only) and <grade>/py/pargs.
  Before step 2, for an agent's tree, the change as a git diff against the base commit
  (SWE-bench's model_patch, for results only) goes to <grade>/private/model.patch.

then writes the hidden tests (the job's shell commands) and plants canary tests in the test
  files the run executes (canary.py), their ids in <grade>/private/canaries.json.
"""

import json
import os
import random
import re
import stat
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canary
import config_guard

COMPILED = (b".pyc", b".pyo")
EXTENSIONS = (b".so", b".pyd")
METADATA_DIRS = (b".dist-info", b".egg-info")
ALWAYS_PROTECTED = {"pytest", "_pytest", "pluggy", "py", "_bashenv_grader"}
SCAN_MAX = 2 << 20  # bytes of a changed file read for the suspicious flag
LIST_CAP = 500  # paths per audit list (the verdict keeps as many: verdict.LIST_LIMIT)
PLUGIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
PATCH_CAP = 1 << 20  # a model_patch over this is left out (none rather than a cut one)
PATHSPEC_MAX = 2000  # changed paths named to git (more: git looks at the whole tree)
DIFF = ["diff", "--binary", "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames",
        "--no-relative", "--src-prefix=a/", "--dst-prefix=b/"]
# Run as `python3 -I -S`: the site set-up is done by hand, without sitecustomize or
# usercustomize, which would be looked up on a sys.path that may hold repository
# directories (an editable install). What those start-up modules (outside the repository)
# and .pth lines import is listed with the names: a new module of that name in the
# repository would load at the tests' start-up (Debian's sitecustomize tries
# `apport_python_hook`).
PROBE = r"""
import ast, json, os, site, sys
site.ENABLE_USER_SITE = False
site.addsitepackages(site.venv(site.removeduppaths()))
works = {os.path.abspath(sys.argv[1]), os.path.realpath(sys.argv[1])}
def outside(p):
    # Both as written and resolved: a directory of the repository on sys.path (an editable
    # src layout) that the agent turned into a symlink to `/` must not count as outside.
    found = {os.path.abspath(p or "."), os.path.realpath(p or ".")}
    return not any(q == w or q.startswith(w + os.sep) for q in found for w in works)
paths = [p for p in sys.path if p and os.path.isdir(p) and outside(p)]
names = set(sys.builtin_module_names) | set(getattr(sys, "stdlib_module_names", ()))
def imported(source):
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    found = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    found |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    return {m.split(".")[0] for m in found}
for d in paths:
    for entry in os.listdir(d):
        names.add(entry.split(".", 1)[0])
        path = os.path.join(d, entry)
        try:
            if entry in ("sitecustomize.py", "usercustomize.py"):
                names.update(imported(open(path, "rb").read()))
            elif entry.endswith(".pth"):
                for line in open(path, encoding="utf-8", errors="replace"):
                    if line.startswith(("import ", "import\t")):
                        names.update(imported(line))
        except OSError:
            pass
plugins = []
try:
    from importlib import metadata
    for dist in metadata.distributions(path=paths):
        plugins += [ep.value.split(":")[0] for ep in dist.entry_points if ep.group == "pytest11"]
except Exception:
    pass
print(json.dumps({"names": sorted(n for n in names if n), "plugins": sorted(set(plugins))}))
"""


def walk(root):
    """Relative bytes path -> (kind, executable, size) below `root`; the top `.git` is
    not part of the tree. Symlinks are listed, never followed."""
    found = {}
    for top, dirs, files in os.walk(root):
        rel_top = os.path.relpath(top, root)
        if rel_top == b".":
            rel_top = b""
            dirs[:] = [d for d in dirs if d != b".git"]
        for name in dirs + files:
            rel = os.path.join(rel_top, name)
            st = os.lstat(os.path.join(root, rel))
            kind = ("l" if stat.S_ISLNK(st.st_mode) else "d" if stat.S_ISDIR(st.st_mode)
                    else "f" if stat.S_ISREG(st.st_mode) else "o")
            found[rel] = (kind, kind == "f" and bool(st.st_mode & 0o111), st.st_size)
    return found


def changed_paths(work, seed, base=None):
    """Every path whose type, executable bit, link target or bytes differ from the seed
    (directories only when a file or link stands where one was, or the other way).
    `base`: walk(seed), when already taken."""
    now, base = walk(work), base if base is not None else walk(seed)
    changed = []
    for rel in now.keys() | base.keys():
        a, b = now.get(rel), base.get(rel)
        if (a or b)[0] == "d" and (a is None or b is None or a[0] == b[0]):
            continue  # a directory's files speak for it
        if a is None or b is None or a[:2] != b[:2] or a[0] == "o":
            changed.append(rel)
        elif a[0] == "l":
            if os.readlink(os.path.join(work, rel)) != os.readlink(os.path.join(seed, rel)):
                changed.append(rel)
        elif a[2] != b[2] or not same_bytes(os.path.join(work, rel), os.path.join(seed, rel)):
            changed.append(rel)
    return sorted(changed)


def same_bytes(a, b):
    """Two regular files of equal size hold the same bytes (read in large blocks)."""
    with open(a, "rb") as one, open(b, "rb") as other:
        while True:
            block = one.read(1 << 20)
            if block != other.read(1 << 20):
                return False
            if not block:
                return True


def receive_tree(work, fail_code):
    """The agent's working tree, from stdin: a line with its size in bytes (0: the host
    wrote it into the workdir itself), then that many bytes of tar, extracted into the
    workdir. Read here so that this process starts while the host still reads the tree.
    Exactly those bytes are read (the host answers on the same stdin later)."""
    line = b""
    while not line.endswith(b"\n"):
        char = os.read(0, 1)
        if not char:
            raise SystemExit("the working tree did not arrive")
        line += char
    left = int(line)
    if left <= 0:
        return
    tar = subprocess.Popen(["tar", "-x", "--no-same-owner", "--warning=no-timestamp", "-f", "-"],
                           cwd=work, stdin=subprocess.PIPE)
    try:
        while left:
            chunk = os.read(0, min(left, 1 << 16))
            if not chunk:
                break
            left -= len(chunk)
            tar.stdin.write(chunk)
        tar.stdin.close()
    except BrokenPipeError:  # tar gave up (e.g. the disk bound): its status says so
        pass
    if tar.wait() != 0 or left:
        raise SystemExit(fail_code)


def fix_parents(work, rel):
    """Make every directory above `rel` a real directory: a symlink or file standing in
    for one is removed, so that nothing written there can land outside the repository."""
    current = work
    for part in rel.split(b"/")[:-1]:
        current = os.path.join(current, part)
        if os.path.islink(current) or (os.path.lexists(current) and not os.path.isdir(current)):
            os.unlink(current)
        if not os.path.lexists(current):
            os.mkdir(current, 0o755)


def remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        import shutil
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def revert(work, seed, rel):
    """`rel` back to its seed version, or gone when the seed has none."""
    import shutil
    fix_parents(work, rel)
    target, source = os.path.join(work, rel), os.path.join(seed, rel)
    remove(target)
    if os.path.islink(source):
        os.symlink(os.readlink(source), target)
    elif os.path.isdir(source):
        shutil.copytree(source, target, symlinks=True)
    elif os.path.lexists(source):
        shutil.copy2(source, target, follow_symlinks=False)


def module_name(part, last):
    """The top-level module a path component would be imported as (None: not importable)."""
    if not last:
        return part.decode("utf-8", "surrogateescape")
    if part.endswith(b".py") or part.endswith(COMPILED) or part.endswith(EXTENSIONS):
        return part.split(b".", 1)[0].decode("utf-8", "surrogateescape")
    return None


def shadowing(work, seed, rel, protected):
    """The added path (file or package directory) through which `rel` would shadow a
    protected module: a new top-level module in the repository root or in any directory
    without __init__.py (pytest puts such test directories first on sys.path)."""
    parts = rel.split(b"/")
    for k in range(len(parts)):
        where = b"/".join(parts[:k])
        if k and os.path.isfile(os.path.join(work, where, b"__init__.py")):
            continue
        candidate = os.path.join(where, parts[k]) if where else parts[k]
        if module_name(parts[k], k == len(parts) - 1) in protected \
                and not os.path.lexists(os.path.join(seed, candidate)):
            return candidate
    return None


def implicit_load(rel, job):
    """Why the interpreter or pytest would load `rel` without anyone importing it, and
    which path to revert for it (None: an ordinary file)."""
    parts = rel.split(b"/")
    name = parts[-1]
    if b"__pycache__" in parts or name.endswith(COMPILED):
        return "bytecode", rel
    if name.endswith(EXTENSIONS) and not job.get("allow_extensions"):
        return "bytecode", rel
    for i, part in enumerate(parts):
        if part.endswith(METADATA_DIRS):
            return "config", b"/".join(parts[:i + 1])
    if name.endswith(b".egg-link") or name.startswith(b"__editable__") or name == b".gitattributes":
        return "config", rel
    return None


def probe(job):
    user = job["user"]
    cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups",
           "python3", "-I", "-S", "-c", PROBE, job["workdir"]]
    done = subprocess.run(cmd, cwd="/", capture_output=True, timeout=60)
    if done.returncode != 0:
        sys.stderr.write(done.stderr.decode("utf-8", "replace")[-2000:])
        raise SystemExit("the test interpreter could not be probed")
    return json.loads(done.stdout.strip().splitlines()[-1])  # a .pth may print first


def prepare(job):
    work, seed = os.fsencode(job["workdir"]), os.fsencode(job["seed"])
    base = walk(seed)
    # Before the agent's tree is in (a diff is applied before this process starts).
    found = job.get("probe") or probe(job)
    if job.get("tree_on_stdin"):
        receive_tree(work, job["tree_error"])
    changed = changed_paths(work, seed, base)
    if job.get("model_patch"):
        write_model_patch(job, changed)
    around = set(changed)  # changed paths and every directory above them
    for rel in changed:
        parts = rel.split(b"/")
        around.update(b"/".join(parts[:i]) for i in range(1, len(parts)))
    touched, reverted, bytecode = [], set(), set()
    gone = set()  # reverted or removed directories and files: what lies under them is done
    for rel in map(os.fsencode, job["owned"]):
        fix_parents(work, rel)
        if rel in around:
            touched.append(rel)
            gone.add(rel)
            revert(work, seed, rel)
    protected = set(found["names"]) | ALWAYS_PROTECTED
    for rel in changed:
        if not os.path.lexists(os.path.join(work, rel)) and not os.path.lexists(os.path.join(seed, rel)):
            continue  # already gone with a reverted directory
        if _under(rel, gone):  # by its ancestors, not by scanning the set: no n² on many files
            continue
        hit = implicit_load(rel, job)
        if hit is None and job["protect_config"] and config_guard.is_test_config(rel, work, seed):
            hit = ("config", rel)
        if hit is None:
            shadow = shadowing(work, seed, rel, protected)
            hit = ("config", shadow) if shadow else None
        if hit is not None:
            revert(work, seed, hit[1])
            (bytecode if hit[0] == "bytecode" else reverted).add(hit[1])
            gone.add(hit[1])
    plugins = [p for p in found["plugins"] if PLUGIN_NAME.match(p)]
    with open(os.path.join(job["grade_dir"], "py", "pargs"), "w") as handle:
        handle.write(" ".join("-p " + p for p in plugins))
    decode = os.fsdecode
    flags = []
    for rel in changed:
        if len(flags) < 50 and rel.endswith(b".py"):
            text = config_guard.read_file(os.path.join(work, rel))
            if text is not None and len(text) <= SCAN_MAX:
                base = config_guard.read_file(os.path.join(seed, rel))
                flags += canary.suspicious(decode(rel), text.decode("utf-8", "replace"),
                                           None if base is None else base.decode("utf-8", "replace"))
    # Lists are cut here, in the box: the agent decides how many paths there are, and the
    # results must come back to the host whole (over their cap the grading is lost).
    write_private(job, "prepared.json", {
        "suspicious": flags[:LIST_CAP],
        "changed": _listed(changed), "touched": _listed(touched),
        "reverted": _listed(sorted(reverted)), "bytecode": _listed(sorted(bytecode)),
        "probe": None if job.get("probe") else found})


def write_model_patch(job, changed):
    """The change, as the agent left it, as a git diff against the base commit, by the
    grader's git: the seed's `.git` (the agent's is never read), no user or system config,
    fixed prefixes, no renames, no diff drivers; only the changed paths are looked at (a
    fresh index knows no file's stat, so git would otherwise hash the whole tree)."""
    work = job["workdir"]
    private = os.path.join(job["grade_dir"], "private")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent", "LANG": "C",
           "GIT_DIR": os.path.join(work, ".git"), "GIT_WORK_TREE": work,
           "GIT_INDEX_FILE": os.path.join(private, "model.index"), "GIT_CONFIG_GLOBAL": "/dev/null",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_LITERAL_PATHSPECS": "1"}
    git = ["git", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false",
           "-c", "core.attributesFile=/dev/null"]
    paths = [b"--", *changed] if len(changed) <= PATHSPEC_MAX else []

    def run(*args):
        return subprocess.run([*git, *args], cwd=work, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=60).returncode
    patch = b""
    seed_index = os.path.join(job["seed"], ".git", "index")  # the base tree's, as the seed has it
    try:
        if changed and (_copied(seed_index, env["GIT_INDEX_FILE"])
                        or run("read-tree", job["base"]) == 0):
            # New files are marked (intent to add) so that the diff shows them; git refuses a
            # path below a symlink or an ignored one: then it is asked about the whole tree.
            added = any(_new_to_git(work, job["seed"], rel) for rel in changed)
            if added and run("add", "-A", "-N", *paths) != 0 and paths:
                run("add", "-A", "-N")
            patch = _capped_output([*git, *DIFF, job["base"], *paths], work, env)
    except (OSError, subprocess.SubprocessError):
        patch = None
    if patch is not None:
        with open(os.path.join(private, "model.patch"), "wb") as handle:
            handle.write(patch)
    if os.path.exists(env["GIT_INDEX_FILE"]):
        os.unlink(env["GIT_INDEX_FILE"])


def _new_to_git(work, seed, rel):
    """A file or symlink at `rel` where the base tree has none (nothing, or a directory)."""
    def blob(root):
        path = os.path.join(os.fsencode(root), rel)
        return os.path.islink(path) or os.path.isfile(path)
    return blob(work) and not blob(seed)


def _copied(source, target):
    try:
        with open(source, "rb") as src, open(target, "wb") as dst:
            dst.write(src.read())
        return True
    except OSError:
        return False


def _capped_output(cmd, cwd, env):
    """`cmd`'s stdout when it ends well within PATCH_CAP bytes and 60 s, else None."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    timer = threading.Timer(60, proc.kill)
    timer.start()
    try:
        data = proc.stdout.read(PATCH_CAP + 1)
        if len(data) > PATCH_CAP:
            proc.kill()
        proc.stdout.close()
        code = proc.wait()
    finally:
        timer.cancel()
    return data if code == 0 and len(data) <= PATCH_CAP else None


def _under(rel, dirs):
    """`rel` is one of `dirs` or lies below one of them."""
    parts = rel.split(b"/")
    return any(b"/".join(parts[:i]) in dirs for i in range(1, len(parts) + 1))


def _listed(paths):
    """The first LIST_CAP paths as text, and how many more there were."""
    shown = [os.fsdecode(p) for p in paths[:LIST_CAP]]
    return shown + ([f"[... {len(paths) - LIST_CAP} more]"] if len(paths) > LIST_CAP else [])


def plant_canaries(job):
    """Canaries in the hidden test files (never through a symlink); their ids, root only."""
    conf, planted = job.get("canaries"), []
    if conf:
        rng = random.Random(conf["seed"])
        for rel, plan in sorted(canary.plan_files(conf["ids"], rng).items()):
            path = os.path.join(os.fsencode(job["workdir"]), os.fsencode(rel))
            data = config_guard.read_file(path)
            if data is None:
                continue
            text, found = canary.plant(data, rel, canary.names_in(rel, conf["ids"]), plan, rng,
                                       canary.names_in(rel, conf.get("focus", [])))
            if found:
                fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(text)
                planted += found
    write_private(job, "canaries.json", planted)


def write_private(job, name, data):
    with open(os.path.join(job["grade_dir"], "private", name), "w") as handle:
        json.dump(data, handle)


def main():
    # The inputs (token, job, hidden tests) close to everyone but root before anything runs
    # as the test user (the probe), not only before the tests.
    os.chmod(os.path.dirname(os.path.abspath(sys.argv[2])), 0o700)
    with open(sys.argv[2]) as handle:
        job = json.load(handle)
    prepare(job)
    if subprocess.run(["bash", "-c", job["hidden"]], cwd=job["workdir"]).returncode != 0:
        raise SystemExit("the hidden tests could not be written")
    plant_canaries(job)


if __name__ == "__main__":
    main()
