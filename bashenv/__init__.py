"""bashenv: Gymnasium environments where agents fix issues through a bash shell in Docker.

Importing bashenv registers `BashSWE-v0` (gymnasium 1.x has no plugin entry points).
"""

from gymnasium.envs.registration import register, registry

__version__ = "0.1.0"

if "BashSWE-v0" not in registry:
    register(id="BashSWE-v0", entry_point="bashenv.env.bash_swe:BashSWEEnv")
if "TracePredict-v0" not in registry:
    register(id="TracePredict-v0", entry_point="bashenv.worlds.trace_predict:TracePredictEnv")
if "Halt-v0" not in registry:
    register(id="Halt-v0", entry_point="bashenv.worlds.halt:HaltEnv")


def __getattr__(name: str) -> object:
    # `bashenv.run(tasks, agent, …)` without importing the runner (Docker, agents) up front.
    if name == "run":
        from bashenv.runner import run

        return run
    raise AttributeError(f"module 'bashenv' has no attribute {name!r}")
