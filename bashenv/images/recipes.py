"""Base-image recipes (images/*.yaml): debootstrap (offline) or FROM an image (registry)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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


def recipes_dir() -> Path:
    override = os.environ.get("BASHENV_IMAGES")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "images"


def load_recipe(name: str, directory: Path | None = None) -> BaseRecipe:
    directory = directory or recipes_dir()
    for path in sorted(directory.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("name") == name:
                return BaseRecipe.model_validate(data)
        except (yaml.YAMLError, ValidationError, UnicodeDecodeError) as exc:
            raise ImageBuildError(f"{path}: invalid base recipe: {exc}") from None
    raise ImageBuildError(f"no base recipe named {name!r} in {directory} (images/*.yaml)")
