"""Facts the user has told the agent, and how each one is written into the prompt.

The paper turns every answer into a declarative sentence, merges it into the prompt and
re-parses; the same answers are then re-applied as pins so the parser cannot forget them.
A fact is one of: an attribute value ("the circle is red"), an exclusion (a "no" to "is the
circle red?"), presence ("there is no cloud") or a relation ("the cat is on the sofa").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict
from tinmen.agents.t2i.vocabulary import BACKGROUND, STYLE_ENTITY

PRESENT = "present"  # attribute name of presence facts (value "yes" / "no")
RELATION = "relation"  # attribute name of relation facts (``related`` is the object)
UNSPECIFIED = "unspecified"  # the user has no preference: stop asking, assert nothing


class Fact(BaseModel):
    model_config = ConfigDict(frozen=True)
    entity: str
    attribute: str
    value: str
    related: str = ""
    negated: bool = False

    @property
    def key(self) -> tuple[str, str]:
        """The slot the fact settles (relations by "subject|object")."""
        if self.attribute == RELATION:
            return (f"{self.entity}|{self.related}", RELATION)
        return (self.entity, self.attribute)

    @property
    def sentence(self) -> str:
        return fact_sentence(self)


def fact_sentence(fact: Fact) -> str:
    """The fact as a clause the rule parser (and the renderer) reads back."""
    e, v, no = fact.entity, fact.value, " not" if fact.negated else ""
    if v == UNSPECIFIED:
        return ""
    if fact.attribute == PRESENT:
        absent = (v == "no") != fact.negated
        return f"there is no {e}" if absent else f"there is a {e}"
    if fact.attribute == RELATION:
        return f"the {e} is{no} {v} the {fact.related}"
    if e == BACKGROUND:
        return f"the background is not {v}" if fact.negated else f"on a {v} background"
    if e == STYLE_ENTITY:
        return f"the image is{no} in {v} style"
    if fact.attribute == "position":
        return f"the {e} is{no} " + ("in the center" if v == "center" else f"on the {v}")
    return f"the {e} is{no} {v}"


def merge_fact(prompt: str, entity: str | Fact, attribute: str = "", value: str = "",
               negated: bool = False, related: str = "") -> str:
    """Add an answered fact to the prompt text (the paper merges answers into the prompt)."""
    fact = entity if isinstance(entity, Fact) else Fact(
        entity=entity, attribute=attribute, value=value, negated=negated, related=related)
    sentence = fact_sentence(fact)
    if not sentence:
        return prompt
    return f"{prompt.rstrip(' ,.')}, {sentence}" if prompt.strip() else sentence


def as_facts(answered: Mapping[tuple[str, str], str] | Iterable[Any] | None) -> list[Fact]:
    """Facts from a {(entity, attribute): value} map, Fact objects, or [e, a, v] rows."""
    if answered is None:
        return []
    if isinstance(answered, Mapping):
        return [Fact(entity=e, attribute=a, value=v) for (e, a), v in answered.items()]
    out = []
    for item in answered:
        if isinstance(item, Fact):
            out.append(item)
        elif isinstance(item, Mapping):
            out.append(Fact.model_validate(item))
        else:
            e, a, v = item
            out.append(Fact(entity=e, attribute=a, value=v))
    return out
