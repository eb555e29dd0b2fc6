"""The Task model, YAML loading with clear errors, and repository sources."""

from bashenv.task.loader import load_task, load_tasks, parse_task
from bashenv.task.model import SUBMIT, Limits, Task, json_schema

__all__ = ["SUBMIT", "Limits", "Task", "json_schema", "load_task", "load_tasks", "parse_task"]
