"""The shapes world: a closed vocabulary, a tolerant scene parser and a PIL painter.

It is the weight-free stand-in for a text-to-image model. Prompts in the canonical style
("a large red circle on the left, a small blue square on the right, on a gray background")
parse exactly; looser text still yields something: any noun outside the vocabulary becomes a
generic object drawn as a labelled box, so the picture always shows what the text said and
what it left open (no colour -> outline with '?', no position -> next free slot).
"""

from __future__ import annotations

import math
import re
from typing import Any

from PIL import Image, ImageDraw, ImageFont
from pydantic import BaseModel, ConfigDict, Field

# The one shapes-world vocabulary: agents/t2i/vocabulary.py and the benchmark import it.
COLORS: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "orange", "white",
                           "black")
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "diamond")
SIZES: tuple[str, ...] = ("small", "large")
POSITIONS: tuple[str, ...] = ("left", "center", "right")
BACKGROUNDS: tuple[str, ...] = ("white", "gray", "black")

RGB: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220),
    "yellow": (240, 210, 40), "purple": (140, 60, 180), "orange": (245, 140, 30),
    "white": (250, 250, 250), "black": (15, 15, 15), "gray": (128, 128, 128),
    # everyday-object colours the t2i agent may state (not shapes-world colours)
    "brown": (130, 80, 40), "pink": (245, 150, 190)}
DEFAULT_BACKGROUND_RGB = (235, 235, 228)  # no background named: a neutral paper tone

COLOR_SYNONYMS = {"grey": "gray"}
SIZE_WORDS = {"small": "small", "tiny": "small", "little": "small", "large": "large",
              "big": "large", "huge": "large"}
POSITION_WORDS = {"left": "left", "center": "center", "centre": "center", "middle": "center",
                  "right": "right"}
STOPWORDS = frozenset({
    "a", "an", "the", "on", "of", "with", "is", "in", "at", "to", "and", "it", "its", "one",
    "there", "are", "be", "side", "colored", "coloured", "shape", "some", "this", "that",
    "picture", "image", "photo", "draw", "show", "please", "me", "very", "background", "s"})
_SPLIT = re.compile(r"[,;.]|\band\b")


class SceneObject(BaseModel):
    """One thing in the picture; ``None`` attributes were not stated."""

    model_config = ConfigDict(frozen=True)

    name: str
    color: str | None = None
    size: str | None = None
    position: str | None = None

    @property
    def is_shape(self) -> bool:
        return self.name in SHAPES


class Scene(BaseModel):
    """Objects in prompt order plus the background colour (``None`` = not stated)."""

    model_config = ConfigDict(frozen=True)

    objects: tuple[SceneObject, ...] = Field(default=())
    background: str | None = None


def _color(word: str) -> str | None:
    word = COLOR_SYNONYMS.get(word, word)
    return word if word in RGB else None


def _clause_object(words: list[str]) -> dict[str, Any] | None:
    """Attributes and name of the one object a clause describes, or None if it names none."""
    found: dict[str, Any] = {}
    for w in words:
        if _color(w):
            found["color"] = _color(w)
        elif w in SIZE_WORDS:
            found["size"] = SIZE_WORDS[w]
        elif w in POSITION_WORDS:
            found["position"] = POSITION_WORDS[w]
    name = next((w for w in words if w in SHAPES), None)
    if name is None:
        vocab = set(RGB) | set(COLOR_SYNONYMS) | set(SIZE_WORDS) | set(POSITION_WORDS)
        nouns = [w for w in words if w not in vocab and w not in STOPWORDS and len(w) > 1]
        name = nouns[-1] if nouns else None
    if name is None:
        return None
    found["name"] = name.removesuffix("s") if name.endswith("s") and name[:-1] in SHAPES \
        else name
    return found


def parse_scene_text(text: str) -> Scene:
    """Tolerant parse of a scene description (see module docstring); never raises.

    Clauses are split on ``, ; .`` and ``and``. "... background" sets the background; a
    clause starting with "the" whose object was already named adds to that object ("the
    circle is red"), any other clause introduces a new object.
    """
    objects: list[dict[str, Any]] = []
    background: str | None = None
    for clause in _SPLIT.split(text.lower()):
        words = re.findall(r"[a-z]+", clause)
        if not words:
            continue
        if "background" in words:
            background = next((c for w in words if (c := _color(w))), background)
            continue
        obj = _clause_object(words)
        if obj is None:
            continue
        earlier = [o for o in objects if o["name"] == obj["name"]] if words[0] == "the" else []
        if earlier:
            earlier[-1].update(obj)
        else:
            objects.append(obj)
    return Scene(objects=tuple(SceneObject(**o) for o in objects), background=background)


def placed(scene: Scene) -> list[tuple[SceneObject, int]]:
    """(object, slot 0..2) pairs: stated positions first, the rest in free slots in order."""
    taken = {POSITIONS.index(o.position) for o in scene.objects if o.position}
    free = [s for s in range(len(POSITIONS)) if s not in taken]
    result = []
    for i, obj in enumerate(scene.objects):
        if obj.position:
            slot = POSITIONS.index(obj.position)
        else:
            slot = free.pop(0) if free else i % len(POSITIONS)
        result.append((obj, slot))
    return result


def draw_scene(scene: Scene, size: int = 256) -> Image.Image:
    """Paint ``scene``: shapes as shapes, other nouns as labelled boxes, unknowns as '?'."""
    image = Image.new("RGB", (size, size), RGB.get(scene.background or "",
                                                   DEFAULT_BACKGROUND_RGB))
    pen = ImageDraw.Draw(image)
    pen.font = ImageFont.load_default(size=max(8, size // 16))
    ink = (255, 255, 255) if scene.background in ("black", "gray") else (0, 0, 0)
    stacked: dict[int, int] = {}
    for obj, slot in placed(scene):
        row = stacked.get(slot, 0)
        stacked[slot] = row + 1
        cx = size * (slot * 2 + 1) // 6
        cy = size // 2 + ((row + 1) // 2) * (1 if row % 2 else -1) * size // 4
        r = {"large": size // 8, "small": size // 14}.get(obj.size or "", size // 10)
        fill = RGB.get(obj.color or "")
        outline = ink if fill is None or fill == image.getpixel((0, 0)) else None
        _shape(pen, obj.name, (cx, cy), r, fill, outline)
        if fill is None:  # colour not stated: say so inside the outline
            pen.text((cx, cy), "?", fill=ink, anchor="mm")
        if not obj.is_shape:
            pen.text((cx, cy + r + 2), obj.name, fill=ink, anchor="mt")
    return image


def draw_text(text: str, size: int = 256) -> Image.Image:
    """``draw_scene(parse_scene_text(text))``."""
    return draw_scene(parse_scene_text(text), size)


def _shape(pen: ImageDraw.ImageDraw, name: str, centre: tuple[int, int], r: int,
           fill: Any, outline: Any) -> None:
    cx, cy = centre
    box = (cx - r, cy - r, cx + r, cy + r)
    if name == "circle":
        pen.ellipse(box, fill=fill, outline=outline, width=2)
    elif name == "square":
        pen.rectangle(box, fill=fill, outline=outline, width=2)
    elif name in ("triangle", "diamond", "star"):
        pen.polygon(_polygon(name, cx, cy, r), fill=fill, outline=outline, width=2)
    else:  # any other object: a labelled box, '?' inside when its colour is unknown
        pen.rounded_rectangle(box, radius=max(r // 4, 1), fill=fill,
                              outline=outline or (40, 40, 40), width=2)


def _polygon(name: str, cx: int, cy: int, r: int) -> list[tuple[float, float]]:
    if name == "triangle":
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if name == "diamond":
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    return [(cx + (r if i % 2 == 0 else r * 0.45) * math.sin(i * math.pi / 5),
             cy - (r if i % 2 == 0 else r * 0.45) * math.cos(i * math.pi / 5))
            for i in range(10)]
