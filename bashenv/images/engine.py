"""One shared Docker client, labels, and a clear error when no engine answers."""

from __future__ import annotations

import os
import threading
import time

import docker
import docker.errors
import docker.utils
import requests.exceptions

from bashenv.errors import DockerUnavailable

# What a Docker call raises when the engine refuses, breaks or is gone.
ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)
LABEL = "bashenv"  # every container/image bashenv creates carries this label key
_client: docker.DockerClient | None = None
_lock = threading.Lock()


def client() -> docker.DockerClient:
    """The process-wide Docker client; raises DockerUnavailable with a fix when no engine answers."""
    global _client
    with _lock:
        if _client is None:
            try:
                candidate = docker.from_env(timeout=120, max_pool_size=128)
                candidate.ping()
            except Exception as exc:
                host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
                raise DockerUnavailable(
                    f"No Docker engine answers at {host} ({type(exc).__name__}). "
                    "Install Docker (Debian: apt-get install docker.io) and start the engine "
                    "(`dockerd &` as root where there is no systemd), or point DOCKER_HOST at "
                    "one; from a checkout, scripts/bootstrap.sh does both (see the README)."
                ) from exc
            _client = candidate
        return _client


def _forget_client_in_child() -> None:
    # A forked child (e.g. an AsyncVectorEnv worker) must not share the parent's sockets.
    global _client
    _client = None


os.register_at_fork(after_in_child=_forget_client_in_child)


def wait_for_engine(timeout: float) -> bool:
    """True once the engine answers a ping (at once when it is up), False after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:  # a fresh connection: a kept-alive one may still reach a daemon that is exiting
            with docker.APIClient(timeout=10, **docker.utils.kwargs_from_env()) as fresh:
                fresh.ping()
            return True
        except (DockerUnavailable, *ENGINE_ERRORS):
            if time.monotonic() >= deadline:
                return False
            time.sleep(1)


def explain(exc: BaseException) -> str:
    """A short text for an engine error (the API's explanation when it gave one)."""
    return getattr(exc, "explanation", None) or str(exc) or type(exc).__name__
