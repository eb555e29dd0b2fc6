#!/usr/bin/env bash
# What a pip user gets: build the wheel, install it into a fresh venv outside the checkout,
# and from a directory outside the checkout
#   1. `bashenv tasks list` (no path) lists the bundled tasks, from site-packages;
#   2. the built-in base recipe python-bookworm loads;
#   3. the gold agent resolves every bundled task (`bashenv run`, no path)  [skip: --no-run].
# Usage: scripts/wheel-check.sh [--no-run] [--workdir DIR]
#   --workdir DIR  build and install under DIR and keep it (default: a temporary directory,
#                  removed at the end); the venv is DIR/venv, the wheel DIR/dist/*.whl.
# Needs a running Docker engine for step 3 (scripts/bootstrap.sh starts one).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[wheel-check] %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

run_gold=1
workdir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --no-run) run_gold=0 ;;
        --workdir) workdir="$2"; shift ;;
        *) fail "unknown argument $1 (usage: $0 [--no-run] [--workdir DIR])" ;;
    esac
    shift
done
if [ -z "$workdir" ]; then
    workdir="$(mktemp -d "${TMPDIR:-/tmp}/bashenv-wheel.XXXXXX")"
    trap 'rm -rf "$workdir"' EXIT
fi
mkdir -p "$workdir"
workdir="$(cd "$workdir" && pwd)"
case "$workdir/" in "$here"/*) fail "--workdir must be outside the checkout ($here)" ;; esac

# Build from a copy of the tracked (and new, not ignored) files: setuptools keeps build/
# next to the sources, and a stale build/lib there would slip removed files into the wheel.
src="$workdir/src"
rm -rf "$src" "$workdir/dist" "$workdir/venv"
mkdir -p "$src"
(cd "$here" && git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf -) | tar -C "$src" -xf -

log "creating a fresh venv in $workdir/venv"
"${PYTHON:-python3}" -m venv "$workdir/venv"
py="$workdir/venv/bin/python"
pip=("$py" -m pip --disable-pip-version-check -q)
log "building the wheel"
"${pip[@]}" wheel --no-deps "$src" -w "$workdir/dist"
wheel="$(ls "$workdir"/dist/bashenv-*.whl)"
log "installing $(basename "$wheel") and its dependencies"
"${pip[@]}" install "$wheel"

# Everything below runs where a user would: outside the checkout, no overrides.
outside="$workdir/outside"
mkdir -p "$outside"
cd "$outside"
unset BASHENV_TASKS BASHENV_IMAGES PYTHONPATH
export COLUMNS=250  # rich tables: whole paths and ids

location="$("$py" -c 'import bashenv, os; print(os.path.dirname(bashenv.__file__))')"
case "$location/" in "$here"/*) fail "bashenv was imported from the checkout ($location)" ;; esac

listing="$("$workdir/venv/bin/bashenv" tasks list)" || fail "bashenv tasks list"
printf '%s\n' "$listing"
mapfile -t ids < <(sed -n 's/^id: *//p' "$here"/tasks/*/task.yaml)
[ ${#ids[@]} -gt 0 ] || fail "no task ids found in $here/tasks"
for id in "${ids[@]}"; do
    grep -q -- "$id" <<<"$listing" || fail "bashenv tasks list does not list bundled task $id"
done
grep -q -- "$location" <<<"$listing" || fail "the listed task files are not under $location"

"$py" -c 'from bashenv.images import load_recipe; print(load_recipe("python-bookworm").tag)' \
    || fail "the built-in recipe python-bookworm does not load from the wheel"

if [ "$run_gold" = 1 ]; then
    log "gold agent on the bundled tasks (bashenv run, no path)"
    results="$workdir/gold.jsonl"
    "$workdir/venv/bin/bashenv" run --agent gold --workers 2 --output "$results" --fresh \
        || fail "bashenv run exited non-zero"
    "$py" - "$results" "${ids[@]}" <<'PY' || fail "not every bundled task was resolved"
import json, sys
path, wanted = sys.argv[1], set(sys.argv[2:])
records = {r["task_id"]: r for r in map(json.loads, open(path).read().splitlines())}
missing = sorted(wanted - records.keys())
unresolved = sorted(t for t in wanted & records.keys() if not records[t]["resolved"])
for task_id in unresolved:
    print(f"{task_id}: {records[task_id]['outcome']} {records[task_id].get('error') or ''}")
print(f"resolved {len(wanted) - len(missing) - len(unresolved)}/{len(wanted)}; missing: {missing}")
sys.exit(1 if missing or unresolved else 0)
PY
fi
log "ok: the wheel works outside the checkout"
