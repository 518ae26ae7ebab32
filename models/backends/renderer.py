"""``shapes-renderer``: the default image generator, needing no weights.

It draws the scene a prompt describes, clause by clause ("a large red circle on the left,
a small blue square on the right, on a gray background"): shapes-world shapes as shapes,
any other noun as a labelled box, unknown colours as an outline with '?', so a user of the
default install sees what the agent believes. Deterministic given the prompt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from PIL import Image, ImageDraw
from tinmen.models.backends.scripted import Weightless
from tinmen.models.spec import ModelSpec

RGB = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220),
       "yellow": (240, 210, 40), "purple": (140, 60, 180), "orange": (245, 140, 30),
       "white": (250, 250, 250), "black": (15, 15, 15), "gray": (128, 128, 128),
       "grey": (128, 128, 128)}
SHAPES = {"circle", "square", "triangle", "star", "diamond"}
SLOTS = {"left": 0, "center": 1, "centre": 1, "middle": 1, "right": 2}
STOP = {"a", "an", "the", "on", "of", "with", "is", "in", "and", "small", "large", "big",
        "tiny", "left", "right", "center", "centre", "middle", "background"} | set(RGB)


def parse_clauses(prompt: str) -> tuple[list[dict[str, Any]], str | None]:
    """(objects, background colour) from a prompt in the canonical scene style."""
    objects, background = [], None
    for clause in re.split(r"[,;.]| and ", prompt.lower()):
        words = re.findall(r"[a-z]+", clause)
        if not words:
            continue
        if "background" in words:
            background = next((w for w in words if w in RGB), background)
            continue
        name = next((w for w in words if w in SHAPES), None) or next(
            (w for w in reversed(words) if w not in STOP), None)
        if name is None:
            continue
        # "the circle is red" refers back to a circle; "a circle" introduces a new one
        found = [o for o in objects if o["name"] == name] if words[0] == "the" else []
        obj = found[-1] if found else {"name": name}
        if not found:
            objects.append(obj)
        for w in words:
            if w in RGB:
                obj["color"] = w
            elif w in SLOTS:
                obj["slot"] = SLOTS[w]
            elif w in ("small", "tiny"):
                obj["size"] = "small"
            elif w in ("large", "big"):
                obj["size"] = "large"
    return objects, background


def draw(prompt: str, size: int = 256) -> Image.Image:
    objects, background = parse_clauses(prompt)
    image = Image.new("RGB", (size, size), RGB.get(background or "", (235, 235, 228)))
    pen = ImageDraw.Draw(image)
    free = [s for s in range(3) if s not in {o.get("slot") for o in objects}]
    for obj in objects:
        slot = obj.get("slot", free.pop(0) if free else 1)
        cx, cy = size * (slot * 2 + 1) // 6, size // 2
        r = size // 8 if obj.get("size") == "large" else size // 14
        if "size" not in obj:
            r = size // 10
        fill = RGB.get(obj.get("color", ""))
        outline = (60, 60, 60) if fill is None else None
        _shape(pen, obj["name"], cx, cy, r, fill, outline)
        label = obj["name"] + ("" if fill is not None else " ?")
        pen.text((cx - 3 * len(label), cy + r + 6), label, fill=(0, 0, 0) if background
                 != "black" else (255, 255, 255))
    return image


def _shape(pen: ImageDraw.ImageDraw, name: str, cx: int, cy: int, r: int,
           fill: Any, outline: Any) -> None:
    box = (cx - r, cy - r, cx + r, cy + r)
    if name == "circle":
        pen.ellipse(box, fill=fill, outline=outline, width=2)
    elif name == "triangle":
        pen.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=fill,
                    outline=outline)
    elif name == "diamond":
        pen.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=fill,
                    outline=outline)
    elif name == "star":
        import math

        points = [(cx + (r if i % 2 == 0 else r * 0.45) * math.sin(i * math.pi / 5),
                   cy - (r if i % 2 == 0 else r * 0.45) * math.cos(i * math.pi / 5))
                  for i in range(10)]
        pen.polygon(points, fill=fill, outline=outline)
    elif name == "square":
        pen.rectangle(box, fill=fill, outline=outline, width=2)
    else:  # any other object: a labelled box
        pen.rounded_rectangle(box, radius=r // 4, fill=fill, outline=outline or (40, 40, 40),
                              width=2)


class ShapesRenderer(Weightless):
    """ImageGenerator drawing the described scene; see the module docstring."""

    def __init__(self, size: int = 256) -> None:
        self.size = size

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> ShapesRenderer:
        return cls(int(spec.options.get("size", 256)))

    def generate_images(self, prompts: Sequence[str], seeds: Sequence[int],
                        params: dict[str, Any]) -> list[Image.Image]:
        return [draw(p, int(params.get("size", self.size))) for p in prompts]
