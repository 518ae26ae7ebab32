"""User edits of the belief graph — ``set ENTITY.ATTRIBUTE=VALUE``, ``drop ENTITY``,
``add ENTITY`` and ``add ENTITY.ATTRIBUTE=VALUE`` — each a new graph whose edited slot is
pinned with source ``user_edit``, or a one-line :class:`BeliefEditError`."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict
from tinmen.agents.t2i.belief import Attribute, BeliefGraph
from tinmen.agents.t2i.parsing import uniform_entity
from tinmen.agents.t2i.vocabulary import ATTRIBUTE_IMPORTANCE, VOCABULARY

from tinmen.errors import BeliefEditError

EDIT = re.compile(r"^\s*(set|drop|add)\b\s*(.*?)\s*$", re.IGNORECASE)
NAME = re.compile(r"[a-z][a-z ]*[a-z]|[a-z]")
USAGE = "use set ENTITY.ATTRIBUTE=VALUE, drop ENTITY, add ENTITY or add ENTITY.ATTRIBUTE=VALUE"


class Edit(BaseModel):
    model_config = ConfigDict(frozen=True)
    verb: Literal["set", "drop", "add"]
    entity: str
    attribute: str = ""
    value: str = ""

    @property
    def subject(self) -> str:
        return f"{self.entity}.{self.attribute}" if self.attribute else self.entity


def is_edit(text: str) -> bool:
    return bool(EDIT.match(text or ""))


def parse_edit(text: str) -> Edit:
    """Read one edit; malformed text is a one-line error saying what to type."""
    match = EDIT.match(text or "")
    if not match:
        raise BeliefEditError(f"not an edit: '{text}'; {USAGE}")
    verb, rest = match.group(1).lower(), " ".join(match.group(2).lower().split())
    target, eq, value = (part.strip() for part in rest.partition("="))
    entity, dot, attribute = (part.strip() for part in target.partition("."))
    if verb == "drop" or (verb == "add" and not dot and not eq):
        if not NAME.fullmatch(rest):
            raise BeliefEditError(f"malformed edit '{text}': entity names are words; {USAGE}")
        return Edit(verb=verb, entity=rest)  # type: ignore[arg-type]
    if not (dot and eq and value) or not NAME.fullmatch(entity) or not NAME.fullmatch(
            attribute) or not NAME.fullmatch(value):
        raise BeliefEditError(f"malformed edit '{text}': {verb} ENTITY.ATTRIBUTE=VALUE, "
                              "with words for each part")
    return Edit(verb=verb, entity=entity, attribute=attribute, value=value)  # type: ignore


def _allowed(belief: BeliefGraph, edit: Edit) -> None:
    slot = belief.attribute(edit.entity, edit.attribute)
    allowed = set(slot.candidates if slot else ()) | set(VOCABULARY.get(edit.attribute, ()))
    if edit.value not in allowed:
        raise BeliefEditError(f"'{edit.value}' is not a candidate of {edit.subject}; "
                              f"candidates: {', '.join(sorted(allowed))}")


def apply_edit(belief: BeliefGraph, text: str | Edit) -> tuple[BeliefGraph, str]:
    """Apply one edit; returns the new graph and the edited subject ("circle.color")."""
    edit = text if isinstance(text, Edit) else parse_edit(text)
    if edit.verb == "drop":
        return belief.without_entity(edit.entity), edit.subject
    if edit.verb == "add":
        if belief.entity(edit.entity) is None:
            belief = belief.with_entity(uniform_entity(edit.entity, "user_edit").model_copy(
                update={"pinned": True}))
        elif not edit.attribute:
            raise BeliefEditError(f"entity '{edit.entity}' is already in the graph; to change "
                                  f"it use set {edit.entity}.ATTRIBUTE=VALUE")
        if not edit.attribute:
            return belief, edit.subject
        if belief.attribute(edit.entity, edit.attribute) is None:
            if edit.attribute not in VOCABULARY:
                raise BeliefEditError(f"unknown attribute '{edit.attribute}'; known: "
                                      f"{', '.join(VOCABULARY)}")
            values = VOCABULARY[edit.attribute]
            belief = belief.with_attribute(edit.entity, Attribute(
                name=edit.attribute, candidates={v: 1 / len(values) for v in values},
                importance=ATTRIBUTE_IMPORTANCE.get(edit.attribute, 1.0)))
    elif belief.attribute(edit.entity, edit.attribute) is None:
        known = ", ".join(s.key for s in belief.slots) or "none"
        raise BeliefEditError(f"no slot {edit.subject} in the belief graph; slots: {known}")
    _allowed(belief, edit)
    return belief.pin(edit.entity, edit.attribute, edit.value, source="user_edit"), \
        edit.subject


def reapply_edit(belief: BeliefGraph, text: str | Edit) -> BeliefGraph:
    """Apply an edit the user made earlier to a fresh parse of the (merged) prompt.

    The edit was checked when it was made; the new parse may already hold what it asked
    for (after "add star" an answer about the star puts "star" in the prompt), so adding an
    entity that is there pins its presence and dropping one that is gone is nothing — the
    user's intent, not an error that would stop the session.
    """
    edit = text if isinstance(text, Edit) else parse_edit(text)
    present = belief.entity(edit.entity) is not None
    if edit.verb == "add" and not edit.attribute and present:
        return belief.set_presence(edit.entity, True, source="user_edit")
    if edit.verb == "drop" and not present:
        return belief
    return apply_edit(belief, edit)[0]
