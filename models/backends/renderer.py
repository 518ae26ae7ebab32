"""``shapes-renderer``: the default image generator, needing no weights.

It draws the scene a prompt describes, clause by clause ("a large red circle on the left,
a small blue square on the right, on a gray background"): shapes-world shapes as shapes,
any other noun as a labelled box, unknown colours as an outline with '?', unstated positions
in the free slots, so a user of the default install sees what the agent believes. The
parser and painter live in :mod:`tinmen.models.shapes.world`. Deterministic given the prompt
(seeds are accepted and ignored).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image
from tinmen.models.backends.scripted import Weightless
from tinmen.models.shapes.world import RGB, draw_scene, parse_scene_text, placed
from tinmen.models.spec import ModelSpec

__all__ = ["RGB", "ShapesRenderer", "draw", "parse_clauses"]


def parse_clauses(prompt: str) -> tuple[list[dict[str, Any]], str | None]:
    """(objects as dicts of their *stated* fields, background) — the older dict view.

    Keys: ``name`` always; ``color``, ``size``, ``slot`` (0 left .. 2 right) when stated.
    """
    scene = parse_scene_text(prompt)
    objects = []
    for obj in scene.objects:
        item = obj.model_dump(exclude_none=True, exclude={"position"})
        if obj.position:
            item["slot"] = ("left", "center", "right").index(obj.position)
        objects.append(item)
    return objects, scene.background


def draw(prompt: str, size: int = 256) -> Image.Image:
    """The picture of ``prompt``."""
    return draw_scene(parse_scene_text(prompt), size)


class ShapesRenderer(Weightless):
    """ImageGenerator drawing the described scene; see the module docstring.

    Options (spec ``options`` or per-call ``params``): ``size`` (pixels, default 256).
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> ShapesRenderer:
        return cls(int(spec.options.get("size", 256)))

    def generate_images(self, prompts: Sequence[str], seeds: Sequence[int],
                        params: dict[str, Any]) -> list[Image.Image]:
        size = int(params.get("size", params.get("width", self.size)))
        return [draw(p, size) for p in prompts]

    @staticmethod
    def layout(prompt: str) -> list[tuple[str, int]]:
        """(object name, slot) in drawing order: where each object of ``prompt`` lands."""
        return [(obj.name, slot) for obj, slot in placed(parse_scene_text(prompt))]
