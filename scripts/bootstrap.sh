#!/usr/bin/env bash
# Idempotent set-up of everything bashenv needs on a Debian host:
#   Docker engine (docker.io) + debootstrap, a running dockerd, and the .venv with bashenv.
# Each step is skipped when already done, so every entry point may call it.
#
# An engine that is already running is never stopped, restarted or reconfigured: other
# jobs' containers may live on it. gVisor's runsc is registered only with an engine this
# script starts itself; for a running engine it prints the one command that adds it.
#
#   scripts/bootstrap.sh                   set up (see above)
#   scripts/bootstrap.sh --register-runsc  add runsc to daemon.json and reload (SIGHUP) the
#                                          running engine: no restart, containers keep running
#
# Overrides (defaults in brackets), e.g. to try the script on a private engine:
#   BASHENV_DOCKERD_CONFIG [/etc/docker/daemon.json]  BASHENV_DOCKERD_PIDFILE [/var/run/docker.pid]
#   BASHENV_DOCKERD_LOG [/var/log/dockerd.log]        BASHENV_DOCKERD_ARGS [none: extra dockerd args]
#   BASHENV_SKIP_VENV=1: skip the .venv step
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[bootstrap] %s\n' "$*" >&2; }

daemon_json="${BASHENV_DOCKERD_CONFIG:-/etc/docker/daemon.json}"
dockerd_pidfile="${BASHENV_DOCKERD_PIDFILE:-/var/run/docker.pid}"
dockerd_log="${BASHENV_DOCKERD_LOG:-/var/log/dockerd.log}"
read -r -a dockerd_args <<<"${BASHENV_DOCKERD_ARGS:-}"
# dockerd reads the default config file by itself, and refuses a named one that is missing.
[ -z "${BASHENV_DOCKERD_CONFIG:-}" ] || dockerd_args+=(--config-file "$daemon_json")

engine_up() { timeout 10 docker info >/dev/null 2>&1; }
engine_has_runsc() { timeout 10 docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; }
config_has_runsc() { grep -q '"runsc"' "$daemon_json" 2>/dev/null; }

# Sandboxes run without a network anyway; runsc refuses to start with one in the root
# network namespace, hence --network=none.
register_runsc_in_config() {
    log "registering the runsc (gVisor) runtime in $daemon_json"
    mkdir -p "$(dirname "$daemon_json")"
    python3 - "$daemon_json" <<'PY'
import json, os, sys
path = sys.argv[1]
config = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else {}
config.setdefault("runtimes", {})["runsc"] = {"path": "/usr/bin/runsc",
                                               "runtimeArgs": ["--network=none"]}
tmp = path + ".bashenv-tmp"
with open(tmp, "w") as handle:
    json.dump(config, handle, indent=2)
os.replace(tmp, path)  # never a half-written file for an engine that starts meanwhile
PY
}

if [ "${1:-}" = "--register-runsc" ]; then
    command -v runsc >/dev/null 2>&1 || { log "runsc is not installed (apt-get install runsc)"; exit 1; }
    engine_up || { log "no Docker engine answers; run $0 without arguments to start one"; exit 1; }
    config_has_runsc || register_runsc_in_config
    if ! engine_has_runsc; then
        pid="$(cat "$dockerd_pidfile" 2>/dev/null || true)"
        [ -n "$pid" ] || { log "no dockerd pid in $dockerd_pidfile; reload your engine's configuration yourself"; exit 1; }
        log "reloading dockerd (pid $pid) configuration: SIGHUP, running containers are not touched"
        kill -HUP "$pid"
        for _ in $(seq 1 20); do engine_has_runsc && break; sleep 0.5; done
    fi
    engine_has_runsc || { log "the engine still has no runsc runtime: does it read $daemon_json?"; exit 1; }
    log "runsc is registered"
    exit 0
fi
[ $# -eq 0 ] || { log "unknown argument $1 (usage: $0 [--register-runsc])"; exit 2; }

need_apt=()
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
command -v runsc >/dev/null 2>&1 || need_apt+=(runsc)  # gVisor, an optional stronger sandbox
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)  # headless browser: the report's test
command -v docker-registry >/dev/null 2>&1 || need_apt+=(docker-registry)  # tests/test_ray.py (registry scenario)
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if engine_up; then
    # Someone's engine, maybe with other jobs' containers: use it as it is.
    if command -v runsc >/dev/null 2>&1 && ! engine_has_runsc; then
        log "the running Docker engine has no runsc (gVisor) runtime; going on without it"
        log "(gVisor tests skip). To add it without restarting the engine, run:"
        log "    $here/scripts/bootstrap.sh --register-runsc"
    fi
else
    # Our own engine: register runsc first, so that it is loaded at start.
    if command -v runsc >/dev/null 2>&1 && ! config_has_runsc; then
        register_runsc_in_config
    fi
    log "starting dockerd (log: $dockerd_log)"
    nohup dockerd "${dockerd_args[@]}" >"$dockerd_log" 2>&1 &
    for _ in $(seq 1 60); do
        timeout 5 docker info >/dev/null 2>&1 && break
        sleep 1
    done
    engine_up || { log "dockerd did not start; see $dockerd_log"; exit 1; }
fi

if [ "${BASHENV_SKIP_VENV:-}" = 1 ]; then
    log "ready (venv step skipped)"
    exit 0
fi
venv="$here/.venv"
stamp="$venv/.bashenv-installed"
if [ ! -x "$venv/bin/python" ]; then
    log "creating $venv"
    python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$here/pyproject.toml" -nt "$stamp" ]; then
    log "installing bashenv and its dependencies into $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -e "${here}[dev]"
    touch "$stamp"
fi
log "ready"
