"""Every error bashenv raises on purpose derives from BashenvError, so callers can catch one type."""

from __future__ import annotations


class BashenvError(Exception):
    """Base class: the message is meant for a human and names what went wrong."""


class TaskError(BashenvError):
    """A task file is malformed: the message names the file and the field."""


class DockerUnavailable(BashenvError):
    """No Docker engine answers."""


class ImageBuildError(BashenvError):
    """An image could not be built: the message names the image or task and the failing step."""


class SandboxError(BashenvError):
    """The sandbox (container or shell) broke for infrastructure reasons, not because of the agent."""
