"""Closed vocabularies the parser may choose from, and the importance of each slot.

Small models write junk names and numbers (DESIGN.md), so everything the agent believes is
drawn from lists that can be checked: the shapes world (the built-in benchmark and the
default renderer), a modest list of everyday objects and materials for other prompts, and the
spatial relations. Importances follow the paper's "importance to ask" scores, fixed per
attribute so that the same table weights the ground truth in the NLL metric.
"""

from __future__ import annotations

# --- the shapes world (shared with the renderer and the benchmark; do not reorder) -------
from tinmen.models.shapes.world import (  # the one vocabulary of the shapes world
    BACKGROUNDS,
    COLORS,
    POSITIONS,
    SHAPES,
    SIZES,
)

BACKGROUND = "background"  # the entity that holds the background colour

# --- everything else ------------------------------------------------------------------
ANIMALS: tuple[str, ...] = ("cat", "dog", "bird", "horse", "rabbit", "butterfly", "person")
OBJECTS: tuple[str, ...] = ANIMALS + (
    "car", "bicycle", "boat", "house", "tree", "flower", "vase", "cup", "table", "chair",
    "sofa", "lamp", "book", "cake", "ball", "hat", "apple", "bowl", "plate", "window",
    "mountain", "moon")
SCENERY: tuple[str, ...] = ("sky", "grass", "ground", "water", "sun", "cloud", "wall", "floor",
                            "shadow")
OBJECT_COLORS: tuple[str, ...] = COLORS + ("gray", "brown", "pink")
MATERIALS: tuple[str, ...] = ("wooden", "metal", "glass", "plastic", "stone", "fabric",
                              "ceramic")
STYLES: tuple[str, ...] = ("photo", "painting", "cartoon", "sketch", "watercolor")
STYLE_ENTITY = "image style"
SCENE_LEVEL = (BACKGROUND, STYLE_ENTITY)  # entities that are not objects in the picture

RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below", "next to", "on",
                              "in front of", "behind")
INVERSE: dict[str, str] = {"left of": "right of", "right of": "left of", "above": "below",
                           "below": "above", "in front of": "behind", "behind": "in front of",
                           "next to": "next to"}

# --- which slots an entity gets -----------------------------------------------------------
SHAPE_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "color": COLORS, "size": SIZES, "position": POSITIONS}
ANIMAL_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "color": OBJECT_COLORS, "size": SIZES, "position": POSITIONS}
OBJECT_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "color": OBJECT_COLORS, "size": SIZES, "material": MATERIALS, "position": POSITIONS}
BACKGROUND_ATTRIBUTES: dict[str, tuple[str, ...]] = {"color": BACKGROUNDS}
STYLE_ATTRIBUTES: dict[str, tuple[str, ...]] = {"style": STYLES}

# every attribute name the parser knows, with every value it may take
VOCABULARY: dict[str, tuple[str, ...]] = {
    "color": OBJECT_COLORS, "size": SIZES, "position": POSITIONS, "material": MATERIALS,
    "style": STYLES}

ATTRIBUTE_IMPORTANCE: dict[str, float] = {
    "color": 1.0, "position": 0.8, "size": 0.6, "material": 0.5, "style": 0.7}
ENTITY_IMPORTANCE: dict[str, float] = {"explicit": 1.0, "implicit": 0.5, "background": 0.5}
RELATION_IMPORTANCE = 0.5

# words that are never entity names even when the prompt contains them
STOPWORDS = frozenset(
    "a an the of on in at to with and or is are it its this that there no not some one two "
    "three image picture photo left right center top bottom side".split())


def attributes_for(name: str, kind: str = "explicit") -> dict[str, tuple[str, ...]]:
    """The attribute slots (and their candidate values) an entity of this name gets."""
    if name == BACKGROUND:
        return BACKGROUND_ATTRIBUTES
    if name == STYLE_ENTITY:
        return STYLE_ATTRIBUTES
    if name in SHAPES:
        return SHAPE_ATTRIBUTES
    return ANIMAL_ATTRIBUTES if name in ANIMALS else OBJECT_ATTRIBUTES


def attribute_of_value(value: str) -> str | None:
    """Which attribute a vocabulary word is a value of ("red" → color), if any."""
    for attribute, values in VOCABULARY.items():
        if value in values:
            return attribute
    return None

# --- open vocabulary (``vocabulary="open"``, issue #15) -----------------------------------
# Entity names there are spans of the prompt; slots are the entity's usual ones plus those
# the parser names from this list; candidates are the slot's values below plus values the
# parser proposed that are spans of the prompt. Only these lists bound what a value can be.
OPEN_VALUES: dict[str, tuple[str, ...]] = {
    "color": OBJECT_COLORS + ("beige", "gold", "silver", "cream"),
    "size": SIZES + ("medium",),
    "position": POSITIONS,
    "material": MATERIALS + ("paper", "leather", "marble"),
    "pattern": ("plain", "striped", "spotted", "checkered", "floral", "marbled"),
    "texture": ("smooth", "rough", "soft", "glossy", "fluffy", "textured"),
    "shape": ("round", "square", "rectangular", "oval", "tall", "flat"),
    "pose": ("standing", "sitting", "lying", "running", "flying", "walking"),
    "style": STYLES}
OPEN_IMPORTANCE: dict[str, float] = ATTRIBUTE_IMPORTANCE | {
    "pattern": 0.5, "texture": 0.4, "shape": 0.6, "pose": 0.6}
OPEN_BASE: tuple[str, ...] = ("color", "size", "position")  # every open entity's slots
# common verbs and adverbs a span never starts or ends with (no tagger: a short list)
NOT_NOUNS = frozenset(
    "is are was were be been sits sit sitting stands standing lies lying has have "
    "having looks looking look holds holding decorated placed shown appears seems next "
    "each other opposite directions front behind above below between near over under into "
    "onto from by for as up down out open while which who whose very also just runs run "
    "running walks walking carrying carries wearing wears plays playing jumps flies against "
    "across around through".split())
