"""Seeded shapes-world samples for training the packaged image models.

A sample is a :class:`Scene` with 1-2 objects (no object coloured like the background, no
two objects in the same slot) plus a caption in the canonical style that
:func:`parse_scene_text` reads back exactly ("a large red circle on the left, a small blue
square on the right, on a gray background"). Training captions may leave out sizes,
positions or the background (``caption(..., rng=...)``) so the models also learn the short
forms ("a red circle") the agents and the acceptance checks use; a shortened caption is
still true of its picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np
from tinmen.models.shapes.world import (
    BACKGROUNDS,
    COLORS,
    POSITIONS,
    SHAPES,
    SIZES,
    Scene,
    SceneObject,
    draw_scene,
)


@dataclass(frozen=True)
class Described:
    """What a caption states: objects as (color, shape, size|None, position|None), bg|None."""

    objects: tuple[tuple[str, str, str | None, str | None], ...]
    background: str | None

    def holds_for(self, scene: Scene) -> bool:
        """True when the caption is a complete, true description of ``scene``'s objects."""
        if self.background not in (None, scene.background):
            return False
        if len(self.objects) != len(scene.objects):
            return False
        for order in permutations(scene.objects):
            if all(c == o.color and s == o.name and z in (None, o.size)
                   and p in (None, o.position)
                   for (c, s, z, p), o in zip(self.objects, order)):
                return True
        return False


def sample_scene(rng: np.random.Generator, max_objects: int = 2,
                 p_single: float = 0.5) -> Scene:
    """A random scene: 1..max_objects objects in distinct slots, colours unlike the background."""
    background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    n = 1 if max_objects == 1 or rng.random() < p_single else int(rng.integers(2, max_objects + 1))
    slots = rng.permutation(len(POSITIONS))[:n]
    colors = [c for c in COLORS if c != background]
    objects = tuple(SceneObject(name=SHAPES[rng.integers(len(SHAPES))],
                                color=colors[rng.integers(len(colors))],
                                size=SIZES[rng.integers(len(SIZES))],
                                position=POSITIONS[slot]) for slot in sorted(slots))
    return Scene(objects=objects, background=background)


def describe(scene: Scene, rng: np.random.Generator | None = None, p_drop: float = 0.35
             ) -> Described:
    """The scene's full description, or with each optional part dropped with ``p_drop``."""
    def keep() -> bool:
        return rng is None or rng.random() >= p_drop
    # positions are all kept or all dropped, so a shortened two-object caption stays ordered
    with_pos = keep()
    objects = tuple((o.color or "", o.name, o.size if keep() else None,
                     o.position if with_pos else None) for o in scene.objects)
    return Described(objects=objects, background=scene.background if keep() else None)


def caption_text(described: Described) -> str:
    """Canonical text: "a large red circle on the left, ..., on a gray background"."""
    parts = []
    for color, shape, size, position in described.objects:
        words = ["a"] + ([size] if size else []) + [color, shape]
        if position:
            words += ["on", "the", position]
        parts.append(" ".join(words))
    if described.background:
        parts.append(f"on a {described.background} background")
    return ", ".join(parts)


def caption(scene: Scene, rng: np.random.Generator | None = None, p_drop: float = 0.35) -> str:
    """Full canonical caption (``rng=None``) or a randomly shortened one."""
    return caption_text(describe(scene, rng, p_drop))


def single_object_scene(color: str, shape: str, rng: np.random.Generator) -> Scene:
    """One ``color`` ``shape`` with random size, slot and a background unlike its colour."""
    backgrounds = [b for b in BACKGROUNDS if b != color]
    return Scene(objects=(SceneObject(name=shape, color=color,
                                      size=SIZES[rng.integers(len(SIZES))],
                                      position=POSITIONS[rng.integers(len(POSITIONS))]),),
                 background=backgrounds[rng.integers(len(backgrounds))])


def images_array(scenes: list[Scene], size: int) -> np.ndarray:
    """uint8 array (N, size, size, 3) of the drawn scenes."""
    return np.stack([np.asarray(draw_scene(s, size), dtype=np.uint8) for s in scenes])


def short_captions() -> list[str]:
    """The 40 zero-shot class captions "a {color} {shape}" (colour-major order)."""
    return [f"a {c} {s}" for c in COLORS for s in SHAPES]
