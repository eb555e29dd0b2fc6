"""SWE-bench interoperability: instances in (task directories or in-memory tasks),
predictions graded into SWE-bench-shaped reports, bashenv tasks out as instances."""

from bashenv.swebench.importer import ImportResult, import_instances, instance_tasks
from bashenv.swebench.instances import Instance, read_instances

__all__ = ["ImportResult", "Instance", "import_instances", "instance_tasks", "read_instances"]
