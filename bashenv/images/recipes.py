"""Base-image recipes (images/*.yaml): debootstrap (offline) or FROM an image (registry)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bashenv.bundled import bundled_dir
from bashenv.errors import ImageBuildError

RECIPE_VERSION = "1"  # bump when the build procedure changes what a recipe produces


class Debootstrap(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    suite: str = "bookworm"
    mirror: str = "http://deb.debian.org/debian"
    variant: str = "minbase"
    packages: list[str] = Field(default_factory=list)


class BaseRecipe(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str = ""
    debootstrap: Debootstrap | None = None
    from_image: str | None = Field(None, alias="from")
    run: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_source(self) -> BaseRecipe:
        if (self.debootstrap is None) == (self.from_image is None):
            raise ValueError("give exactly one of 'debootstrap' or 'from'")
        return self

    def digest(self) -> str:
        payload = json.dumps([RECIPE_VERSION, self.model_dump(mode="json")], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def tag(self) -> str:
        return f"bashenv/base-{self.name}:{self.digest()}"


def recipe_dirs() -> list[Path]:
    """Where recipes are looked up, first match winning: the directories in $BASHENV_IMAGES
    (a `:`-separated list, the user's own recipes), then the built-in ones bashenv ships."""
    dirs: list[Path] = []
    for entry in os.environ.get("BASHENV_IMAGES", "").split(os.pathsep):
        if not entry:
            continue  # "" from an unset variable or a stray ':'
        path = Path(entry).expanduser()
        if not path.is_dir():
            raise ImageBuildError(f"BASHENV_IMAGES: {path} is not a directory of recipes (*.yaml)")
        dirs.append(path)
    return [*dirs, bundled_dir("images")]


def _recipe_data(path: Path) -> dict[str, Any]:
    """The YAML mapping in `path` ({} for a file that holds something else)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ImageBuildError(f"{path}: invalid base recipe: {exc}") from None
    return data if isinstance(data, dict) else {}


def load_recipe(name: str, directory: Path | None = None) -> BaseRecipe:
    """The recipe called `name` (its `name:` field), from `directory` alone when given, else
    from `recipe_dirs()`: a user's recipe of the same name wins over a built-in one."""
    dirs = [directory] if directory is not None else recipe_dirs()
    known: set[str] = set()
    for folder in dirs:
        for path in sorted(folder.glob("*.yaml")):
            data = _recipe_data(path)
            if data.get("name") != name:
                known.add(str(data.get("name", path.name)))
                continue
            try:
                return BaseRecipe.model_validate(data)
            except ValidationError as exc:
                raise ImageBuildError(f"{path}: invalid base recipe: {exc}") from None
    raise ImageBuildError(
        f"no base recipe named {name!r} in {', '.join(map(str, dirs))} "
        f"(known: {', '.join(sorted(known)) or 'none'}); "
        "add a directory of your own recipes with BASHENV_IMAGES=DIR"
    )
