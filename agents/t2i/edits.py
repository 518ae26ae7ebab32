"""User edits of the belief graph: ``set ENTITY.ATTRIBUTE=VALUE``, ``drop ENTITY``,
``add ENTITY`` — each a new, pinned graph or a one-line :class:`BeliefEditError`."""

from __future__ import annotations

import re

from tinmen.agents.t2i.belief import BeliefGraph, Entity, Slot
from tinmen.agents.t2i.parsing import IMPORTANCE
from tinmen.agents.t2i.scenes import VOCABULARY

from tinmen.errors import BeliefEditError

EDIT = re.compile(r"^\s*(set|drop|add)\s+(.*)$", re.IGNORECASE)


def is_edit(text: str) -> bool:
    return bool(EDIT.match(text or ""))


def apply_edit(belief: BeliefGraph, text: str) -> tuple[BeliefGraph, str]:
    """Apply one edit; returns the new graph and the edited subject."""
    match = EDIT.match(text or "")
    if not match:
        raise BeliefEditError(f"not an edit: '{text}'; use set ENTITY.ATTRIBUTE=VALUE, "
                              "drop ENTITY or add ENTITY")
    verb, rest = match.group(1).lower(), match.group(2).strip()
    if verb == "drop":
        return belief.without_entity(rest), rest
    if verb == "add":
        name = rest.lower()
        if not re.fullmatch(r"[a-z][a-z ]*", name):
            raise BeliefEditError(f"entity names are words, got '{rest}'")
        slots = [Slot(entity=name, attribute=a, candidates={v: 1 / len(vals) for v in vals},
                      importance=IMPORTANCE[a]) for a, vals in VOCABULARY.items()]
        return belief.with_entity(Entity(name=name), slots), name
    target, sep, value = rest.partition("=")
    entity, dot, attribute = target.strip().partition(".")
    if not sep or not dot or not value.strip():
        raise BeliefEditError(f"malformed edit '{text}': use set ENTITY.ATTRIBUTE=VALUE")
    slot = belief.slot(entity.strip(), attribute.strip())
    value = value.strip().lower()
    if slot is not None and value not in slot.candidates:
        raise BeliefEditError(f"'{value}' is not a candidate of {slot.key}; candidates: "
                              f"{', '.join(slot.candidates)}")
    return belief.pin(entity.strip(), attribute.strip(), value), f"{entity}.{attribute}"
