"""Open-vocabulary parsing (``vocabulary="open"``): a belief graph for any prompt, not only
the shapes world — still checkable with a small model (DESIGN.md).

Following the paper's parser (entities first, then each entity's attributes with candidates,
then relations between entity pairs; on a re-parse only the attributes are re-derived):

* entity names are spans of the prompt: the JSON proposal's ``name`` is an enum of the
  prompt's noun-like spans (:func:`prompt_spans`), so the parser can only pick among them;
* each entity gets the usual slots (colour, size, position) plus those the parser names
  from :data:`~tinmen.agents.t2i.vocabulary.OPEN_VALUES`; a slot's candidates are that
  list plus any value the parser proposed that is a span of the prompt;
* a value the prompt states beside its entity is pinned (by rule, or the parser's proposal
  when the prompt has it right before the name, "a white vase", or after "the vase is");
  every other slot's distribution is the model's own normalised score of each candidate,
  never a number it writes;
* a re-parse keeps the graph's entities and candidate lists and re-scores every open slot
  against the merged prompt (one JSON call per session, not per turn).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tinmen.agents.t2i import prompts, rules
from tinmen.agents.t2i.belief import BeliefGraph, Entity, Relation
from tinmen.agents.t2i.vocabulary import (
    BACKGROUND,
    ENTITY_IMPORTANCE,
    NOT_NOUNS,
    OPEN_BASE,
    OPEN_IMPORTANCE,
    OPEN_VALUES,
    RELATION_IMPORTANCE,
    RELATIONS,
    STOPWORDS,
    STYLE_ENTITY,
)

MAX_OPEN_ENTITIES = 3  # explicit entities (the style and background come on top)
MAX_SPANS, MAX_SPAN_WORDS = 24, 3
MAX_EXTRA_SLOTS = 1  # slots the parser may add beyond OPEN_BASE, per entity
MAX_OPEN_RELATIONS = 2
PROPOSAL_TOKENS = 160
SLOT_NAMES: tuple[str, ...] = tuple(k for k in OPEN_VALUES if k != "style")
MODIFIERS = frozenset(v for k, vals in OPEN_VALUES.items() if k != "position" for v in vals)


def prompt_spans(prompt: str) -> list[str]:
    """Noun-like spans of the prompt, in order of mention: each run of content words in a
    clause with its leading value words stripped ("a white cake stand" → "cake stand"),
    then each of its words. No tagger: stopwords and a short verb list end a run."""
    spans: list[str] = []
    for clause in rules.clauses(prompt):
        run: list[str] = []
        for w in rules.words(clause) + [""]:  # "" flushes the last run
            if w and w not in STOPWORDS and w not in NOT_NOUNS:
                run.append(w)
                continue
            while run and run[0] in MODIFIERS:
                run = run[1:]
            whole = [" ".join(run[-MAX_SPAN_WORDS:])] if len(run) > 1 else []
            for span in whole + [x for x in run if x not in MODIFIERS]:
                if span not in spans:
                    spans.append(span)
            run = []
    return spans[:MAX_SPANS]


def open_schema(spans: list[str]) -> dict[str, Any]:
    """The proposal schema with entity names restricted to ``spans`` (all arrays bounded)."""
    attribute = {"type": "object", "additionalProperties": False, "required": ["name", "value"],
                 "properties": {"name": {"enum": list(SLOT_NAMES)},
                                "value": {"type": "string", "minLength": 1, "maxLength": 16}}}
    entity = {"type": "object", "additionalProperties": False,
              "required": ["name", "type", "attributes"],
              "properties": {"name": {"enum": spans},
                             "type": {"enum": ["explicit", "implicit", "background"]},
                             "attributes": {"type": "array", "items": attribute,
                                            "maxItems": 2}}}
    return {"title": "t2i_open_proposal", "type": "object", "additionalProperties": False,
            "required": ["entities"],
            "properties": {"entities": {"type": "array", "items": entity,
                                        "maxItems": MAX_OPEN_ENTITIES}}}


def propose(models: Any, role: str, prompt: str, spans: list[str]
            ) -> tuple[list[dict[str, Any]], str | None]:
    """The parser's proposed entities (``[{name, attributes}]``), or ([], why)."""
    if not spans:
        return [], "the prompt has no noun-like span to name an entity by"
    gen = models.generate(role, prompts.parse_prompt(prompt), max_new_tokens=PROPOSAL_TOKENS,
                          json_schema=open_schema(spans))
    try:
        data = json.loads(gen.text)
        entities = data["entities"] if isinstance(data, dict) else None
        if not isinstance(entities, list):
            raise ValueError("no 'entities' list")
        return [e for e in entities if isinstance(e, dict)], None
    except (json.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
        return [], f"parser proposal is not valid ({exc}): {gen.text[:60]!r}"


def checked(proposed: list[dict[str, Any]], prompt: str, spans: list[str]
            ) -> tuple[list[str], dict[str, dict[str, str]], list[str]]:
    """Entity names that are spans of the prompt; per entity, {slot: proposed value}."""
    names: list[str] = []
    values: dict[str, dict[str, str]] = {}
    rejected: list[str] = []
    for item in proposed:
        name = " ".join(rules.words(str(item.get("name", ""))))
        if name not in spans or not rules.is_span(name, prompt):
            rejected.append(f"entity '{item.get('name')}' is not a span of the prompt")
            continue
        if name in names or len(names) >= MAX_OPEN_ENTITIES:
            continue
        names.append(name)
        for a in item.get("attributes") or []:
            slot, value = a.get("name"), " ".join(rules.words(str(a.get("value", ""))))
            if slot in SLOT_NAMES and value and value != name:
                values.setdefault(name, {}).setdefault(slot, value)
    return names, values, rejected


def _beside(prompt: str, name: str, value: str) -> bool:
    """Whether the prompt states ``value`` of ``name``: among the value words right before
    it ("a white ceramic vase") or right after "is"/"are" ("the vase is white")."""
    target, said = name.split(), value.split()
    for clause in rules.clauses(prompt):
        ws = rules.words(clause)
        for i in range(len(ws) - len(target) + 1):
            if ws[i:i + len(target)] != target:
                continue
            j = i
            while j > 0 and ws[j - 1] in MODIFIERS:
                j -= 1
            after = ws[i + len(target):]
            if _contains(ws[j:i], said) or (after[:1] in (["is"], ["are"])
                                            and after[1:1 + len(said)] == said):
                return True
    return False


def _contains(words: list[str], part: list[str]) -> bool:
    return any(words[k:k + len(part)] == part for k in range(len(words) - len(part) + 1))


def slots_for(proposed: Mapping[str, str]) -> list[str]:
    extra = [s for s in proposed if s not in OPEN_BASE][:MAX_EXTRA_SLOTS]
    return list(OPEN_BASE) + extra


def open_entity(models: Any, role: str, prompt: str, name: str,
                proposed: Mapping[str, str]) -> tuple[Entity, list[Any]]:
    """One entity named by a span: stated values pinned, other slots scored by the model."""
    from tinmen.agents.t2i.parsing import slot_attribute

    said = rules.stated(prompt, name)
    attributes, pins = [], []
    for slot in slots_for(proposed):
        value = said.values.get(slot)
        guess = proposed.get(slot)
        if value is None and guess and _beside(prompt, name, guess):
            value = guess
        values = tuple(dict.fromkeys(OPEN_VALUES[slot] + tuple(
            v for v in (guess,) if v and rules.is_span(v, prompt))))
        attributes.append(slot_attribute(models, role, prompt, name, slot, values, value,
                                         said.excluded.get(slot, set()), pins,
                                         OPEN_IMPORTANCE.get(slot, 0.5)))
    present = said.present is not False
    return Entity(name=name, kind="explicit", probability=float(present),
                  importance=ENTITY_IMPORTANCE["explicit"], attributes=tuple(attributes),
                  pinned=said.present is not None,
                  source="rule" if said.present is not None else "model"), pins


def open_relations(models: Any, role: str, prompt: str, names: list[str]) -> list[Relation]:
    """Stated relations (pinned), and the model's scores for the first few open pairs."""
    out: dict[tuple[str, str], Relation] = {}
    for subj, pred, obj, negated in rules.stated_relations(prompt, names):
        if not negated:
            out[(subj, obj)] = Relation(subject=subj, object=obj, candidates={
                v: float(v == pred) for v in RELATIONS}, pinned=True, source="rule")
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
             if (a, b) not in out and (b, a) not in out]
    for a, b in pairs[:MAX_OPEN_RELATIONS]:
        out[(a, b)] = scored_relation(models, role, prompt, a, b, RELATIONS)
    return list(out.values())


def scored_relation(models: Any, role: str, prompt: str, a: str, b: str,
                    predicates: tuple[str, ...]) -> Relation:
    choice = models.choose(role, prompts.relation_prompt(prompt, a, b),
                           [f" {v}" for v in predicates])
    return Relation(subject=a, object=b, candidates=_normalised(predicates, choice.probs),
                    importance=RELATION_IMPORTANCE)


def _normalised(values: tuple[str, ...], probs: tuple[float, ...]) -> dict[str, float]:
    total = sum(probs)
    return {v: (p / total if total > 0 else 1 / len(values)) for v, p in zip(values, probs)}


def build_open_graph(models: Any, role: str, prompt: str
                     ) -> tuple[BeliefGraph, list[Any], list[str], list[str]]:
    """(graph, pins, failures, rejected) for a first parse in open vocabulary."""
    from tinmen.agents.t2i.parsing import build_entity

    spans = prompt_spans(prompt)
    proposed, why = propose(models, role, prompt, spans)
    names, values, rejected = checked(proposed, prompt, spans)
    if not names:  # nothing checkable proposed: the vocabulary words, else the first span
        names = (rules.vocabulary_entities(prompt) or spans)[:1]
    entities, pins = [], []
    for name in names:
        entity, found = open_entity(models, role, prompt, name, values.get(name, {}))
        entities.append(entity)
        pins += found
    for name in (STYLE_ENTITY, BACKGROUND):
        entity, found = build_entity(models, role, prompt, name, "background", {})
        entities.append(entity)
        pins += found
    relations = open_relations(models, role, prompt, names)
    graph = BeliefGraph(prompt=prompt, entities=tuple(entities), relations=tuple(relations))
    return graph, pins, [why] if why else [], rejected


def rescored(models: Any, role: str, prompt: str, previous: BeliefGraph) -> BeliefGraph:
    """The previous graph against the merged ``prompt``: same entities and candidates,
    every slot the model owns re-scored (pins and answers are re-applied by the caller)."""
    from tinmen.agents.t2i.parsing import slot_distribution

    entities = []
    for e in previous.entities:
        said = rules.stated(prompt, e.name)
        attributes = []
        for a in e.attributes:
            if a.pinned or a.source in ("rule", "user_edit"):
                attributes.append(a)
                continue
            dist = slot_distribution(models, role, prompt, e.name, a.name,
                                     tuple(a.candidates), said.excluded.get(a.name, set()))
            attributes.append(a.model_copy(update={"candidates": dist, "source": "model"}))
        entities.append(e.model_copy(update={"attributes": tuple(attributes)}))
    relations = [r if r.pinned or r.source != "model" else scored_relation(
        models, role, prompt, r.subject, r.object, tuple(r.candidates)).model_copy(
            update={"importance": r.importance}) for r in previous.relations]
    return BeliefGraph(prompt=prompt, entities=tuple(entities), relations=tuple(relations))
