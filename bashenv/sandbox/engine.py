"""One shared Docker client, labels, and a clear error when no engine answers."""

from __future__ import annotations

import os
import time

import docker
import docker.errors
import docker.utils
import requests.exceptions

from bashenv.errors import DockerUnavailable
from bashenv.sandbox.runtime import runtime

# What a Docker call raises when the engine refuses, breaks or is gone.
ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)
LABEL = "bashenv"  # every container/image bashenv creates carries this label key


def _connect() -> docker.DockerClient:
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
    return candidate


def client() -> docker.DockerClient:
    """The process-wide Docker client (a forked child makes its own: sockets are not
    shared); raises DockerUnavailable with a fix when no engine answers."""
    return runtime().part("docker", _connect)


def engine_used() -> bool:
    """Whether this process has talked to the engine (without contacting it)."""
    return runtime().peek("docker") is not None


def forget_client() -> None:
    """Drop the client (e.g. after the engine behind DOCKER_HOST was replaced)."""
    runtime().drop("docker")


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
