"""Simulated users. Each answers an :class:`Action` with an :class:`Answer`; graphs log them
under the ``user`` role so user errors and agent errors can be told apart.

* :class:`OracleUser` answers exactly from the ground-truth scene;
* :class:`LLMUser`: a model holding the long description picks among the offered options
  (by scoring them);
* :class:`FreeTextLLMUser` is the paper's simulated user: a model holding the long
  description answers any question in free text (the agent parses the answer back);
* :class:`StochasticUser` samples answers from a belief (seeded).
"""

from __future__ import annotations

import random
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict
from tinmen.agents.t2i import prompts, rules
from tinmen.agents.t2i.belief import BeliefGraph
from tinmen.agents.t2i.facts import PRESENT, RELATION, UNSPECIFIED
from tinmen.agents.t2i.policies import Action, Target, targets
from tinmen.agents.t2i.scenes import Scene
from tinmen.agents.t2i.vocabulary import POSITIONS, VOCABULARY

NO_PREFERENCE = "I have no preference."


class Answer(BaseModel):
    model_config = ConfigDict(frozen=True)
    text: str
    value: str  # an option, "yes"/"no", a free value, or UNSPECIFIED
    source: str  # "oracle", "llm", "stochastic" or "human"


class User(Protocol):
    def answer(self, action: Action) -> Answer: ...


def resolve_free(action: Action, names: list[str]) -> Action:
    """A free-text question mapped onto the slot its words name (or left as it is)."""
    if action.kind != "free":
        return action
    found = rules.interpret_question(action.question, names)
    if found is None:
        return action
    entity, attribute = found
    return action.model_copy(update={"kind": "attribute", "entity": entity,
                                     "attribute": attribute, "target": f"{entity}.{attribute}"})


def _reply(action: Action, truth: str | None, source: str) -> Answer:
    if truth is None:
        return Answer(text=NO_PREFERENCE, value=UNSPECIFIED, source=source)
    if action.kind == "binary":
        value = "yes" if truth == (action.candidate or "yes") else "no"
        return Answer(text=value, value=value, source=source)
    return Answer(text=truth, value=truth, source=source)


class OracleUser:
    """Answers exactly from the ground-truth scene; "unspecified" where it says nothing."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene

    def truth(self, action: Action) -> str | None:
        if action.attribute == PRESENT:
            return "yes" if self.scene.entity(action.entity) else "no"
        if action.attribute == RELATION:
            return self.scene.relation(action.entity, action.related) or self._by_position(
                action.entity, action.related)
        return self.scene.value(action.entity, action.attribute)

    def _by_position(self, a: str, b: str) -> str | None:
        pa, pb = self.scene.value(a, "position"), self.scene.value(b, "position")
        if pa not in POSITIONS or pb not in POSITIONS or pa == pb:
            return None
        return "left of" if POSITIONS.index(pa) < POSITIONS.index(pb) else "right of"

    def answer(self, action: Action) -> Answer:
        action = resolve_free(action, [e.name for e in self.scene.entities])
        if action.kind == "free":
            return _reply(action, None, "oracle")
        return _reply(action, self.truth(action), "oracle")


class LLMUser:
    """A model holding the long description answers, by scoring the allowed options (or in
    free text when there are none). A flat score means it cannot tell: "unspecified"."""

    def __init__(self, models: Any, role: str, description: str,
                 min_lift: float = 1.5) -> None:
        self.models, self.role, self.description = models, role, description
        self.min_lift = min_lift  # top option must beat uniform by this factor

    def answer(self, action: Action) -> Answer:
        prompt = prompts.user_prompt(self.description, action.question)
        if not action.options:
            gen = self.models.generate(self.role, prompt, max_new_tokens=24, stop=("\n",))
            text = " ".join(gen.text.split())
            value = next((w for w in rules.words(text) if any(w in v for v in
                                                               VOCABULARY.values())), None)
            return Answer(text=text or NO_PREFERENCE, value=value or text or UNSPECIFIED,
                          source="llm")
        choice = self.models.choose(self.role, prompt, [f" {o}" for o in action.options])
        if choice.top1 < min(0.9, self.min_lift / len(action.options)):
            return Answer(text=NO_PREFERENCE, value=UNSPECIFIED, source="llm")
        value = choice.best.strip()
        return Answer(text=value, value=value, source="llm")


class FreeTextLLMUser:
    """The paper's simulated user (``simulated_belief_user_prompt``): a model holding the
    detailed description answers whatever it is asked, in free text. Its answer's ``value``
    is the text itself: the agent reads it back into facts (:mod:`answers`)."""

    source = "llm-free"

    def __init__(self, models: Any, role: str, description: str,
                 max_new_tokens: int = 32) -> None:
        self.models, self.role, self.description = models, role, description
        self.max_new_tokens = max_new_tokens

    def answer(self, action: Action) -> Answer:
        gen = self.models.generate(self.role, prompts.free_user_prompt(
            self.description, action.question), max_new_tokens=self.max_new_tokens,
            stop=("\n",))
        text = " ".join(gen.text.split()) or NO_PREFERENCE
        return Answer(text=text, value=text, source=self.source)


class StochasticUser:
    """Samples each answer from a belief (e.g. a population prior), seeded."""

    def __init__(self, belief: BeliefGraph, seed: int = 0) -> None:
        self.belief, self.rng = belief, random.Random(seed)

    def _target(self, action: Action) -> Target | None:
        return next((t for t in targets(self.belief) if t.key == action.target
                     or (t.entity, t.attribute) == (action.entity, action.attribute)), None)

    def answer(self, action: Action) -> Answer:
        action = resolve_free(action, [e.name for e in self.belief.entities])
        target = self._target(action) if action.kind != "free" else None
        if target is None:
            slot = self.belief.slot(action.entity, action.attribute)
            truth = slot.best[0] if slot else None  # a settled slot: its value
            return _reply(action, truth, "stochastic")
        values, weights = zip(*target.candidates.items())
        return _reply(action, self.rng.choices(values, weights=weights)[0], "stochastic")
