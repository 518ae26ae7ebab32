"""Ground-truth scenes: the shapes-world vocabulary, a seeded scene sampler (the built-in
synthetic benchmark), descriptions, atomic facts, and a JSONL loader for user items."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tinmen.errors import ConfigError

COLORS = ["red", "green", "blue", "yellow", "purple", "orange", "white", "black"]
SHAPES = ["circle", "square", "triangle", "star", "diamond"]
SIZES = ["small", "large"]
POSITIONS = ["left", "center", "right"]
BACKGROUNDS = ["white", "gray", "black"]
VOCABULARY: dict[str, list[str]] = {"color": COLORS, "size": SIZES, "position": POSITIONS}
BACKGROUND = "background"


class SceneEntity(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    attributes: dict[str, str] = Field(default_factory=dict)


class SceneRelation(BaseModel):
    model_config = ConfigDict(frozen=True)
    subject: str
    predicate: str
    object: str


class Scene(BaseModel):
    """What the user really wants (the simulated user's ground truth)."""

    model_config = ConfigDict(frozen=True)
    entities: list[SceneEntity]
    relations: list[SceneRelation] = Field(default_factory=list)

    def entity(self, name: str) -> SceneEntity | None:
        return next((e for e in self.entities if e.name == name), None)

    def facts(self) -> set[tuple[str, ...]]:
        """Atomic facts: entity present, attribute = value, relation."""
        out: set[tuple[str, ...]] = set()
        for e in self.entities:
            if e.name != BACKGROUND:
                out.add(("present", e.name))
            out.update(("attr", e.name, k, v) for k, v in e.attributes.items())
        out.update(("rel", r.subject, r.predicate, r.object) for r in self.relations)
        return out


class Item(BaseModel):
    id: str
    short: str
    long: str = ""
    scene: Scene | None = None


def relations_from_positions(entities: list[SceneEntity]) -> list[SceneRelation]:
    placed = [(POSITIONS.index(e.attributes["position"]), e.name) for e in entities
              if e.attributes.get("position") in POSITIONS]
    return [SceneRelation(subject=a, predicate="left of", object=b)
            for ia, a in placed for ib, b in placed if ia < ib]


def sample_scene(rng: random.Random) -> Scene:
    background = rng.choice(BACKGROUNDS)
    shapes = rng.sample(SHAPES, rng.randint(1, 3))
    positions = rng.sample(POSITIONS, len(shapes))
    entities = [SceneEntity(name=s, attributes={
        "color": rng.choice([c for c in COLORS if c != background]),
        "size": rng.choice(SIZES), "position": p}) for s, p in zip(shapes, positions)]
    entities.append(SceneEntity(name=BACKGROUND, attributes={"color": background}))
    return Scene(entities=entities, relations=relations_from_positions(entities))


def describe(scene: Scene) -> str:
    """The long description: every attribute, in the renderer's canonical style."""
    parts = []
    for e in scene.entities:
        if e.name == BACKGROUND:
            continue
        a = e.attributes
        words = " ".join(w for w in (a.get("size"), a.get("color"), e.name) if w)
        where = f" on the {a['position']}" if a.get("position") else ""
        parts.append(f"a {words}{where}")
    bg = scene.entity(BACKGROUND)
    if bg and bg.attributes.get("color"):
        parts.append(f"on a {bg.attributes['color']} background")
    return ", ".join(parts)


def short_prompt(scene: Scene) -> str:
    """The under-specified prompt a user starts from: the shapes' names only."""
    names = [f"a {e.name}" for e in scene.entities if e.name != BACKGROUND]
    return " and ".join(names)


def synthetic_items(n: int, seed: int = 0) -> list[Item]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        scene = sample_scene(rng)
        items.append(Item(id=f"synthetic-{seed}-{i}", short=short_prompt(scene),
                          long=describe(scene), scene=scene))
    return items


def load_items(path: str | Path) -> list[Item]:
    """Items from JSONL: {"id", "short", "long", "scene"?} per line."""
    items = []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read items file {path}: {exc.strerror}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data: Any = json.loads(line)
            items.append(Item.model_validate(data))
        except (json.JSONDecodeError, ValidationError) as exc:
            first = str(exc).splitlines()[0] if isinstance(exc, json.JSONDecodeError) else \
                f"field '{'.'.join(map(str, exc.errors()[0]['loc']))}': {exc.errors()[0]['msg']}"
            raise ConfigError(f"{path}:{number}: not a valid item ({first}); each line must "
                              'be {"id", "short", "long", "scene"?}') from exc
    if not items:
        raise ConfigError(f"{path} holds no items")
    return items
