"""``trainer``: training as a model call, so a replay needs no training and no weights.

A spec ``{"backend": "trainer", "source": "module:ATTR"}`` names a *recipe book*: a mapping
from recipe name to ``recipe(config, data, checkpoints) -> (checkpoint bytes, metrics)``,
where ``checkpoints`` maps the sha256 of each input checkpoint to its bytes. The agent owns
its recipes (this module imports none); the pool records the new checkpoint as a
content-addressed blob and the call's output is its sha256, size and the recipe's metrics.
Checkpoints are safetensors bytes (no pickles).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tinmen.models.spec import ModelSpec

from tinmen.errors import ConfigError
from tinmen.plugins import load_reference

Recipe = Callable[[dict[str, Any], dict[str, Any], dict[str, bytes]],
                  tuple[bytes, dict[str, float]]]


class RecipeTrainer:
    """Runs the named recipes of one recipe book; holds no weights between calls."""

    def __init__(self, recipes: Mapping[str, Recipe]) -> None:
        self.recipes = recipes

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> RecipeTrainer:
        recipes = load_reference(spec.source, what="training recipes")
        if not isinstance(recipes, Mapping):
            raise ConfigError(f"trainer source '{spec.source}' is a {type(recipes).__name__}, "
                              "not a mapping of recipe name -> function")
        return cls(recipes)

    def train(self, recipe: str, config: dict[str, Any], data: dict[str, Any],
              checkpoints: dict[str, bytes]) -> tuple[bytes, dict[str, float]]:
        fn = self.recipes.get(recipe)
        if fn is None:
            raise ConfigError(f"unknown training recipe '{recipe}'; known: "
                              f"{', '.join(sorted(self.recipes))}")
        return fn(config, data, checkpoints)

    def nbytes(self) -> int:
        return 0

    def device(self) -> str:
        return "cpu"

    def to_device(self, device: str) -> None:
        return None

    def close(self) -> None:
        return None
