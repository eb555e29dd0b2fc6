"""Moved: the Docker client lives with the Docker sandbox back-end (bashenv.sandbox.engine).
This name stays importable for code written against it."""

from bashenv.sandbox.engine import (  # noqa: F401
    ENGINE_ERRORS,
    LABEL,
    client,
    explain,
    forget_client,
    wait_for_engine,
)
