"""Recipes → Docker images (base, environment, task layers), content-hashed and cached."""

from bashenv.images.build import (
    TaskImage,
    build_base,
    build_images,
    ensure_task_image,
    image_tags,
    prune_images,
)
from bashenv.images.recipes import BaseRecipe, load_recipe

__all__ = [
    "BaseRecipe", "TaskImage", "build_base", "build_images", "ensure_task_image", "image_tags",
    "load_recipe", "prune_images",
]
