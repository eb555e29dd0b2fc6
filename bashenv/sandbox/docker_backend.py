"""The Docker back-end: sandboxes are locked-down containers on the engine DOCKER_HOST
names (container.py), which die with this process (lifecycle.py)."""

from __future__ import annotations

from bashenv.sandbox.container import Container
from bashenv.sandbox.engine import wait_for_engine
from bashenv.sandbox.gc import collect_garbage
from bashenv.sandbox.lifecycle import flush_removals, owner_token, registry
from bashenv.sandbox.spec import SandboxSpec


class DockerBackend:
    name = "docker"
    private_fs = True  # a box's paths are its own (env.fork() copies and wipes /tmp etc.)

    def start(self, spec: SandboxSpec) -> Container:
        return Container(spec)

    def wait_until_ready(self, timeout: float) -> bool:
        return wait_for_engine(timeout)

    def retry_removals(self) -> None:
        registry().remove_stragglers()

    def remove_all(self) -> None:
        registry().remove_all()

    def collect(self, run_id: str) -> list[str]:
        # This process's containers of the run, running or not (their owner is us).
        return collect_garbage(run_id=run_id, owner=owner_token()).ids

    def flush(self) -> None:
        flush_removals()
