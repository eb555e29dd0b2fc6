"""Execution traces of Python runs inside a task's sandbox."""
