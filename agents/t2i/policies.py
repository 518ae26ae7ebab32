"""Question policies: pure functions from (belief, history) to an action with its score and
the runner-up actions, plus the stopping rule (Hahn et al., 2025)."""

from __future__ import annotations

import random
from typing import Literal

from pydantic import BaseModel, ConfigDict
from tinmen.agents.t2i.belief import BeliefGraph, Slot
from tinmen.agents.t2i.scenes import BACKGROUND

PolicyName = Literal["attribute", "binary", "random", "belief-llm", "llm-only"]
POLICIES: tuple[str, ...] = ("attribute", "binary", "random", "belief-llm", "llm-only")
IMPORTANT = 0.5  # slots at least this important must be settled before stopping
SETTLED_LOW, SETTLED_HIGH = 0.1, 0.9


class Action(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["attribute", "binary", "free"]
    entity: str = ""
    attribute: str = ""
    candidate: str = ""
    question: str
    options: tuple[str, ...] = ()
    score: float = 0.0

    @property
    def label(self) -> str:
        suffix = f"={self.candidate}" if self.candidate else ""
        return f"{self.kind}:{self.entity}.{self.attribute}{suffix}" if self.entity else self.kind


class Choice(BaseModel):
    model_config = ConfigDict(frozen=True)
    action: Action
    runner_ups: tuple[Action, ...] = ()


def _subject(entity: str) -> str:
    return "the background" if entity == BACKGROUND else f"the {entity}"


def attribute_question(slot: Slot, score: float) -> Action:
    verb = "Where is" if slot.attribute == "position" else f"What {slot.attribute} is"
    return Action(kind="attribute", entity=slot.entity, attribute=slot.attribute,
                  question=f"{verb} {_subject(slot.entity)}?",
                  options=tuple(slot.candidates), score=score)


def open_slots(belief: BeliefGraph) -> list[Slot]:
    return [s for s in belief.slots if not s.pinned]


def _ranked(actions: list[Action]) -> Choice | None:
    if not actions:
        return None
    ordered = sorted(actions, key=lambda a: (-a.score, a.label))
    return Choice(action=ordered[0], runner_ups=tuple(ordered[1:4]))


def attribute_policy(belief: BeliefGraph, history: list[dict] | None = None) -> Choice | None:
    """Ask for the slot with the highest importance × entity probability × entropy."""
    actions = []
    for slot in open_slots(belief):
        entity = belief.entity(slot.entity)
        score = slot.importance * (entity.probability if entity else 1.0) * slot.entropy
        actions.append(attribute_question(slot, score))
    return _ranked(actions)


def binary_policy(belief: BeliefGraph, history: list[dict] | None = None) -> Choice | None:
    """Ask yes/no about one slot's most likely value; score ∝ importance × p(1 − p)."""
    actions = []
    for slot in open_slots(belief):
        value, p = slot.best
        entity = belief.entity(slot.entity)
        score = slot.importance * (entity.probability if entity else 1.0) * p * (1 - p)
        phrase = (f"on the {value}" if slot.attribute == "position" else value)
        actions.append(Action(kind="binary", entity=slot.entity, attribute=slot.attribute,
                              candidate=value, question=f"Is {_subject(slot.entity)} {phrase}?",
                              options=("yes", "no"), score=score))
    return _ranked(actions)


def random_policy(belief: BeliefGraph, history: list[dict] | None = None,
                  seed: int = 0) -> Choice | None:
    """Baseline: a uniformly random open slot (seeded by the turn)."""
    slots = open_slots(belief)
    if not slots:
        return None
    rng = random.Random(f"{seed}/{len(history or [])}")
    picked = rng.choice(sorted(slots, key=lambda s: s.key))
    return Choice(action=attribute_question(picked, 1.0 / len(slots)))


def should_stop(belief: BeliefGraph, turn: int, max_turns: int) -> tuple[bool, str]:
    """Stop when the budget is spent or every important candidate is settled."""
    if turn >= max_turns:
        return True, f"turn budget {max_turns} spent"
    unsettled = [s.key for s in belief.slots if s.importance >= IMPORTANT and any(
        SETTLED_LOW < p < SETTLED_HIGH for p in s.candidates.values())]
    if not unsettled:
        return True, "every important candidate is settled (p ≤ 0.1 or ≥ 0.9)"
    return False, f"{len(unsettled)} important slots unsettled"


def llm_question(models, role: str, belief: BeliefGraph, action: Action) -> Action:
    """Belief-LLM: the graph picks the slot, the LLM words the question."""
    gen = models.generate(role, [{"role": "user", "content":
                                  f"Image description: {belief.prompt}\nRewrite as one short "
                                  f"friendly question to the user.\nQuestion: {action.question}"}],
                          max_new_tokens=32, stop=("\n",))
    text = gen.text.strip() or action.question
    return action.model_copy(update={"question": text if text.endswith("?") else text + "?"})


def llm_only_question(models, role: str, prompt: str, history: list[dict]) -> Action:
    """LLM-only ablation: no graph; the LLM asks whatever it likes from prompt + history."""
    asked = "\n".join(f"Q: {h['question']} A: {h['answer']}" for h in history)
    gen = models.generate(role, [{"role": "user", "content":
                                  f"Image description: {prompt}\n{asked}\nAsk the user one "
                                  "short question about a missing visual detail."}],
                          max_new_tokens=32, stop=("\n",))
    return Action(kind="free", question=gen.text.strip() or "What else should the image show?")


def choose_action(policy: str, belief: BeliefGraph, history: list[dict],
                  seed: int = 0) -> Choice | None:
    """The graph-based slot choice for a policy name (LLM wording is applied after)."""
    if policy == "binary":
        return binary_policy(belief, history)
    if policy == "random":
        return random_policy(belief, history, seed)
    return attribute_policy(belief, history)
