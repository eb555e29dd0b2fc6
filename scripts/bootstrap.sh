#!/usr/bin/env bash
# Idempotent set-up of everything bashenv needs on a Debian host:
#   Docker engine (docker.io) + debootstrap, a running dockerd, and the .venv with bashenv.
# Each step is skipped when already done, so every entry point may call it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[bootstrap] %s\n' "$*" >&2; }

need_apt=()
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
command -v runsc >/dev/null 2>&1 || need_apt+=(runsc)  # gVisor, an optional stronger sandbox
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Register gVisor's runsc as a container runtime (sandboxes run without a network anyway;
# runsc refuses to start with one in the root network namespace).
daemon_json=/etc/docker/daemon.json
if command -v runsc >/dev/null 2>&1 && ! grep -q '"runsc"' "$daemon_json" 2>/dev/null; then
    log "registering the runsc (gVisor) runtime in $daemon_json"
    mkdir -p /etc/docker
    python3 - "$daemon_json" <<'PY'
import json, os, sys
path = sys.argv[1]
config = json.load(open(path)) if os.path.exists(path) else {}
config.setdefault("runtimes", {})["runsc"] = {"path": "/usr/bin/runsc",
                                               "runtimeArgs": ["--network=none"]}
json.dump(config, open(path, "w"), indent=2)
PY
    if timeout 10 docker info >/dev/null 2>&1; then
        log "restarting dockerd to load the new runtime"
        pkill -x dockerd || true
        for _ in $(seq 1 60); do pgrep -x dockerd >/dev/null || break; sleep 1; done
    fi
fi

if ! timeout 10 docker info >/dev/null 2>&1; then
    log "starting dockerd (log: /var/log/dockerd.log)"
    nohup dockerd >/var/log/dockerd.log 2>&1 &
    for _ in $(seq 1 60); do
        timeout 5 docker info >/dev/null 2>&1 && break
        sleep 1
    done
    timeout 10 docker info >/dev/null 2>&1 || { log "dockerd did not start; see /var/log/dockerd.log"; exit 1; }
fi

venv="$here/.venv"
stamp="$venv/.bashenv-installed"
if [ ! -x "$venv/bin/python" ]; then
    log "creating $venv"
    python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$here/pyproject.toml" -nt "$stamp" ]; then
    log "installing bashenv and its dependencies into $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -e "$here[dev]"
    touch "$stamp"
fi
log "ready"
