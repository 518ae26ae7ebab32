"""The agent's belief about the image the user wants: an editable graph of entities,
attribute slots with candidate distributions, and relations (Hahn et al., 2025).

Values are frozen; every update returns a new graph. Invariants (names resolve,
probabilities in [0, 1], each slot's candidates sum to 1) are checked on construction, with
errors that name the offending item.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from tinmen.agents.t2i.scenes import BACKGROUND, POSITIONS, Scene, SceneEntity, SceneRelation

from tinmen.errors import BeliefEditError

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
CONFIDENT = 0.5  # a value enters the most likely scene only when at least this probable
TOLERANCE = 1e-6


class Entity(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str = Field(min_length=1)
    kind: Literal["explicit", "implicit", "background"] = "explicit"
    probability: Probability = 1.0
    importance: Probability = 1.0


class Slot(BaseModel):
    """One attribute of one entity, with a distribution over candidate values."""

    model_config = ConfigDict(frozen=True)
    entity: str
    attribute: str
    candidates: dict[str, Probability]
    importance: Probability = 1.0
    pinned: bool = False

    @model_validator(mode="after")
    def _normalised(self) -> Slot:
        total = sum(self.candidates.values())
        if not self.candidates or abs(total - 1.0) > 1e-4:
            raise ValueError(f"slot {self.key}: candidates sum to {total:.4f}, not 1")
        return self

    @property
    def key(self) -> str:
        return f"{self.entity}.{self.attribute}"

    @property
    def entropy(self) -> float:
        return -sum(p * math.log(p) for p in self.candidates.values() if p > 0)

    @property
    def best(self) -> tuple[str, float]:
        value = max(self.candidates, key=lambda v: self.candidates[v])
        return value, self.candidates[value]


class BeliefGraph(BaseModel):
    model_config = ConfigDict(frozen=True)
    prompt: str
    entities: tuple[Entity, ...] = ()
    slots: tuple[Slot, ...] = ()

    @model_validator(mode="after")
    def _resolves(self) -> BeliefGraph:
        names = [e.name for e in self.entities]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate entity names in {names}")
        keys = [s.key for s in self.slots]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate slots in {keys}")
        for slot in self.slots:
            if slot.entity not in names:
                raise ValueError(f"slot {slot.key} names entity '{slot.entity}', which is "
                                 "not in the graph")
        return self

    # ------------------------------------------------------------------ reading
    def entity(self, name: str) -> Entity | None:
        return next((e for e in self.entities if e.name == name), None)

    def slot(self, entity: str, attribute: str) -> Slot | None:
        return next((s for s in self.slots if s.entity == entity and s.attribute == attribute),
                    None)

    def slots_of(self, entity: str) -> list[Slot]:
        return [s for s in self.slots if s.entity == entity]

    def most_likely_scene(self) -> Scene:
        entities = []
        for e in self.entities:
            if e.probability < CONFIDENT:
                continue
            attrs = {s.attribute: s.best[0] for s in self.slots_of(e.name)
                     if s.best[1] >= CONFIDENT}
            entities.append(SceneEntity(name=e.name, attributes=attrs))
        placed = [(POSITIONS.index(x.attributes["position"]), x.name) for x in entities
                  if x.attributes.get("position") in POSITIONS and x.name != BACKGROUND]
        relations = [SceneRelation(subject=a, predicate="left of", object=b)
                     for ia, a in placed for ib, b in placed if ia < ib]
        return Scene(entities=entities, relations=relations)

    def to_prompt(self) -> str:
        """The most likely scene as text, in the renderer's canonical style."""
        from tinmen.agents.t2i.scenes import describe

        return describe(self.most_likely_scene()) or self.prompt

    @property
    def total_entropy(self) -> float:
        return sum(s.entropy for s in self.slots)

    # ------------------------------------------------------------------ updating
    def with_slot(self, slot: Slot) -> BeliefGraph:
        if self.entity(slot.entity) is None:
            raise BeliefEditError(f"no entity '{slot.entity}' in the belief graph")
        rest = [s for s in self.slots if s.key != slot.key]
        return self.model_copy(update={"slots": tuple(rest + [slot])})

    def pin(self, entity: str, attribute: str, value: str) -> BeliefGraph:
        """Fix a slot to ``value`` (an answered question or a user edit)."""
        slot = self.slot(entity, attribute)
        if slot is None:
            raise BeliefEditError(f"no slot {entity}.{attribute} in the belief graph; slots: "
                                  f"{', '.join(s.key for s in self.slots) or 'none'}")
        candidates = {v: 0.0 for v in slot.candidates}
        candidates[value] = 1.0
        return self.with_slot(slot.model_copy(update={"candidates": candidates,
                                                      "pinned": True}))

    def exclude(self, entity: str, attribute: str, value: str) -> BeliefGraph:
        """Rule ``value`` out (a 'no' to a yes/no question); pin when one value is left."""
        slot = self.slot(entity, attribute)
        if slot is None or value not in slot.candidates:
            raise BeliefEditError(f"no candidate '{value}' in slot {entity}.{attribute}")
        rest = {v: p for v, p in slot.candidates.items() if v != value}
        total = sum(rest.values())
        if total <= TOLERANCE:
            rest = {v: 1.0 / len(rest) for v in rest}
        else:
            rest = {v: p / total for v, p in rest.items()}
        rest[value] = 0.0
        live = [v for v, p in rest.items() if p > 0]
        new = slot.model_copy(update={"candidates": rest, "pinned": len(live) == 1})
        return self.with_slot(Slot.model_validate(new.model_dump()))

    def without_entity(self, name: str) -> BeliefGraph:
        if self.entity(name) is None:
            raise BeliefEditError(f"no entity '{name}' to drop; entities: "
                                  f"{', '.join(e.name for e in self.entities)}")
        return self.model_copy(update={
            "entities": tuple(e for e in self.entities if e.name != name),
            "slots": tuple(s for s in self.slots if s.entity != name)})

    def with_entity(self, entity: Entity, slots: list[Slot]) -> BeliefGraph:
        if self.entity(entity.name) is not None:
            raise BeliefEditError(f"entity '{entity.name}' is already in the graph")
        return self.model_copy(update={"entities": self.entities + (entity,),
                                       "slots": self.slots + tuple(slots)})

    # ------------------------------------------------------------------ io
    def to_json(self) -> dict:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: dict) -> BeliefGraph:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "graph"
            raise BeliefEditError(f"invalid belief graph at {where}: {first['msg']}") from exc


def diff(old: BeliefGraph, new: BeliefGraph) -> list[str]:
    """Readable changes from ``old`` to ``new``."""
    out = []
    old_names = {e.name for e in old.entities}
    new_names = {e.name for e in new.entities}
    out += [f"+ entity {n}" for n in sorted(new_names - old_names)]
    out += [f"- entity {n}" for n in sorted(old_names - new_names)]
    for slot in new.slots:
        before = old.slot(slot.entity, slot.attribute)
        if before is None:
            out.append(f"+ slot {slot.key} = {slot.best[0]} ({slot.best[1]:.2f})")
        elif before.candidates != slot.candidates or before.pinned != slot.pinned:
            out.append(f"~ {slot.key}: {before.best[0]} ({before.best[1]:.2f}) -> "
                       f"{slot.best[0]} ({slot.best[1]:.2f}){' pinned' if slot.pinned else ''}")
    return out
