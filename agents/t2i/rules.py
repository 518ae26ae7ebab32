"""What a prompt states, read by rule: entity words, attribute values in the same clause as
their entity, negations, the background colour and stated relations.

The parser trusts these readings more than any model (they are spans of the prompt checked
against the vocabulary), and the scripted stand-in model uses the same rules, so the whole
pipeline is deterministic in tests. Clauses are split on , ; . and " and ", the way the
renderer reads a prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tinmen.agents.t2i.vocabulary import (
    BACKGROUND,
    BACKGROUNDS,
    OBJECT_COLORS,
    OBJECTS,
    RELATIONS,
    SCENERY,
    SHAPES,
    STOPWORDS,
    STYLE_ENTITY,
    attributes_for,
)

NEGATIONS = frozenset({"not", "no", "without", "never"})
NOUNS = SHAPES + OBJECTS + SCENERY
POSITION_WORDS = {"left": "left", "right": "right", "center": "center", "centre": "center",
                  "middle": "center"}
SYNONYMS = {"grey": "gray", "big": "large", "tiny": "small", "centre": "center",
            "middle": "center"}
BACKGROUND_PHRASES = (
    re.compile(r"\b(?:(?:on|against|over)\s+)?(?:(?:a|an|the)\s+)?([a-z]+)\s+background\b"),
    re.compile(r"\bbackground\s+(?:is|should be|colou?r is)\s+([a-z]+)\b"))
RELATION_PHRASE = re.compile(r"\b(?:to the )?(" + "|".join(sorted(RELATIONS, key=len,
                                                                   reverse=True)) + r")\b")


def words(text: str) -> list[str]:
    return [SYNONYMS.get(w, w) for w in re.findall(r"[a-z]+", text.lower())]


def clauses(text: str) -> list[str]:
    return [c.strip() for c in re.split(r"[,;.\n]| and ", text.lower()) if c.strip()]


def head(name: str) -> str:
    """The word that names an entity in text ("image style" → "style")."""
    return name.split()[-1]


def singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and word[:-1] in SHAPES + OBJECTS else word


def is_span(phrase: str, text: str) -> bool:
    """Whether ``phrase`` occurs in ``text`` as whole words (and is not only stopwords)."""
    target = words(phrase)
    if not target or all(w in STOPWORDS for w in target):
        return False
    hay = [singular(w) for w in words(text)]
    n = len(target)
    return any(hay[i:i + n] == [singular(w) for w in target] for i in range(len(hay) - n + 1))


def split_background(text: str) -> tuple[str, str | None]:
    """(the text without its "on a gray background" phrase, the colour named there)."""
    rest = re.sub(r"[a-z]+", lambda m: SYNONYMS.get(m.group(0), m.group(0)), text.lower())
    colour = None
    for pattern in BACKGROUND_PHRASES:
        for match in list(pattern.finditer(rest)):
            if match.group(1) in OBJECT_COLORS + BACKGROUNDS:
                colour = match.group(1)
        rest = pattern.sub(lambda m: " , " if m.group(1) in OBJECT_COLORS + BACKGROUNDS
                           else m.group(0), rest)
    return rest, colour


def vocabulary_entities(text: str) -> list[str]:
    """Shapes and known objects named in the text, in order of first mention."""
    found: list[str] = []
    for w in words(split_background(text)[0]):
        w = singular(w)
        if w in SHAPES + OBJECTS + SCENERY and w not in found:
            found.append(w)
    return found


@dataclass
class Stated:
    """What the text says about one entity."""

    values: dict[str, str] = field(default_factory=dict)
    excluded: dict[str, set[str]] = field(default_factory=dict)
    present: bool | None = None  # "there is no cloud" → False


def _position_words(clause: str) -> list[str]:
    """Position words that place the clause's entity (not those inside "left of the X")."""
    inside = {m.group(1).split()[0] for m in RELATION_PHRASE.finditer(clause)}
    return [POSITION_WORDS[w] for w in words(clause) if w in POSITION_WORDS
            and w not in inside]


def _denied(ws: list[str], noun: str) -> bool:
    """"there is no cat", "without a cat": a negation right before the noun."""
    for i, w in enumerate(ws):
        if w == noun:
            before = [x for x in ws[:i] if x not in ("a", "an", "the", "any")]
            return bool(before) and before[-1] in ("no", "without")
    return False


def stated(text: str, entity: str) -> Stated:
    """Attribute values, exclusions and presence the text states for ``entity``."""
    out = Stated()
    rest, background = split_background(text)
    if entity == BACKGROUND:
        if background:
            out.values["color"] = background
        return _negated_background(rest, out)
    allowed = attributes_for(entity)
    for clause in clauses(rest):
        ws = [singular(w) for w in words(clause)]
        if head(entity) not in ws:
            continue
        if _denied(ws, head(entity)):
            out.present = False
        elif not NEGATIONS & set(ws):
            out.present = True if out.present is None else out.present
        for attribute, value, negated in _values_in(clause, ws, allowed, head(entity)):
            if negated:
                out.excluded.setdefault(attribute, set()).add(value)
            else:
                out.values[attribute] = value
    return out


def _owner(i: int, ws: list[str], nouns: set[str]) -> str | None:
    """The noun a modifier at ``i`` describes: the next noun ("a gray cat"), else the
    previous one ("the circle is red", "a circle on the left")."""
    after = next((w for w in ws[i + 1:] if w in nouns), None)
    return after or next((w for w in reversed(ws[:i]) if w in nouns), None)


def _values_in(clause: str, ws: list[str], allowed: dict[str, tuple[str, ...]], noun: str
               ) -> list[tuple[str, str, bool]]:
    """(attribute, value, negated) for each value word describing ``noun``; "not" before a
    word negates it."""
    nouns = set(NOUNS) | {noun}
    out = []
    for i, w in enumerate(ws):
        attribute = next((a for a, vals in allowed.items() if a != "position" and w in vals),
                         None)
        if attribute and _owner(i, ws, nouns) == noun:
            out.append((attribute, w, bool(NEGATIONS & set(ws[:i]))))
    placed = _position_words(clause)
    if "position" in allowed and placed:
        last = max(i for i, w in enumerate(ws) if w in placed)
        if _owner(last, ws, nouns) == noun:
            out.append(("position", placed[-1], bool(NEGATIONS & set(ws[:last]))))
    return out


def _negated_background(rest: str, out: Stated) -> Stated:
    for clause in clauses(rest):
        ws = words(clause)
        if "background" in ws and NEGATIONS & set(ws):
            for w in ws:
                if w in BACKGROUNDS:
                    out.excluded.setdefault("color", set()).add(w)
    return out


def stated_relations(text: str, names: list[str]) -> list[tuple[str, str, str, bool]]:
    """(subject, predicate, object, negated) for "the circle is left of the square"."""
    heads = {head(n): n for n in names if n not in (BACKGROUND, STYLE_ENTITY)}
    nouns = set(NOUNS) | set(heads)
    out = []
    for clause in clauses(split_background(text)[0]):
        for match in RELATION_PHRASE.finditer(clause):
            before = [singular(w) for w in words(clause[:match.start()])]
            after = [singular(w) for w in words(clause[match.end():])]
            subj = heads.get(next((w for w in reversed(before) if w in nouns), ""))
            obj = heads.get(next((w for w in after if w in nouns), ""))
            if subj and obj and subj != obj:
                negated = bool(NEGATIONS & set(before))
                out.append((subj, match.group(1), obj, negated))
    return out


QUESTION_WORDS = {"color": "color", "colour": "color", "where": "position",
                  "position": "position", "placed": "position", "located": "position",
                  "size": "size", "big": "size", "large": "size", "small": "size",
                  "material": "material", "made": "material", "style": "style"}


def interpret_question(question: str, names: list[str]) -> tuple[str, str] | None:
    """(entity, attribute) a free-text question asks about, when the words say so."""
    ws = [singular(w) for w in words(question)]
    attribute = next((QUESTION_WORDS[w] for w in ws if w in QUESTION_WORDS), None)
    if "background" in ws and BACKGROUND in names:
        return BACKGROUND, "color"
    if attribute == "style" and STYLE_ENTITY in names:
        return STYLE_ENTITY, "style"
    entity = next((n for w in ws for n in names if head(n) == w and n != BACKGROUND), None)
    if entity is None or attribute is None:
        return None
    return entity, attribute
