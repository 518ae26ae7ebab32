"""Prompt → belief graph through the pool, with answered slots pinned.

Small models cannot be trusted to write probabilities (DESIGN.md), so entity names come
from the prompt's words found in the vocabulary, and every unpinned slot's distribution is
the model's own normalised score of each allowed value (``models.choose``). Values the
prompt states next to their entity ("a red circle") are pinned by rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tinmen.agents.t2i.belief import BeliefGraph, Entity, Slot
from tinmen.agents.t2i.scenes import BACKGROUND, BACKGROUNDS, SHAPES, VOCABULARY

IMPORTANCE = {"color": 1.0, "position": 0.8, "size": 0.6}
BACKGROUND_IMPORTANCE = 0.5


@dataclass
class Pin:
    entity: str
    attribute: str
    value: str
    source: str  # "rule" (stated in the prompt) or "answer" (the user said so)


@dataclass
class ParseResult:
    belief: BeliefGraph
    pins: list[Pin] = field(default_factory=list)


def stated_values(prompt: str, entity: str) -> dict[str, str]:
    """Attribute values the prompt states in the same clause as ``entity``."""
    found: dict[str, str] = {}
    for clause in re.split(r"[,;.]| and ", prompt.lower()):
        words = re.findall(r"[a-z]+", clause)
        if entity not in words:
            continue
        for attribute, values in VOCABULARY.items():
            for value in values:
                if value in words:
                    found[attribute] = value
    return found


def stated_background(prompt: str) -> str | None:
    match = re.search(r"(\w+) background", prompt.lower())
    return match.group(1) if match and match.group(1) in BACKGROUNDS else None


def slot_question(prompt: str, entity: str, attribute: str) -> list[dict[str, str]]:
    subject = "the background" if entity == BACKGROUND else f"the {entity}"
    return [{"role": "user", "content": f"Image description: {prompt}\n"
             f"What {attribute} is {subject}? Answer with one word."}]


def parse_prompt(models, role: str, prompt: str,
                 answered: dict[tuple[str, str], str] | None = None) -> ParseResult:
    """Parse ``prompt`` into a belief graph; ``answered`` slots are pinned, never re-guessed."""
    answered = dict(answered or {})
    words = re.findall(r"[a-z]+", prompt.lower())
    names = [s for s in SHAPES if s in words]
    entities = [Entity(name=n, kind="explicit", importance=1.0) for n in names]
    entities.append(Entity(name=BACKGROUND, kind="background", importance=BACKGROUND_IMPORTANCE))
    slots, pins = [], []
    plan = [(n, a, vals, IMPORTANCE[a]) for n in names for a, vals in VOCABULARY.items()]
    plan.append((BACKGROUND, "color", BACKGROUNDS, BACKGROUND_IMPORTANCE))
    for entity, attribute, values, importance in plan:
        stated = (stated_background(prompt) if entity == BACKGROUND
                  else stated_values(prompt, entity).get(attribute))
        value = answered.get((entity, attribute)) or stated
        if value in values:
            source = "answer" if (entity, attribute) in answered else "rule"
            pins.append(Pin(entity, attribute, value, source))
            dist = {v: float(v == value) for v in values}
        else:
            choice = models.choose(role, slot_question(prompt, entity, attribute),
                                   [f" {v}" for v in values])
            dist = dict(zip(values, choice.probs))
        slots.append(Slot(entity=entity, attribute=attribute, candidates=dist,
                          importance=importance, pinned=value in values))
    return ParseResult(BeliefGraph(prompt=prompt, entities=tuple(entities), slots=tuple(slots)),
                       pins)


def merge_fact(prompt: str, entity: str, attribute: str, value: str) -> str:
    """Add an answered fact to the prompt text (the paper merges answers into the prompt)."""
    if entity == BACKGROUND:
        return f"{prompt}, on a {value} background"
    if attribute == "position":
        return f"{prompt}, the {entity} is on the {value}"
    return f"{prompt}, the {entity} is {value}"
