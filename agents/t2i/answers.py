"""Free-text answers back into facts: the paper's transition, made checkable.

The reference agent turns each (question, answer) into one declarative sentence with its
LLM, merges it into the prompt and re-parses. A 135M model cannot be trusted to do that
alone (DESIGN.md), so :func:`read_answer` reads the user's own words first and uses the
model's sentence only where they are not enough:

1. the parser role writes the declarative sentence (a recorded ``generate`` call, as in the
   reference);
2. a yes/no answer to a yes/no question is read as one;
3. the answer is *grounded* — a clause that does not name the asked entity is read as being
   about it ("What color is the circle?" / "Red." → "the circle is red") — and read by the
   same rules that read prompts (values stated beside their entity, negations, relations,
   new entities); a hedged clause ("the probability of it being red is 1/4", "maybe
   red") states nothing;
4. facts in the model's sentence are added for slots the answer's own reading left open,
   but only when their values are words of the answer: the model may attach a value the
   user said to an entity, never invent one;
5. a question about a known slot whose answer yields nothing for that slot ("I don't
   know") becomes "no preference" for it, so it is not asked again (the reference pins
   every asked slot to the answer it got).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from tinmen.agents.t2i import prompts, rules
from tinmen.agents.t2i.belief import BeliefGraph
from tinmen.agents.t2i.facts import PRESENT, RELATION, UNSPECIFIED, Fact
from tinmen.agents.t2i.policies import Action
from tinmen.agents.t2i.users import resolve_free
from tinmen.agents.t2i.vocabulary import BACKGROUND

YES = frozenset({"yes", "yeah", "yep", "sure", "correct"})  # not "right": a position
# a clause with one of these states no value ("the probability of it being red is 1/4")
HEDGES = frozenset({"probability", "chance", "likely", "unlikely", "maybe", "perhaps",
                    "might", "could", "possibly", "either", "if"})
NO = frozenset({"no", "nope", "not"})
SENTENCE_TOKENS = 32


class AnswerReading(BaseModel):
    """What one free-text answer established, and how (recorded as a belief)."""

    model_config = ConfigDict(frozen=True)
    facts: list[Fact] = Field(default_factory=list)
    sentence: str = ""  # the parser's declarative sentence
    target: str = ""  # the slot the question was about, when one could be named
    from_sentence: list[str] = Field(default_factory=list)  # slots only the sentence gave


def read_answer(models: Any, role: str, belief: BeliefGraph, action: Action,
                text: str) -> AnswerReading:
    """The facts a free-text ``text`` answering ``action`` states (see the module doc)."""
    target = resolve_free(action, [e.name for e in belief.entities])
    gen = models.generate(role, prompts.sentence_prompt(action.question, text),
                          max_new_tokens=SENTENCE_TOKENS, stop=("\n",))
    sentence = " ".join(gen.text.split())
    facts = _yes_no(target, text)
    own = read_facts(ground(assertions(text), target), belief)
    positive = {f.key for f in own if not f.negated}
    facts = [f for f in facts if not (f.negated and f.key in positive)] + own
    known = {f.key for f in facts}
    said = set(rules.words(text))
    extra = [f for f in read_facts(assertions(sentence), belief) if f.key not in known
             and _backed(f, said)]
    facts += extra
    slot = _slot_fact(target)
    if slot is not None and slot.key not in {f.key for f in facts}:
        facts.append(slot)
    return AnswerReading(facts=_unique(facts), sentence=sentence,
                         target=target.target if target.kind != "free" else "",
                         from_sentence=[f"{f.key[0]}.{f.key[1]}" for f in extra])


def assertions(text: str) -> str:
    """The clauses of ``text`` that assert something (hedged ones are dropped)."""
    return ", ".join(c for c in rules.clauses(text) if not HEDGES & set(rules.words(c)))


def ground(text: str, action: Action) -> str:
    """The answer with each clause that does not name the asked entity read as about it."""
    if action.kind == "free" or not action.entity:
        return text
    out = []
    for clause in rules.clauses(text):
        ws = [rules.singular(w) for w in rules.words(clause)]
        if action.entity == BACKGROUND:
            out.append(clause if "background" in ws else f"{clause} background")
        elif rules.head(action.entity) in ws:
            out.append(clause)
        else:
            out.append(f"the {rules.head(action.entity)} is {clause}")
    return ", ".join(out)


def read_facts(text: str, belief: BeliefGraph) -> list[Fact]:
    """Every fact ``text`` states by rule about the belief's entities (and entities of the
    vocabulary it newly names)."""
    names = [e.name for e in belief.entities]
    names += [n for n in rules.vocabulary_entities(text) if n not in names]
    facts: list[Fact] = []
    for name in names:
        said = rules.stated(text, name)
        entity = belief.entity(name)
        if said.present is False:
            facts.append(Fact(entity=name, attribute=PRESENT, value="no"))
            continue
        if said.present and (entity is None or entity.probability < 1):
            facts.append(Fact(entity=name, attribute=PRESENT, value="yes"))
        facts += [Fact(entity=name, attribute=a, value=v) for a, v in said.values.items()]
        facts += [Fact(entity=name, attribute=a, value=v, negated=True)
                  for a, values in said.excluded.items() for v in sorted(values)
                  if a not in said.values]
    facts += [Fact(entity=s, attribute=RELATION, value=p, related=o, negated=n)
              for s, p, o, n in rules.stated_relations(text, names)]
    return facts


def _yes_no(action: Action, text: str) -> list[Fact]:
    """A yes/no question answered yes or no (by its first word)."""
    first = next(iter(rules.words(text)), "")
    asks = action.kind == "binary" or action.attribute == PRESENT
    if not asks or first not in YES | NO:
        return []
    yes = first in YES
    base = {"entity": action.entity, "attribute": action.attribute,
            "related": action.related}
    if action.attribute == PRESENT:
        return [Fact(**base, value="yes" if yes else "no")]
    return [Fact(**base, value=action.candidate, negated=not yes)]


def _slot_fact(action: Action) -> Fact | None:
    """"No preference" for the slot a question named (None for an unnamed one)."""
    if action.kind == "free" or not action.entity or not action.attribute:
        return None
    return Fact(entity=action.entity, attribute=action.attribute, related=action.related,
                value=UNSPECIFIED)


def _backed(fact: Fact, said: set[str]) -> bool:
    """The user's answer contains the fact's words (its value, or for presence the name)."""
    needed = rules.words(rules.head(fact.entity) if fact.attribute == PRESENT else fact.value)
    return bool(needed) and set(needed) <= said


def _unique(facts: list[Fact]) -> list[Fact]:
    seen, out = set(), []
    for f in facts:
        if f not in seen:
            seen.add(f)
            out.append(f)
    return out
