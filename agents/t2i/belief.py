"""The agent's belief about the image the user wants (Hahn et al., 2025): entities that may
appear, attribute slots with a distribution over candidate values, and relations between
entities with a distribution over predicates — plus the prompt they were parsed from.

Values are frozen; every update returns a new, re-validated graph. Invariants (names unique
and resolving, probabilities in [0, 1], each distribution summing to 1) are checked on
construction and reported as one-line :class:`BeliefEditError` naming the offending item.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from tinmen.agents.t2i.facts import PRESENT
from tinmen.agents.t2i.scenes import (
    Scene,
    SceneEntity,
    SceneRelation,
    describe,
    relation_fact,
    relations_from_positions,
)
from tinmen.agents.t2i.vocabulary import RELATION_IMPORTANCE

from tinmen.errors import BeliefEditError

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Source = Literal["model", "rule", "answer", "user_edit", "prior"]
Kind = Literal["explicit", "implicit", "background"]
TOLERANCE = 1e-4  # how far a distribution may sum from 1 (parsers normalise; JSON is exact)
CONFIDENT = 0.5  # a value enters the most likely scene only when more probable than this


def entropy(probs: Iterable[float]) -> float:
    """Shannon entropy in nats."""
    return -sum(p * math.log(p) for p in probs if p > 0)


def normalised(weights: Mapping[str, float]) -> dict[str, float]:
    """Weights scaled to sum to 1 (uniform when they are all zero)."""
    total = sum(weights.values())
    if total <= 0:
        return {k: 1.0 / len(weights) for k in weights}
    return {k: w / total for k, w in weights.items()}


def _check_distribution(where: str, candidates: Mapping[str, float]) -> None:
    if not candidates:
        raise BeliefEditError(f"{where} has no candidates; give at least one value")
    total = sum(candidates.values())
    if not math.isfinite(total) or abs(total - 1.0) > TOLERANCE:
        raise BeliefEditError(f"{where}: candidates sum to {total:.4f}, not 1; normalise them")


class Distribution:
    """Entropy and most likely value of a ``candidates`` mapping (attributes, relations,
    slots)."""

    candidates: dict[str, float]

    @property
    def entropy(self) -> float:
        return entropy(self.candidates.values())

    @property
    def best(self) -> tuple[str, float]:
        value = max(self.candidates, key=lambda v: self.candidates[v])
        return value, self.candidates[value]


class Attribute(Distribution, BaseModel):
    """One attribute of an entity; its distribution is checked by the entity holding it."""

    model_config = ConfigDict(frozen=True, revalidate_instances="always", extra="forbid")
    name: str = Field(min_length=1)
    candidates: dict[str, Probability]
    importance: Probability = 1.0
    pinned: bool = False
    source: Source = "model"



class Entity(BaseModel):
    model_config = ConfigDict(frozen=True, revalidate_instances="always", extra="forbid")
    name: str = Field(min_length=1)
    kind: Kind = "explicit"
    probability: Probability = 1.0  # of appearing in the image
    importance: Probability = 1.0
    attributes: tuple[Attribute, ...] = ()
    pinned: bool = False  # the user said whether it appears
    source: Source = "model"

    @model_validator(mode="after")
    def _attributes_valid(self) -> Entity:
        names = [a.name for a in self.attributes]
        for a in self.attributes:
            if names.count(a.name) > 1:
                raise BeliefEditError(f"entity '{self.name}' has attribute '{a.name}' twice")
            _check_distribution(f"{self.name}.{a.name}", a.candidates)
        return self

    def attribute(self, name: str) -> Attribute | None:
        return next((a for a in self.attributes if a.name == name), None)


class Relation(Distribution, BaseModel):
    """How ``subject`` stands to ``object``: a distribution over predicates ("left of")."""

    model_config = ConfigDict(frozen=True, revalidate_instances="always", extra="forbid")
    subject: str = Field(min_length=1)
    object: str = Field(min_length=1)
    candidates: dict[str, Probability]
    importance: Probability = RELATION_IMPORTANCE
    pinned: bool = False
    source: Source = "model"

    @model_validator(mode="after")
    def _valid(self) -> Relation:
        if self.subject == self.object:
            raise BeliefEditError(f"relation {self.key} relates '{self.subject}' to itself")
        _check_distribution(f"relation {self.key}", self.candidates)
        return self

    @property
    def key(self) -> str:
        return f"{self.subject}|{self.object}"



class Slot(Distribution, BaseModel):
    """A read-only view of one entity attribute, flattened for policies and logging."""

    model_config = ConfigDict(frozen=True)
    entity: str
    attribute: str
    candidates: dict[str, float]
    importance: float = 1.0  # the attribute's own
    weight: float = 1.0  # entity importance × attribute importance × P(entity appears)
    pinned: bool = False
    source: Source = "model"

    @property
    def key(self) -> str:
        return f"{self.entity}.{self.attribute}"



class BeliefGraph(BaseModel):
    model_config = ConfigDict(frozen=True, revalidate_instances="always", extra="forbid")
    prompt: str = ""
    entities: tuple[Entity, ...] = ()
    relations: tuple[Relation, ...] = ()

    @model_validator(mode="wrap")
    @classmethod
    def _named_errors(cls, data: Any, handler: Any) -> BeliefGraph:
        try:
            return handler(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise BeliefEditError(f"invalid belief graph at {_where(data, first['loc'])}: "
                                  f"{first['msg']}") from exc

    @model_validator(mode="after")
    def _resolves(self) -> BeliefGraph:
        names = [e.name for e in self.entities]
        for name in names:
            if names.count(name) > 1:
                raise BeliefEditError(f"entity '{name}' appears twice in the belief graph")
        keys = [r.key for r in self.relations]
        for r in self.relations:
            for end in (r.subject, r.object):
                if end not in names:
                    raise BeliefEditError(f"relation {r.key} names entity '{end}', which is "
                                          "not in the graph")
            if keys.count(r.key) > 1:
                raise BeliefEditError(f"relation {r.key} appears twice in the belief graph")
        return self

    # ------------------------------------------------------------------ reading
    def entity(self, name: str) -> Entity | None:
        return next((e for e in self.entities if e.name == name), None)

    def attribute(self, entity: str, attribute: str) -> Attribute | None:
        found = self.entity(entity)
        return found.attribute(attribute) if found else None

    def relation(self, subject: str, obj: str) -> Relation | None:
        return next((r for r in self.relations if (r.subject, r.object) == (subject, obj)),
                    None)

    @property
    def slots(self) -> tuple[Slot, ...]:
        return tuple(s for e in self.entities for s in self.slots_of(e.name))

    def slots_of(self, entity: str) -> list[Slot]:
        e = self.entity(entity)
        if e is None:
            return []
        return [Slot(entity=e.name, attribute=a.name, candidates=a.candidates,
                     importance=a.importance, weight=e.importance * a.importance *
                     e.probability, pinned=a.pinned, source=a.source) for a in e.attributes]

    def slot(self, entity: str, attribute: str) -> Slot | None:
        return next((s for s in self.slots_of(entity) if s.attribute == attribute), None)

    def entropies(self) -> dict[str, float]:
        """Entropy of every uncertain quantity: attributes, relations, presence."""
        out = {s.key: s.entropy for s in self.slots}
        out.update({f"{e.name}.{PRESENT}": entropy((e.probability, 1 - e.probability))
                    for e in self.entities if 0 < e.probability < 1})
        out.update({r.key: r.entropy for r in self.relations})
        return out

    @property
    def total_entropy(self) -> float:
        return sum(self.entropies().values())

    def most_likely_scene(self, threshold: float = CONFIDENT,
                          presence: float | None = None) -> Scene:
        """The single scene the belief favours: every value more probable than ``threshold``
        (an undecided slot stays empty rather than a coin flip); entities more likely than
        ``presence`` (default: ``threshold``)."""
        appear = threshold if presence is None else presence
        entities = [SceneEntity(name=e.name, attributes={
            a.name: a.best[0] for a in e.attributes if a.best[1] > threshold})
            for e in self.entities if e.probability > appear]
        present = {e.name for e in entities}
        relations = relations_from_positions(entities)
        implied = {relation_fact(r.subject, r.predicate, r.object) for r in relations}
        for r in self.relations:
            value, p = r.best
            fact = relation_fact(r.subject, value, r.object)
            if p > threshold and {r.subject, r.object} <= present and fact not in implied:
                relations.append(SceneRelation(subject=r.subject, predicate=value,
                                               object=r.object))
        return Scene(entities=entities, relations=relations)

    def argmax_scene(self) -> Scene:
        """The scene a text-to-image model would draw from this belief: every entity more
        likely present than absent, and *every* attribute and relation filled with its most
        probable value (ties go to the first candidate), however unsure — a generator never
        leaves a colour blank. Scored beside :meth:`most_likely_scene`, it keeps single-turn
        coverage from being deflated by slots the strict scene leaves empty."""
        return self.most_likely_scene(threshold=-1.0, presence=CONFIDENT)

    def to_prompt(self) -> str:
        """The most likely scene as text in the renderer's canonical style ("a large red
        circle on the left, a small blue square on the right, on a gray background")."""
        return describe(self.most_likely_scene()) or self.prompt

    # ------------------------------------------------------------------ updating
    def _rebuilt(self, **changes: Any) -> BeliefGraph:
        data = {"prompt": self.prompt, "entities": self.entities,
                "relations": self.relations, **changes}
        return BeliefGraph(**data)

    def _need_attribute(self, entity: str, attribute: str) -> tuple[Entity, Attribute]:
        e = self.entity(entity)
        a = e.attribute(attribute) if e else None
        if e is None or a is None:
            known = ", ".join(s.key for s in self.slots) or "none"
            raise BeliefEditError(f"no slot {entity}.{attribute} in the belief graph; "
                                  f"slots: {known}")
        return e, a

    def with_prompt(self, prompt: str) -> BeliefGraph:
        return self._rebuilt(prompt=prompt)

    def with_attribute(self, entity: str, attribute: Attribute) -> BeliefGraph:
        """Add or replace one attribute of an existing entity."""
        e = self.entity(entity)
        if e is None:
            raise BeliefEditError(f"no entity '{entity}' in the belief graph")
        if e.attribute(attribute.name) is None:
            return self.update_entity(entity, attributes=e.attributes + (attribute,))
        return self.update_entity(entity, attributes=tuple(
            attribute if a.name == attribute.name else a for a in e.attributes))

    def pin(self, entity: str, attribute: str, value: str,
            source: Source = "answer") -> BeliefGraph:
        """Fix a slot to ``value`` (a new value is added as a candidate)."""
        _, a = self._need_attribute(entity, attribute)
        candidates = {v: 0.0 for v in a.candidates} | {value: 1.0}
        return self.with_attribute(entity, a.model_copy(update={
            "candidates": candidates, "pinned": True, "source": source}))

    def exclude(self, entity: str, attribute: str, value: str,
                source: Source = "answer") -> BeliefGraph:
        """Rule ``value`` out (a "no"); the rest is renormalised, pinned when one is left."""
        _, a = self._need_attribute(entity, attribute)
        if value not in a.candidates:
            raise BeliefEditError(f"no candidate '{value}' in slot {entity}.{attribute}; "
                                  f"candidates: {', '.join(a.candidates)}")
        rest = normalised({v: p for v, p in a.candidates.items() if v != value})
        live = [v for v, p in rest.items() if p > 0]
        return self.with_attribute(entity, a.model_copy(update={
            "candidates": rest | {value: 0.0}, "pinned": len(live) == 1,
            "source": source}))

    def update_entity(self, entity: str, **changes: Any) -> BeliefGraph:
        """The graph with some fields of one entity changed (and everything re-checked)."""
        e = self.entity(entity)
        if e is None:
            raise BeliefEditError(f"no entity '{entity}' in the belief graph")
        new = e.model_copy(update=changes)
        return self._rebuilt(entities=tuple(new if x.name == entity else x
                                            for x in self.entities))

    def set_presence(self, entity: str, present: bool,
                     source: Source = "answer") -> BeliefGraph:
        return self.update_entity(entity, probability=float(present), pinned=True,
                                  source=source)

    def with_entity(self, entity: Entity) -> BeliefGraph:
        if self.entity(entity.name) is not None:
            raise BeliefEditError(f"entity '{entity.name}' is already in the graph")
        return self._rebuilt(entities=self.entities + (entity,))

    def without_entity(self, name: str) -> BeliefGraph:
        if self.entity(name) is None:
            known = ", ".join(e.name for e in self.entities) or "none"
            raise BeliefEditError(f"no entity '{name}' to drop; entities: {known}")
        return self._rebuilt(
            entities=tuple(e for e in self.entities if e.name != name),
            relations=tuple(r for r in self.relations if name not in (r.subject, r.object)))

    def with_relation(self, relation: Relation) -> BeliefGraph:
        rest = tuple(r for r in self.relations if r.key != relation.key)
        return self._rebuilt(relations=rest + (relation,))

    def pin_relation(self, subject: str, obj: str, predicate: str,
                     source: Source = "answer") -> BeliefGraph:
        old = self.relation(subject, obj)
        base = {v: 0.0 for v in old.candidates} if old else {}
        return self.with_relation(Relation(subject=subject, object=obj,
                                           candidates=base | {predicate: 1.0}, pinned=True,
                                           importance=old.importance if old
                                           else RELATION_IMPORTANCE, source=source))

    def exclude_relation(self, subject: str, obj: str, predicate: str,
                         source: Source = "answer") -> BeliefGraph:
        old = self.relation(subject, obj)
        if old is None or predicate not in old.candidates:
            raise BeliefEditError(f"no candidate '{predicate}' in relation {subject}|{obj}")
        rest = normalised({v: p for v, p in old.candidates.items() if v != predicate})
        live = [v for v, p in rest.items() if p > 0]
        return self.with_relation(old.model_copy(update={
            "candidates": rest | {predicate: 0.0}, "pinned": len(live) == 1,
            "source": source}))

    # ------------------------------------------------------------------ io
    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: Any) -> BeliefGraph:
        """Validate stored JSON; a bad graph is a one-line error naming the item."""
        return cls.model_validate(data)

    def to_networkx(self) -> Any:
        """Entities, attribute slots and relations as a ``networkx.DiGraph``."""
        import networkx as nx

        g = nx.DiGraph(prompt=self.prompt)
        for e in self.entities:
            g.add_node(e.name, role="entity", kind=e.kind, probability=e.probability,
                       importance=e.importance)
            for a in e.attributes:
                key = f"{e.name}.{a.name}"
                g.add_node(key, role="attribute", candidates=dict(a.candidates),
                           entropy=a.entropy, pinned=a.pinned, importance=a.importance)
                g.add_edge(e.name, key, role="has")
        for r in self.relations:
            g.add_edge(r.subject, r.object, role="relation", candidates=dict(r.candidates),
                       entropy=r.entropy, pinned=r.pinned)
        return g


def _where(data: Any, loc: tuple[Any, ...]) -> str:
    """Name the item a pydantic error location points at ("circle.color candidates.red")."""
    names, fields, node = [], [], data
    for part in loc:
        node = _child(node, part)
        if isinstance(part, int):
            name = _child(node, "name") or (
                f"{_child(node, 'subject')}|{_child(node, 'object')}"
                if _child(node, "subject") else None)
            names.append(str(name) if name else f"#{part}")
        elif part not in ("entities", "attributes", "relations"):
            fields.append(str(part))
    return " ".join(x for x in (".".join(names), ".".join(fields)) if x) or "graph"


def _child(node: Any, part: Any) -> Any:
    if isinstance(node, Mapping):
        return node.get(part)
    if isinstance(node, list | tuple) and isinstance(part, int):
        return node[part] if -len(node) <= part < len(node) else None
    return getattr(node, part, None) if isinstance(part, str) else None


from tinmen.agents.t2i.diff import BeliefDiff, diff  # noqa: E402,F401,I001  (re-exported)
