"""Past one machine: episodes, gradings and runs on a Ray cluster.

Ray is imported only when a cluster is used (`pip install 'bashenv[ray]'`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from bashenv.cluster.nodes import SLOT_RESOURCE, default_slots, resources_json


def runner_for(ray_address: str | None, registry: str | None, local: Callable[..., Any],
               say: Callable[[str], None] = print) -> Callable[..., Any]:
    """`local` (the runner's run_benchmark) without --ray, else the same call on Ray."""
    if ray_address is None:
        return local
    from bashenv.cluster.jobs import run_on_ray

    return partial(run_on_ray, address=ray_address, registry=registry, say=say)


__all__ = ["SLOT_RESOURCE", "default_slots", "resources_json", "runner_for"]
