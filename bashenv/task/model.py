"""The Task model: what a task YAML file may say. Exported as JSON Schema by `bashenv tasks schema`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

SUBMIT = "submit"  # the action that ends an episode


class FileRef(BaseModel):
    """`{file: path}`: text read from a file next to the task YAML."""

    model_config = ConfigDict(extra="forbid")
    file: str = Field(description="Path relative to the task YAML file.")


def _read_ref(value: Any, info: ValidationInfo) -> Any:
    """`{file: path}` → the file's text; anything else goes on to be validated as a str."""
    if not isinstance(value, dict):
        return value
    try:
        ref = FileRef.model_validate(value)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise ValueError(f"{{file: ...}}: {where}: {problem['msg']}") from None
    base = Path((info.context or {}).get("base_dir", "."))
    path = base / ref.file
    try:
        # newline="": a patch's CRLF lines are content (universal newlines would break it).
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()
    except FileNotFoundError:
        raise ValueError(f"file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None


# Inline text, or {file: ...} read at load time: a str once validated (and typed so), while
# the JSON Schema shows both spellings.
TextOrFile = Annotated[str, BeforeValidator(_read_ref), WithJsonSchema(
    {"anyOf": [{"type": "string"}, FileRef.model_json_schema()]})]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Environment(_Strict):
    """How the task image is made."""

    base: str = Field("python-bookworm", description="Name of a base recipe under images/.")
    python_packages: list[str] = Field(
        default_factory=list,
        description="pip requirement strings installed into /opt/venv (shared environment layer).",
    )
    setup: list[str] = Field(
        default_factory=list,
        description="Shell commands run in the repository after checkout (task layer).",
    )
    env: dict[str, str] = Field(default_factory=dict, description="Environment variables.")


class HiddenTests(_Strict):
    """Tests the agent never sees; added only in the grading container."""

    patch: TextOrFile | None = Field(None, description="Unified diff adding/changing test files.")
    files: dict[str, TextOrFile] = Field(
        default_factory=dict, description="Test files written verbatim: repo path -> content."
    )
    fail_to_pass: list[str] = Field(
        min_length=1, description="Test ids that fail before the fix and must pass after it."
    )
    pass_to_pass: list[str] = Field(
        default_factory=list, description="Test ids that pass before and must still pass."
    )
    command: str = Field(
        "python3 -m pytest", description="Test command; the runner adds its report options."
    )
    runner: str = Field(
        "pytest", pattern=r"^(pytest|pytest-junit|swebench:[\w.-]+/[\w.-]+|[\w.]+:\w+)$",
        description="Which result parser to use, by name: pytest (= pytest-junit, JUnit XML), "
        "swebench:OWNER/NAME (SWE-bench's log parser for that repository, on the test log), "
        "or module:function (a parser of your own; see bashenv.grading.parsers.parser_for).")
    timeout: float = Field(600, gt=0, description="Seconds before the test run is killed.")
    protect_config: bool = Field(
        True, description="Revert the diff's changes to test configuration (conftest.py, "
        "pytest sections of pytest.ini/tox.ini/setup.cfg/pyproject.toml, sitecustomize, .pth).")
    canaries: bool = Field(
        True, description="Plant canary tests (some must pass, some fail) in the hidden test "
        "files at grading; a wrong outcome marks the run `tampered`. Used with pytest runs "
        "whose command neither stops early nor selects tests by name.")
    allow_compiled_extensions: bool = Field(
        False, description="Keep compiled extension modules (.so, .pyd) the diff adds or "
        "changes; by default the grader removes them (Python would import them in place of "
        "the reviewed source).")

    @field_validator("files")
    @classmethod
    def _relative_paths(cls, files: dict[str, str]) -> dict[str, str]:
        for path in files:
            if path.startswith("/") or ".." in Path(path).parts:
                raise ValueError(f"test file path must be relative inside the repo: {path!r}")
        return files


class Limits(_Strict):
    """Per-episode limits; the agent is told about them in the first observation."""

    command_timeout: float = Field(60, gt=0, description="Seconds one command may run.")
    max_steps: int = Field(100, gt=0, description="Commands before the episode is truncated.")
    episode_timeout: float = Field(3600, gt=0, description="Episode wall clock in seconds.")
    output_chars: int = Field(20000, ge=200, description="Output kept per command (head+tail).")
    memory: str = Field("2g", pattern=r"^\d+[kmg]?$", description="Container memory limit.")
    cpus: float = Field(1.0, gt=0, description="CPU quota in cores.")
    pids: int = Field(512, gt=16, description="Maximum processes in the container.")
    file_size_mb: int = Field(
        1024, gt=0, description="Largest file a process may write (RLIMIT_FSIZE), in MiB.")
    disk_mb: int | None = Field(
        1024, gt=0, description="Writable space of the repository, in MiB (plus a quarter of "
        "it for /tmp); the rest of the filesystem is read-only. Held in memory (tmpfs), so it "
        "shares the memory limit. null: a writable root filesystem with no total bound.")


class SandboxPolicy(_Strict):
    """How the agent's container is locked down (all capabilities are always dropped)."""

    user: str = Field("agent", description="User the agent's shell runs as ('root' to opt out).")
    runtime: str | None = Field(None, description="Container runtime, e.g. 'runsc' (gVisor).")
    network: bool = Field(False, description="Give the agent's container a network.")


TASK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class Task(_Strict):
    """One issue to fix: a repository at a commit, a problem statement and hidden tests."""

    id: str = Field(description="Unique id: letters, digits, '_', '.', '-'.")
    repo: str = Field(
        description="Git URL (https://, file://, ...), path to a git repository, or a plain "
        "directory (snapshotted into a one-commit repository). Relative to the YAML file."
    )
    base_commit: str = Field("HEAD", description="Commit-ish the agent starts from.")
    problem_statement: TextOrFile = Field(description="The issue text shown to the agent.")
    environment: Environment = Field(default_factory=Environment)
    tests: HiddenTests
    gold_patch: TextOrFile | None = Field(None, description="Reference fix, for validation.")
    limits: Limits = Field(default_factory=Limits)
    sandbox: SandboxPolicy = Field(default_factory=SandboxPolicy)
    workdir: str = Field("/repo", pattern=r"^/[^\s]*$", description="Repository path in the box.")
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Facts about where the task came from (e.g. a "
        "SWE-bench instance's repo, version, spec and the Python used); never used to grade.")

    _source_file: Path | None = PrivateAttr(None)

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not TASK_ID.match(value):
            raise ValueError(f"{value!r} is not a valid task id (letters, digits, '_', '.', '-')")
        return value

    @property
    def source_file(self) -> Path | None:
        return self._source_file

    @property
    def base_dir(self) -> Path:
        return self._source_file.parent if self._source_file else Path.cwd()

    def test_ids(self) -> list[str]:
        return [*self.tests.fail_to_pass, *self.tests.pass_to_pass]


def json_schema() -> dict[str, Any]:
    return Task.model_json_schema(mode="validation")
