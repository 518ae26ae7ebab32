"""Ground-truth scenes: what the simulated user really wants.

A :class:`Scene` is a set of entities with attribute values and relations. The built-in
synthetic benchmark samples shapes-world scenes (seeded) and renders each one to a long
description (the hidden intent) and a short, under-specified prompt; :func:`load_items`
reads user items from JSONL. Atomic facts (entity present, attribute = value, relation) are
what the fact-coverage metric counts.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tinmen.agents.t2i.vocabulary import (  # noqa: F401  (re-exported for callers)
    ATTRIBUTE_IMPORTANCE,
    BACKGROUND,
    BACKGROUNDS,
    COLORS,
    ENTITY_IMPORTANCE,
    INVERSE,
    POSITIONS,
    RELATION_IMPORTANCE,
    SCENE_LEVEL,
    SHAPES,
    SIZES,
    STYLE_ENTITY,
    VOCABULARY,
)

from tinmen.errors import ConfigError

Fact = tuple[str, ...]
WORD_ORDER = ("size", "color", "material")  # adjectives before the noun, in this order


class SceneEntity(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str = Field(min_length=1)
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

    def value(self, entity: str, attribute: str) -> str | None:
        found = self.entity(entity)
        return found.attributes.get(attribute) if found else None

    def relation(self, subject: str, obj: str) -> str | None:
        """The predicate linking ``subject`` to ``obj`` (inverting a stored one if needed)."""
        for r in self.relations:
            if (r.subject, r.object) == (subject, obj):
                return r.predicate
            if (r.subject, r.object) == (obj, subject) and r.predicate in INVERSE:
                return INVERSE[r.predicate]
        return None

    def facts(self) -> set[Fact]:
        """Atomic facts: entity present, attribute = value, relation (canonical direction)."""
        out: set[Fact] = set()
        for e in self.entities:
            if e.name not in SCENE_LEVEL:
                out.add(("present", e.name))
            out.update(("attr", e.name, k, v) for k, v in e.attributes.items())
        out.update(relation_fact(r.subject, r.predicate, r.object) for r in self.relations)
        return out


def relation_fact(subject: str, predicate: str, obj: str) -> Fact:
    """One spelling per relation: "b right of a" and "a left of b" are the same fact."""
    if predicate in ("right of", "below", "behind"):
        return ("rel", obj, INVERSE[predicate], subject)
    if predicate == "next to" and obj < subject:
        return ("rel", obj, predicate, subject)
    return ("rel", subject, predicate, obj)


class Item(BaseModel):
    """One benchmark item: the short prompt, the long description, maybe the scene."""

    id: str
    short: str
    long: str = ""
    scene: Scene | None = None


# --------------------------------------------------------------------------- text
def relations_from_positions(entities: list[SceneEntity]) -> list[SceneRelation]:
    """"a left of b" for every pair of placed shapes (positions imply the relations)."""
    placed = [(POSITIONS.index(e.attributes["position"]), e.name) for e in entities
              if e.attributes.get("position") in POSITIONS and e.name not in SCENE_LEVEL]
    return [SceneRelation(subject=a, predicate="left of", object=b)
            for ia, a in placed for ib, b in placed if ia < ib]


def article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def noun_phrase(entity: SceneEntity) -> str:
    """"a small red circle on the left" (the renderer's canonical clause)."""
    a = entity.attributes
    words = [a[k] for k in WORD_ORDER if a.get(k)] + [entity.name]
    extra = [f"{v} {k}" for k, v in a.items() if k not in WORD_ORDER + ("position",)]
    text = article(words[0]) + " " + " ".join(words)
    text += (" with " + " and ".join(extra)) if extra else ""
    where = a.get("position")
    if where:
        text += " in the center" if where == "center" else f" on the {where}"
    return text


def describe(scene: Scene) -> str:
    """The long description: every attribute, in the renderer's canonical style."""
    shown = [e for e in scene.entities if e.name not in SCENE_LEVEL]
    parts = [noun_phrase(e) for e in shown]
    implied = {relation_fact(r.subject, r.predicate, r.object)
               for r in relations_from_positions(shown)}
    parts += [f"the {r.subject} is {r.predicate} the {r.object}" for r in scene.relations
              if relation_fact(r.subject, r.predicate, r.object) not in implied]
    style = scene.value(STYLE_ENTITY, "style")
    if style:
        parts.append(f"in {article(style)} {style} style")
    background = scene.value(BACKGROUND, "color")
    if background:
        parts.append(f"on a {background} background")
    return ", ".join(parts)


def short_prompt(scene: Scene, rng: random.Random | None = None) -> str:
    """The under-specified prompt a user starts from: the shapes, maybe one attribute."""
    shown = [e for e in scene.entities if e.name not in SCENE_LEVEL]
    phrases = [f"{article(e.name)} {e.name}" for e in shown]
    if rng is not None and shown and rng.random() < 0.5:
        i = rng.randrange(len(shown))
        attribute = rng.choice([k for k in ("color", "size") if k in shown[i].attributes])
        value = shown[i].attributes[attribute]
        phrases[i] = f"{article(value)} {value} {shown[i].name}"
    return " and ".join(phrases)


# --------------------------------------------------------------------------- benchmark
def sample_scene(rng: random.Random) -> Scene:
    """1–3 distinct shapes at distinct positions on a background of another colour."""
    background = rng.choice(BACKGROUNDS)
    shapes = rng.sample(SHAPES, rng.randint(1, 3))
    positions = rng.sample(POSITIONS, len(shapes))
    entities = [SceneEntity(name=s, attributes={
        "color": rng.choice([c for c in COLORS if c != background]),
        "size": rng.choice(SIZES), "position": p}) for s, p in zip(shapes, positions)]
    entities.append(SceneEntity(name=BACKGROUND, attributes={"color": background}))
    return Scene(entities=entities, relations=relations_from_positions(entities))


def synthetic_items(n: int, seed: int = 0) -> list[Item]:
    """The built-in benchmark: ``n`` seeded scenes with long and short descriptions."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        scene = sample_scene(rng)
        items.append(Item(id=f"synthetic-{seed}-{i}", short=short_prompt(scene, rng),
                          long=describe(scene), scene=scene))
    return items


def load_items(path: str | Path) -> list[Item]:
    """Items from JSONL, one ``{"id", "short", "long", "scene"?}`` object per line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read items file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"items file {path} is not UTF-8 text ({exc.reason} at byte "
                          f"{exc.start}); save it as UTF-8") from exc
    items = [_item(path, number, line) for number, line in enumerate(lines, 1)
             if line.strip()]
    if not items:
        raise ConfigError(f"{path} holds no items; write one JSON object per line")
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ConfigError(f"{path}: item id '{dup}' appears twice; ids must be unique")
    return items


def _item(path: str | Path, number: int, line: str) -> Item:
    try:
        data: Any = json.loads(line)
        return Item.model_validate(data)
    except RecursionError:
        raise ConfigError(f"{path}:{number}: nested too deeply to read") from None
    except json.JSONDecodeError as exc:
        why = f"not JSON: {exc.msg} at column {exc.colno}"
        raise ConfigError(f"{path}:{number}: {why}; each line must be one JSON object "
                          '{"id", "short", "long", "scene"?}') from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "item"
        raise ConfigError(f"{path}:{number}: field '{where}': {first['msg']}; each line "
                          'must be {"id", "short", "long", "scene"?}') from exc
