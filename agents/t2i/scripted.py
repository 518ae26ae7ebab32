"""``scripted:t2i``: a deterministic stand-in for the parser, question writer and user.

It reads the same labelled prompts a real model gets (see :mod:`prompts`) and answers by
the rules in :mod:`rules`: a JSON proposal lists the vocabulary words of the description
with the values stated beside them; a score puts almost all mass on the options the
description supports and is uniform otherwise; a question names the first slot the
description leaves open; a user reply states what the description says. So the whole
pipeline runs with known outputs (``--model parser=scripted:t2i --model
questioner=scripted:t2i``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from tinmen.agents.t2i import prompts, rules
from tinmen.agents.t2i.facts import Fact, fact_sentence
from tinmen.agents.t2i.parsing import MAX_ATTRIBUTES, MAX_ENTITIES
from tinmen.agents.t2i.vocabulary import (
    BACKGROUND,
    INVERSE,
    OBJECTS,
    POSITIONS,
    SCENERY,
    SHAPES,
    VOCABULARY,
)
from tinmen.models.backends.scripted import prompt_text
from tinmen.models.protocols import GenerateParams, Prompt

SUPPORTED = 0.97  # mass on the options the text supports
NOUNS = SHAPES + OBJECTS + SCENERY


def _fields(prompt: Prompt) -> tuple[str, str, str]:
    text = prompt_text(prompt)
    return (text.splitlines()[0] if text else "", prompts.labelled(text, "Description") or "",
            prompts.labelled(text, "Question") or "")


def _subject(question: str, description: str) -> str | None:
    ws = [rules.singular(w) for w in rules.words(question)]
    if "background" in ws:
        return BACKGROUND
    return next((w for w in ws if w in NOUNS), None)


class T2IPolicy:
    # ------------------------------------------------------------------ generation
    def respond(self, prompt: Prompt, params: GenerateParams, seed: int) -> str:
        header, description, question = _fields(prompt)
        if params.json_schema is not None or header == prompts.PARSE_HEADER:
            return self.proposal(description)
        if header == prompts.QUESTION_HEADER:
            return self.wording(prompt_text(prompt))
        if header == prompts.FREE_HEADER:
            return self.free_question(prompt_text(prompt), description)
        if header == prompts.USER_HEADER:
            return self.reply(description, question)
        if header == prompts.AG3_HEADER:
            return self.ag3_question(prompt_text(prompt))
        if header == prompts.FREE_USER_HEADER:
            return self.free_reply(description, question)
        if header == prompts.SENTENCE_HEADER:
            return self.sentence(question, prompts.labelled(prompt_text(prompt), "Answer") or "")
        return "Which details matter most to you?"

    # ------------------------------------------------------------------ the paper's Ag3 + user
    def ag3_question(self, text: str) -> str:
        """A stand-in for the Ag3 question writer, proving the pipeline (not the paper): the
        first listed attribute whose top candidate is below 0.9, not yet asked."""
        asked = {line[len("Agent:"):].strip() for line in text.splitlines()
                 if line.startswith("Agent:")}
        for line in text.splitlines():
            if not line.startswith("- ") or line.startswith("- relation "):
                continue
            slot, _, rest = line[2:].partition(" (importance ")
            importance, _, values = rest.partition("): ")
            entity, _, attribute = slot.rpartition(".")
            top = max((float(v.rsplit(" ", 1)[1]) for v in values.split(", ") if v), default=1)
            q = (f"Where is {prompts.subject(entity)}?" if attribute == "position"
                 else f"What {attribute} is {prompts.subject(entity)}?")
            if float(importance) > 0 and top < 0.9 and q not in asked:
                return q
        return "Is there anything else the image should show?"

    def free_reply(self, description: str, question: str) -> str:
        """The free-text user: a sentence stating what the description says, "Yes." / "No."
        to a yes/no question it settles, else "I don't know."."""
        names = rules.vocabulary_entities(description) + [BACKGROUND]
        found = rules.interpret_question(question, names)
        if found is not None:
            value = rules.stated(description, found[0]).values.get(found[1])
            if value:
                said = fact_sentence(Fact(entity=found[0], attribute=found[1], value=value))
                return said[0].upper() + said[1:] + "."
        entity = _subject(question, description)
        if entity and question.split()[0].lower() in ("is", "are", "should", "does"):
            answer = self._yes_no(prompts.USER_HEADER, description, question, entity)
            if answer:
                return f"{next(iter(answer)).capitalize()}."
        return "I don't know."

    def sentence(self, question: str, answer: str) -> str:
        """The declarative sentence: the answer itself when it names an entity, else the
        answer said of the question's subject."""
        if any(rules.singular(w) in NOUNS or w == "background" for w in rules.words(answer)):
            return answer
        entity = _subject(question, "")
        return f"{prompts.subject(entity).capitalize()} is {answer}" if entity else answer

    def proposal(self, description: str) -> str:
        entities = []
        for name in rules.vocabulary_entities(description)[:MAX_ENTITIES]:
            values = list(rules.stated(description, name).values.items())[:MAX_ATTRIBUTES]
            entities.append({"name": name, "type": "explicit", "attributes": [
                {"name": a, "value": v} for a, v in values]})
        return json.dumps({"entities": entities}, separators=(",", ":"))

    def wording(self, text: str) -> str:
        entity, attribute = prompts.labelled(text, "entity"), prompts.labelled(text, "attribute")
        options = prompts.labelled(text, "candidates") or ""
        if attribute == "present":
            return f"Should the image include a {entity}?"
        return f"Which {attribute} would you like for {prompts.subject(entity or '')} " \
               f"({options})?"

    def free_question(self, text: str, description: str) -> str:
        asked = {line[len("Asked:"):].strip() for line in text.splitlines()
                 if line.startswith("Asked:")}
        for name in rules.vocabulary_entities(description) + [BACKGROUND]:
            said = rules.stated(description, name).values
            for attribute in ("color", "position", "size"):
                if name == BACKGROUND and attribute != "color":
                    continue
                q = (f"Where is {prompts.subject(name)}?" if attribute == "position"
                     else f"What {attribute} is {prompts.subject(name)}?")
                if attribute not in said and q not in asked:
                    return q
        return "Is there anything else the image should show?"

    def reply(self, description: str, question: str) -> str:
        names = rules.vocabulary_entities(description) + [BACKGROUND]
        found = rules.interpret_question(question, names)
        if found is None:
            return "not specified"
        return rules.stated(description, found[0]).values.get(found[1], "not specified")

    # ------------------------------------------------------------------ scoring
    def score(self, prompt: Prompt, options: Sequence[str]) -> list[float]:
        header, description, question = _fields(prompt)
        wanted = [o.strip().lower() for o in options]
        supported = self.supported(header, description, question, wanted)
        if not supported:
            return [-math.log(len(options))] * len(options)
        rest = len(options) - len(supported)
        miss = math.log((1 - SUPPORTED) / rest) if rest else -math.inf
        return [math.log(SUPPORTED / len(supported)) if o in supported else miss
                for o in wanted]

    def supported(self, header: str, description: str, question: str,
                  options: list[str]) -> set[str]:
        """The options the description backs for the question's subject."""
        entity = _subject(question, description)
        if entity is None:
            return set()
        if set(options) == {"yes", "no"}:
            return self._yes_no(header, description, question, entity)
        other = next((w for w in rules.words(question.split(" relative to ")[-1])
                      if w in NOUNS and w != entity), None) if "relative to" in question \
            else None
        if other:
            return {self._relation(description, entity, other)} & set(options)
        return set(rules.stated(description, entity).values.values()) & set(options)

    def _yes_no(self, header: str, description: str, question: str, entity: str) -> set[str]:
        said = rules.stated(description, entity)
        if question.lower().startswith("is there"):
            if said.present is not None:
                return {"yes" if said.present else "no"}
            mentioned = entity in rules.vocabulary_entities(description)
            return {"yes"} if mentioned else ({"no"} if header == prompts.USER_HEADER else set())
        asked = set(rules.words(question)) - set(rules.words(entity))
        other = next((w for w in rules.words(question) if w in NOUNS and w != entity), None)
        if other:
            relation = self._relation(description, entity, other)
            return {"yes" if relation and relation in question else "no"} if relation \
                else set()
        for attribute, value in said.values.items():
            mentioned = asked & (set(VOCABULARY.get(attribute, ())) | {value})
            if mentioned:
                return {"yes" if value in mentioned else "no"}
        return set()

    def _relation(self, description: str, a: str, b: str) -> str:
        for subj, pred, obj, negated in rules.stated_relations(description, [a, b]):
            if not negated and {subj, obj} == {a, b}:
                return pred if subj == a else INVERSE.get(pred, pred)
        pa = rules.stated(description, a).values.get("position")
        pb = rules.stated(description, b).values.get("position")
        if pa in POSITIONS and pb in POSITIONS and pa != pb:
            return "left of" if POSITIONS.index(pa) < POSITIONS.index(pb) else "right of"
        return ""



class T2IBrokenPolicy:
    """A model gone wrong, for testing the parser's guards: its JSON is cut off mid-object
    and it gives every option zero probability (log-prob −inf), so no distribution can be
    formed. Bind it as ``scripted:tinmen.agents.t2i.scripted:T2IBrokenPolicy``."""

    def respond(self, prompt: Prompt, params: GenerateParams, seed: int) -> str:
        return '{"entities":[{"name":"A","type":"explicit","attributes":[{"name":"color"'

    def score(self, prompt: Prompt, options: Sequence[str]) -> list[float]:
        return [-math.inf] * len(options)
