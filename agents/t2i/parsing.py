"""Prompt → belief graph through ``models`` (role "parser"), with answered slots pinned.

Small models cannot be trusted to write names or probabilities (DESIGN.md), so:

* entities are vocabulary words found in the prompt, plus what the model proposes in JSON
  decoded under a bounded schema — kept only when the name is a span of the prompt (or, for
  implicit entities, a vocabulary word);
* a value the prompt states in the same clause as its entity is pinned by rule; other slots
  get the model's own normalised scores of each allowed value (``models.choose``);
* every answered fact is re-applied after each re-parse ("pins"), so the parser cannot forget
  what the user said; an entity it dropped is restored;
* a proposal that is not valid JSON is counted and ignored; a graph that would not validate
  is never returned: the previous graph (or the rule-only one) is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tinmen.agents.t2i import prompts, rules
from tinmen.agents.t2i.belief import PRESENT, Attribute, BeliefGraph, Entity, Relation
from tinmen.agents.t2i.facts import RELATION, UNSPECIFIED, Fact, as_facts
from tinmen.agents.t2i.vocabulary import (
    ATTRIBUTE_IMPORTANCE,
    BACKGROUND,
    ENTITY_IMPORTANCE,
    OBJECTS,
    POSITIONS,
    RELATION_IMPORTANCE,
    RELATIONS,
    SCENERY,
    SHAPES,
    STYLE_ENTITY,
    VOCABULARY,
    attributes_for,
)

from tinmen.errors import BeliefEditError

MAX_ENTITIES, MAX_ATTRIBUTES, MAX_NAME, MAX_VALUE = 4, 3, 24, 16
MAX_OPEN_RELATIONS = 3
PROPOSAL_TOKENS = 192
Vocabulary = Literal["shapes", "open"]  # what entity names and values may be


class Pin(BaseModel):
    """One slot fixed after a parse: stated in the prompt (rule) or answered by the user."""

    model_config = ConfigDict(frozen=True)
    entity: str
    attribute: str
    value: str
    source: str  # "rule" or "answer"
    restored: bool = False  # the parser had dropped the entity or slot; the pin put it back


class ParseResult(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    belief: BeliefGraph
    pins: list[Pin] = Field(default_factory=list)
    failures: list[str] = Field(default_factory=list)  # invalid proposals, invalid graphs
    rejected: list[str] = Field(default_factory=list)  # proposed items that failed checks
    fell_back: bool = False


# --------------------------------------------------------------------------- proposal
class ProposedAttribute(BaseModel):
    name: str
    value: str


class ProposedEntity(BaseModel):
    name: str
    type: str = "explicit"
    attributes: list[ProposedAttribute] = Field(default_factory=list)


class Proposal(BaseModel):
    entities: list[ProposedEntity] = Field(default_factory=list)


def proposal_schema() -> dict[str, Any]:
    """Bounded JSON schema for the parser's proposal (every array and string has a cap)."""
    attribute = {"type": "object", "additionalProperties": False, "required": ["name", "value"],
                 "properties": {"name": {"enum": list(VOCABULARY)},
                                "value": {"type": "string", "minLength": 1,
                                          "maxLength": MAX_VALUE}}}
    entity = {"type": "object", "additionalProperties": False,
              "required": ["name", "type", "attributes"],
              "properties": {"name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
                             "type": {"enum": ["explicit", "implicit", "background"]},
                             "attributes": {"type": "array", "items": attribute,
                                            "maxItems": MAX_ATTRIBUTES}}}
    return {"title": "t2i_belief_proposal", "type": "object", "additionalProperties": False,
            "required": ["entities"],
            "properties": {"entities": {"type": "array", "items": entity,
                                        "maxItems": MAX_ENTITIES}}}


def propose(models: Any, role: str, prompt: str) -> tuple[Proposal | None, str | None]:
    """The model's JSON proposal, or (None, why) when it is not valid."""
    gen = models.generate(role, prompts.parse_prompt(prompt), max_new_tokens=PROPOSAL_TOKENS,
                          json_schema=proposal_schema())
    try:
        return Proposal.model_validate(json.loads(gen.text)), None
    except json.JSONDecodeError as exc:
        return None, f"parser proposal is not JSON ({exc.msg}): {gen.text[:60]!r}"
    except ValidationError as exc:
        return None, f"parser proposal does not fit the schema: {exc.errors()[0]['msg']}"


def checked_entities(proposal: Proposal, prompt: str) -> tuple[dict[str, str], list[str]]:
    """Proposed entity names that can be checked (name → kind), and why others were not."""
    kept, rejected = {}, []
    for item in proposal.entities:
        name = " ".join(rules.singular(w) for w in rules.words(item.name))
        if rules.is_span(name, prompt):
            kept[name] = "explicit"
        elif item.type in ("implicit", "background") and name in OBJECTS + SCENERY:
            kept[name] = "implicit"
        else:
            rejected.append(f"entity '{item.name}' is neither in the prompt nor a known "
                            "implicit entity")
    return kept, rejected


def checked_values(proposal: Proposal, prompt: str, names: list[str]
                   ) -> tuple[dict[tuple[str, str], str], list[str]]:
    """Proposed values stated in the same clause as their entity (spans of the prompt)."""
    kept, rejected = {}, []
    for item in proposal.entities:
        name = " ".join(rules.singular(w) for w in rules.words(item.name))
        for a in item.attributes:
            value = " ".join(rules.words(a.value))
            same_clause = any(rules.head(name) in rules.words(c) and rules.is_span(value, c)
                              for c in rules.clauses(prompt))
            if name in names and a.name in attributes_for(name) and value and same_clause:
                kept[(name, a.name)] = value
            elif name in names:
                rejected.append(f"value '{a.value}' for {name}.{a.name} is not stated beside "
                                f"the {name}")
    return kept, rejected


# --------------------------------------------------------------------------- building
def entity_plan(prompt: str, proposed: Mapping[str, str]) -> list[tuple[str, str]]:
    """(name, kind) of every entity: prompt words, checked proposals, the background."""
    plan = [(n, "explicit") for n in rules.vocabulary_entities(prompt)]
    plan += [(n, k) for n, k in proposed.items() if n not in dict(plan)]
    if any(n not in SHAPES for n, _ in plan):
        plan.append((STYLE_ENTITY, "background"))
    return plan[:MAX_ENTITIES + 2] + [(BACKGROUND, "background")]


def slot_distribution(models: Any, role: str, prompt: str, entity: str, attribute: str,
                      values: tuple[str, ...], excluded: set[str]) -> dict[str, float]:
    """The model's scores of the allowed values, normalised, with stated exclusions at 0."""
    choice = models.choose(role, prompts.slot_prompt(prompt, entity, attribute),
                           [f" {v}" for v in values])
    dist = {v: (0.0 if v in excluded else p) for v, p in zip(values, choice.probs)}
    total = sum(dist.values())
    return {v: p / total for v, p in dist.items()} if total > 0 else dict(
        zip(values, choice.probs))


def slot_attribute(models: Any, role: str, prompt: str, entity: str, slot: str,
                   values: tuple[str, ...], value: str | None, excluded: set[str],
                   pins: list[Pin], importance: float) -> Attribute:
    """One slot of an entity: a stated ``value`` is pinned (and appended to ``pins``);
    otherwise the model scores ``values``, less those the prompt ``excluded``."""
    if value:
        candidates = {v: 0.0 for v in values} | {value: 1.0}
        pins.append(Pin(entity=entity, attribute=slot, value=value, source="rule"))
    else:
        candidates = slot_distribution(models, role, prompt, entity, slot, values, excluded)
    return Attribute(name=slot, candidates=candidates, importance=importance,
                     pinned=bool(value), source="rule" if value else "model")


def build_entity(models: Any, role: str, prompt: str, name: str, kind: str,
                 proposed: Mapping[tuple[str, str], str]) -> tuple[Entity, list[Pin]]:
    said = rules.stated(prompt, name)
    attributes, pins = [], []
    for attribute, values in attributes_for(name).items():
        value = said.values.get(attribute) or proposed.get((name, attribute))
        attributes.append(slot_attribute(models, role, prompt, name, attribute, values, value,
                                         said.excluded.get(attribute, set()), pins,
                                         ATTRIBUTE_IMPORTANCE.get(attribute, 1.0)))
    probability = 1.0
    if said.present is False:
        probability = 0.0
    elif kind == "implicit" and said.present is None:
        choice = models.choose(role, prompts.presence_prompt(prompt, name), [" yes", " no"])
        probability = choice.probs[0]
    return Entity(name=name, kind=kind, probability=probability, attributes=tuple(attributes),
                  importance=ENTITY_IMPORTANCE[kind], pinned=said.present is not None,
                  source="rule" if said.present is not None else "model"), pins


def build_relations(models: Any, role: str, prompt: str,
                    entities: list[Entity]) -> list[Relation]:
    """Stated relations (pinned) and, between everyday objects, open ones the model scores."""
    names = [e.name for e in entities]
    out: dict[tuple[str, str], Relation] = {}
    for subj, pred, obj, negated in rules.stated_relations(prompt, names):
        if not negated:
            out[(subj, obj)] = Relation(subject=subj, object=obj, candidates={
                v: float(v == pred) for v in RELATIONS}, pinned=True, source="rule")
    objects = [e.name for e in entities if e.name in OBJECTS and e.kind == "explicit"]
    pairs = [(a, b) for i, a in enumerate(objects) for b in objects[i + 1:]]
    for a, b in pairs[:MAX_OPEN_RELATIONS]:
        if (a, b) in out or (b, a) in out:
            continue
        choice = models.choose(role, prompts.relation_prompt(prompt, a, b),
                               [f" {v}" for v in RELATIONS])
        out[(a, b)] = Relation(subject=a, object=b, candidates=dict(zip(RELATIONS,
                                                                        choice.probs)),
                               importance=RELATION_IMPORTANCE)
    return list(out.values())


def build_graph(models: Any, role: str, prompt: str, proposal: Proposal | None
                ) -> tuple[BeliefGraph, list[Pin], list[str]]:
    proposed_entities, rejected = checked_entities(proposal, prompt) if proposal else ({}, [])
    plan = entity_plan(prompt, proposed_entities)
    values, rejected_values = checked_values(proposal, prompt, [n for n, _ in plan]) \
        if proposal else ({}, [])
    entities, pins = [], []
    for name, kind in plan:
        entity, found = build_entity(models, role, prompt, name, kind, values)
        entities.append(entity)
        pins += found
    relations = build_relations(models, role, prompt, entities)
    return (BeliefGraph(prompt=prompt, entities=tuple(entities), relations=tuple(relations)),
            pins, rejected + rejected_values)


# --------------------------------------------------------------------------- pins
def uniform_entity(name: str, source: str = "answer") -> Entity:
    """An entity the parser dropped but the user spoke about: every slot uniform."""
    kind = "background" if name in (BACKGROUND, STYLE_ENTITY) else "explicit"
    attributes = tuple(Attribute(name=a, candidates={v: 1 / len(vals) for v in vals},
                                 importance=ATTRIBUTE_IMPORTANCE.get(a, 1.0))
                       for a, vals in attributes_for(name).items())
    return Entity(name=name, kind=kind, importance=ENTITY_IMPORTANCE[kind],
                  attributes=attributes, source=source)  # type: ignore[arg-type]


def apply_fact(belief: BeliefGraph, fact: Fact, source: str = "answer"
               ) -> tuple[BeliefGraph, Pin | None]:
    """Re-apply one answered fact; restores an entity or slot the parser forgot."""
    if fact.value == UNSPECIFIED:
        return _no_preference(belief, fact), Pin(entity=fact.entity, attribute=fact.attribute,
                                                 value=UNSPECIFIED, source=source)
    restored = False
    if belief.entity(fact.entity) is None:
        if fact.attribute == PRESENT and (fact.value == "no") != fact.negated:
            return belief, None  # absent and not in the graph: nothing to pin
        belief, restored = belief.with_entity(uniform_entity(fact.entity, source)), True
    if fact.attribute == PRESENT:
        present = (fact.value == "yes") != fact.negated
        belief = belief.set_presence(fact.entity, present, source=source)  # type: ignore
    elif fact.attribute == RELATION:
        belief, restored = _apply_relation(belief, fact, source), restored
    else:
        if belief.attribute(fact.entity, fact.attribute) is None:
            values = VOCABULARY.get(fact.attribute, (fact.value,))
            belief = belief.with_attribute(fact.entity, Attribute(
                name=fact.attribute, candidates={v: 1 / len(values) for v in values},
                importance=ATTRIBUTE_IMPORTANCE.get(fact.attribute, 1.0)))
            restored = True
        slot = belief.attribute(fact.entity, fact.attribute)
        if fact.negated:
            if slot is None or fact.value not in slot.candidates:
                return belief, None
            belief = belief.exclude(fact.entity, fact.attribute, fact.value, source=source)
        else:
            belief = belief.pin(fact.entity, fact.attribute, fact.value, source=source)
    return belief, Pin(entity=fact.entity, attribute=fact.attribute,
                       value=("not " if fact.negated else "") + fact.value, source=source,
                       restored=restored)


def _no_preference(belief: BeliefGraph, fact: Fact) -> BeliefGraph:
    """The user does not mind: importance 0, so it is never asked again; nothing asserted."""
    entity = belief.entity(fact.entity)
    if entity is None:
        return belief
    if fact.attribute == RELATION:
        relation = belief.relation(fact.entity, fact.related)
        return belief.with_relation(relation.model_copy(update={"importance": 0.0})) \
            if relation else belief
    attribute = entity.attribute(fact.attribute)
    if fact.attribute == PRESENT or attribute is None:
        return belief.update_entity(entity.name, importance=0.0)
    return belief.with_attribute(fact.entity, attribute.model_copy(update={"importance": 0.0}))


def _apply_relation(belief: BeliefGraph, fact: Fact, source: str) -> BeliefGraph:
    if belief.entity(fact.related) is None:
        belief = belief.with_entity(uniform_entity(fact.related, source))
    if fact.negated:
        relation = belief.relation(fact.entity, fact.related)
        if relation is None or fact.value not in relation.candidates:
            return belief
        return belief.exclude_relation(fact.entity, fact.related, fact.value, source=source)
    return belief.pin_relation(fact.entity, fact.related, fact.value, source=source)


def exclusive_positions(belief: BeliefGraph) -> BeliefGraph:
    """Shapes stand at distinct positions: a position another shape holds is ruled out."""
    shapes = [e.name for e in belief.entities if e.name in SHAPES and e.probability > 0.5]
    if not 1 < len(shapes) <= len(POSITIONS):
        return belief
    for _ in range(len(shapes)):  # a newly settled shape can settle the next one
        before = belief
        for name in shapes:
            slot = belief.attribute(name, "position")
            if slot is None or slot.pinned:
                continue
            taken = {other.best[0] for o in shapes if o != name
                     for other in [belief.attribute(o, "position")] if other and other.pinned}
            if not [v for v, p in slot.candidates.items() if p > 0 and v not in taken]:
                continue  # contradiction: keep the model's view
            for value in sorted(taken):
                if belief.attribute(name, "position").candidates.get(value, 0) > 0:  # type: ignore
                    belief = belief.exclude(name, "position", value, source="rule")
        if belief == before:
            break
    return belief


# --------------------------------------------------------------------------- entry point
def parse_prompt(models: Any, role: str, prompt: str,
                 answered: Mapping[tuple[str, str], str] | Iterable[Fact] | None = None,
                 previous: BeliefGraph | None = None, propose_json: bool = True,
                 vocabulary: Vocabulary = "shapes") -> ParseResult:
    """Parse ``prompt`` into a belief graph; ``answered`` facts are pinned, never re-guessed.

    ``vocabulary="open"`` names entities by spans of any prompt (:mod:`open_vocabulary`);
    a re-parse there re-scores the ``previous`` graph's slots instead of rebuilding it.
    Returns the pins (stated by rule, or answered) so the caller can log each one, and the
    failures (invalid proposals or graphs) so it can count them.
    """
    facts = as_facts(answered)
    failures: list[str] = []
    proposal = None
    if propose_json and vocabulary == "shapes":
        proposal, why = propose(models, role, prompt)
        failures += [why] if why else []
    try:
        if vocabulary == "open":
            belief, pins, found, rejected = _open_graph(models, role, prompt, previous)
            failures += found
        else:
            belief, pins, rejected = build_graph(models, role, prompt, proposal)
        for fact in facts:
            belief, pin = apply_fact(belief, fact)
            pins += [pin] if pin else []
        belief = exclusive_positions(belief)
    except (BeliefEditError, ValidationError) as exc:
        why = str(exc) if isinstance(exc, BeliefEditError) else \
            f"{'.'.join(map(str, exc.errors()[0]['loc']))}: {exc.errors()[0]['msg']}"
        kept = "kept the previous graph" if previous else "fell back to an empty graph"
        failures.append(f"parsed graph is invalid ({why}); {kept}")
        fallback = previous or BeliefGraph(prompt=prompt, entities=(uniform_entity(
            BACKGROUND, "prior"),))
        return ParseResult(belief=fallback, failures=failures, fell_back=True)
    return ParseResult(belief=belief, pins=pins, failures=failures, rejected=rejected)


def _open_graph(models: Any, role: str, prompt: str, previous: BeliefGraph | None
                ) -> tuple[BeliefGraph, list[Pin], list[str], list[str]]:
    from tinmen.agents.t2i import open_vocabulary

    if previous is not None and any(e.kind == "explicit" for e in previous.entities):
        return open_vocabulary.rescored(models, role, prompt, previous), [], [], []
    return open_vocabulary.build_open_graph(models, role, prompt)


from tinmen.agents.t2i.facts import merge_fact  # noqa: E402,F401  (re-exported for graphs)
