"""Simulated users. Each answers an :class:`Action` with an :class:`Answer`; they are
logged under the ``user`` role so user errors and agent errors can be told apart."""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict
from tinmen.agents.t2i.belief import BeliefGraph
from tinmen.agents.t2i.policies import Action
from tinmen.agents.t2i.scenes import Scene

UNSPECIFIED = "unspecified"


class Answer(BaseModel):
    model_config = ConfigDict(frozen=True)
    text: str
    value: str  # the option chosen, "yes"/"no", or UNSPECIFIED
    source: str


class OracleUser:
    """Answers exactly from the ground-truth scene."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene

    def answer(self, action: Action) -> Answer:
        entity = self.scene.entity(action.entity)
        truth = entity.attributes.get(action.attribute) if entity else None
        if truth is None:
            return Answer(text="I don't mind.", value=UNSPECIFIED, source="oracle")
        if action.kind == "binary":
            value = "yes" if truth == action.candidate else "no"
            return Answer(text=value, value=value, source="oracle")
        return Answer(text=truth, value=truth, source="oracle")


class StochasticUser:
    """Samples answers from a belief (e.g. a population prior), seeded."""

    def __init__(self, belief: BeliefGraph, seed: int = 0) -> None:
        self.belief, self.rng = belief, random.Random(seed)

    def answer(self, action: Action) -> Answer:
        slot = self.belief.slot(action.entity, action.attribute)
        if slot is None:
            return Answer(text="I don't mind.", value=UNSPECIFIED, source="stochastic")
        values, weights = zip(*slot.candidates.items())
        value = self.rng.choices(values, weights=weights)[0]
        if action.kind == "binary":
            value = "yes" if value == action.candidate else "no"
        return Answer(text=value, value=value, source="stochastic")


class LLMUser:
    """An LLM holding the long description answers by scoring the allowed options."""

    def __init__(self, models, role: str, description: str) -> None:
        self.models, self.role, self.description = models, role, description

    def answer(self, action: Action) -> Answer:
        prompt = [{"role": "user", "content": f"You want this image: {self.description}\n"
                   f"What is your answer to: {action.question} Answer with one word."}]
        if not action.options:
            gen = self.models.generate(self.role, prompt, max_new_tokens=24, stop=("\n",))
            return Answer(text=gen.text.strip(), value=UNSPECIFIED, source="llm")
        choice = self.models.choose(self.role, prompt, [f" {o}" for o in action.options])
        value = choice.best.strip()
        return Answer(text=value, value=value, source="llm")
