"""Question policies: pure functions from (belief, history) to an :class:`Action` carrying
its score and the runner-up actions, plus the stopping rule (Hahn et al., 2025).

* attribute — ask for the slot with the highest importance × P(entity) × entropy;
* binary — yes/no on one candidate, score importance × p(1 − p);
* random / random-binary — the baselines: a seeded random open slot, asked the same way;
* belief-llm-template (alias belief-llm) — the graph picks the slot, an LLM only rewords
  the template question;
* ag3 — the paper's belief-based LLM agent ("Ag3"): the LLM reads the belief graph and the
  dialogue and writes the question itself (any slot, any form); the question sets no target,
  so its effect on the belief comes only from parsing the user's answer;
* llm-only — the paper's ablation: no graph, the LLM asks from the prompt and history.

Two stopping rules: ``settled`` (every important candidate at p ≤ 0.1 or ≥ 0.9) and
``reference`` (the reference code's ``AttributeAgent.select_action``: stop when every
attribute's and relation's top candidate is ≥ 0.7).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from tinmen.agents.t2i import prompts, rules
from tinmen.agents.t2i.belief import BeliefGraph, entropy
from tinmen.agents.t2i.facts import PRESENT, RELATION
from tinmen.agents.t2i.vocabulary import STYLE_ENTITY

from tinmen.errors import ConfigError

PolicyName = Literal["attribute", "binary", "random", "random-binary",
                     "belief-llm-template", "belief-llm", "ag3", "llm-only"]
POLICIES: tuple[str, ...] = ("attribute", "binary", "random", "random-binary",
                             "belief-llm-template", "ag3", "llm-only")
ALIASES = {"belief-llm": "belief-llm-template"}  # the name stored sessions and tests use
LLM_POLICIES = ("belief-llm-template", "ag3", "llm-only")
StopRule = Literal["settled", "reference"]
STOP_RULES: tuple[str, ...] = ("settled", "reference")
IMPORTANT = 0.2  # slots at least this important must be settled before stopping
SETTLED_LOW, SETTLED_HIGH = 0.1, 0.9
REFERENCE_TOP = 0.7  # the reference code's minmax_score_thre
FALLBACK_QUESTION = "What else should the image show?"
RUNNER_UPS = 3
RELATION_DISCOUNT = 0.5  # the paper halves yes/no scores on relations
History = list[dict[str, Any]]


class Target(BaseModel):
    """One uncertain quantity a question can settle."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["attribute", "entity", "relation"]
    entity: str
    attribute: str
    related: str = ""
    candidates: dict[str, float]
    weight: float

    @property
    def key(self) -> str:
        if self.kind == "relation":
            return f"{self.entity}|{self.related}"
        return f"{self.entity}.{self.attribute}"


class Action(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["attribute", "binary", "entity", "relation", "free"]
    question: str
    target: str = ""  # "circle.color", "cloud.present", "cat|sofa"; "" for free questions
    entity: str = ""
    attribute: str = ""  # PRESENT for presence, RELATION for relations
    related: str = ""  # a relation's object
    candidate: str = ""  # the value a yes/no question asks about
    options: tuple[str, ...] = ()
    score: float = 0.0
    runner_ups: tuple[Action, ...] = ()

    @property
    def label(self) -> str:
        suffix = f"={self.candidate}" if self.candidate else ""
        return f"{self.kind}:{self.target}{suffix}" if self.target else self.kind


class Choice(BaseModel):
    """An action and its runner-ups (what graph nodes log as a decision)."""

    model_config = ConfigDict(frozen=True)
    action: Action
    runner_ups: tuple[Action, ...] = ()


Policy = Callable[[BeliefGraph, History], Action | None]


# --------------------------------------------------------------------------- targets
def targets(belief: BeliefGraph, settled: bool = False) -> list[Target]:
    """Every open quantity in graph order (presence, attributes, relations); with
    ``settled``, pinned ones too (what a policy blind to the belief would pick from)."""
    out = []
    for e in belief.entities:
        if e.probability <= 0:
            continue
        if e.kind != "explicit" and (settled or (0 < e.probability < 1 and not e.pinned)):
            out.append(Target(kind="entity", entity=e.name, attribute=PRESENT,
                              candidates={"yes": e.probability, "no": 1 - e.probability},
                              weight=e.importance))
        out += [Target(kind="attribute", entity=e.name, attribute=a.name,
                       candidates=a.candidates,
                       weight=e.importance * a.importance * e.probability)
                for a in e.attributes if settled or not a.pinned]
    out += [Target(kind="relation", entity=r.subject, attribute=RELATION, related=r.object,
                   candidates=r.candidates, weight=r.importance)
            for r in belief.relations if settled or not r.pinned]
    return out


def _open_question(t: Target, score: float) -> Action:
    subject = prompts.subject(t.entity)
    if t.kind == "entity":
        text, options = f"Is there a {t.entity} in the image?", ("yes", "no")
    elif t.kind == "relation":
        text, options = f"Where is the {t.entity} relative to the {t.related}?", tuple(
            t.candidates)
    else:
        text = f"Where is {subject}?" if t.attribute == "position" else \
            f"What {t.attribute} is {subject}?"
        options = tuple(t.candidates)
    return Action(kind=t.kind, question=text, target=t.key, entity=t.entity,
                  attribute=t.attribute, related=t.related, options=options, score=score)


def _yes_no_question(t: Target, value: str, score: float) -> Action:
    subject = prompts.subject(t.entity)
    if t.kind == "entity":
        text = f"Is there a {t.entity} in the image?"
    elif t.kind == "relation":
        text = f"Is the {t.entity} {value} the {t.related}?"
    elif t.attribute == "position":
        text = f"Is {subject} " + ("in the center?" if value == "center" else f"on the {value}?")
    elif t.attribute == "style":
        text = f"Should the image be a {value}?"
    else:
        text = f"Is {subject} {value}?"
    return Action(kind="binary", question=text, target=t.key, entity=t.entity,
                  attribute=t.attribute, related=t.related, candidate=value,
                  options=("yes", "no"), score=score)


def _ranked(actions: list[Action]) -> Action | None:
    """Best first; ties go to the earlier item in graph order (sorted() is stable)."""
    if not actions:
        return None
    ordered = sorted(actions, key=lambda a: -round(a.score, 12))  # float noise is a tie
    return ordered[0].model_copy(update={"runner_ups": tuple(ordered[1:1 + RUNNER_UPS])})


# --------------------------------------------------------------------------- policies
def attribute_policy(belief: BeliefGraph, history: History | None = None) -> Action | None:
    """Ask for the quantity with the highest importance × P(entity) × entropy."""
    actions = [_open_question(t, t.weight * entropy(t.candidates.values()))
               for t in targets(belief)]
    return _ranked([a for a in actions if a.score > 0])


def binary_policy(belief: BeliefGraph, history: History | None = None) -> Action | None:
    """Ask yes/no about one candidate; score importance × p(1 − p)."""
    actions = []
    for t in targets(belief):
        discount = RELATION_DISCOUNT if t.kind == "relation" else 1.0
        values = ["yes"] if t.kind == "entity" else list(t.candidates)
        actions += [_yes_no_question(t, v, t.weight * discount * t.candidates[v] *
                                     (1 - t.candidates[v]))
                    for v in values if 0 < t.candidates[v] < 1]
    return _ranked([a for a in actions if a.score > 0])


def random_policy(belief: BeliefGraph, history: History | None = None, seed: int = 0,
                  question: Literal["attribute", "binary"] = "attribute",
                  informed: bool = False) -> Action | None:
    """Baseline: a random slot (seeded by the turn), asked like ``question``.

    It ignores the belief's probabilities — any slot not yet asked, settled or not — which
    is what the comparison measures; ``informed`` restricts it to open slots.
    """
    rng = random.Random(f"{seed}/{len(history or [])}")
    asked = {(h["action"].get("target"), h["action"].get("candidate", ""))
             for h in history or [] if isinstance(h.get("action"), dict)}
    pool = [t for t in targets(belief, settled=not informed) if t.weight > 0]
    if question == "attribute":
        pool = [t for t in pool if (t.key, "") not in asked and
                (not informed or entropy(t.candidates.values()) > 0)]
        return _open_question(rng.choice(pool), 1.0 / len(pool)) if pool else None
    pairs = [(t, v) for t in pool for v in (["yes"] if t.kind == "entity" else t.candidates)
             if (t.key, v) not in asked and (not informed or 0 < t.candidates[v] < 1)]
    if not pairs:
        return None
    t, value = rng.choice(pairs)
    return _yes_no_question(t, value, 1.0 / len(pairs))


def canonical(policy: str) -> str:
    """A policy's own name (``belief-llm`` is the old name of ``belief-llm-template``)."""
    return ALIASES.get(policy, policy)


def should_stop(belief: BeliefGraph, turn: int, max_turns: int,
                important: float = IMPORTANT, rule: str = "settled") -> tuple[bool, str]:
    """Stop when the budget is spent, or by ``rule``: ``settled`` — every important
    candidate has p ≤ 0.1 or ≥ 0.9; ``reference`` — every attribute's (and relation's) top
    candidate is ≥ 0.7 (:func:`reference_stop`)."""
    if turn >= max_turns:
        return True, f"turn budget {max_turns} spent"
    if rule == "reference":
        return reference_stop(belief)
    if rule != "settled":
        raise ConfigError(f"unknown stop rule '{rule}'; choose one of {', '.join(STOP_RULES)}")
    unsettled = [t.key for t in targets(belief)
                 if t.weight >= important and (t.kind != "attribute" or _likely(belief, t))
                 and not settled(t.candidates)]
    if not unsettled:
        return True, "every important candidate is settled (p ≤ 0.1 or ≥ 0.9)"
    return False, f"{len(unsettled)} important slots unsettled: {', '.join(unsettled[:3])}"


def reference_stop(belief: BeliefGraph, top: float = REFERENCE_TOP) -> tuple[bool, str]:
    """The reference rule (``AttributeAgent.select_action`` with self-termination): the
    smallest top-candidate probability over every attribute and relation ("minmax score")
    must reach ``top``. It ignores importance, as the reference does. Two adaptations to
    this port: attributes of an entity the belief holds absent (p ≤ 0.1) do not count, and
    neither does a slot the user answered "no preference" to (importance 0) — the reference
    pins every answered slot to the answer, so an answered slot never blocks its stop."""
    tops = {s.key: s.best[1] for s in belief.slots
            if s.importance > 0 and _present(belief, s.entity)}
    tops.update({r.key: r.best[1] for r in belief.relations if r.importance > 0})
    low = sorted((p, k) for k, p in tops.items() if p < top - 1e-12)
    if not low:
        return True, f"every attribute's top candidate is ≥ {top:g}"
    shown = ", ".join(k for _, k in low[:3])
    return False, f"{len(low)} slots with top candidate < {top:g}: {shown}"


def _present(belief: BeliefGraph, entity: str) -> bool:
    e = belief.entity(entity)
    return e is not None and e.probability > SETTLED_LOW


def settled(candidates: dict[str, float]) -> bool:
    """Every candidate at p ≤ 0.1 or ≥ 0.9 — and one of them at ≥ 0.9: read literally, the
    paper's rule would call a uniform distribution over ten or more values settled."""
    return max(candidates.values()) >= SETTLED_HIGH and all(
        p <= SETTLED_LOW or p >= SETTLED_HIGH for p in candidates.values())


def _likely(belief: BeliefGraph, t: Target) -> bool:
    e = belief.entity(t.entity)
    return e is not None and e.probability > SETTLED_LOW


# --------------------------------------------------------------------------- LLM policies
def llm_question(models: Any, role: str, belief: BeliefGraph, action: Action) -> Action:
    """Belief-LLM: the graph picked the slot; the LLM only words the question."""
    entity = belief.entity(action.entity)
    ranked = sorted(action.options, key=lambda o: -_option_p(belief, action, o))
    gen = models.generate(role, prompts.question_prompt(
        belief.prompt, action.entity, action.attribute, entity.kind if entity else "relation",
        list(ranked), action.question), max_new_tokens=40, stop=("\n",))
    text = as_question(gen.text)
    if text is None or not _names_target(text, action):
        return action  # a statement, or a question about something else: keep the draft
    return action.model_copy(update={"question": text})


def _names_target(question: str, action: Action) -> bool:
    said = set(rules.words(question))
    ends = [action.entity] + ([action.related] if action.related else [])
    return all(rules.head(e) in said or (e == STYLE_ENTITY and "image" in said)
               for e in ends)


INTERROGATIVES = frozenset("what which where how is are do does should would could can will "
                           "who when".split())


def as_question(text: str, limit: int = 200) -> str | None:
    """The first question in ``text``, or None when it holds none (a small model may write
    a statement instead; the caller then keeps its own wording)."""
    text = " ".join(text.split())
    if "?" not in text:
        return None
    question = text[:text.index("?") + 1]
    start = max(question.rfind(". "), question.rfind("! ")) + 1
    question = question[start:].strip()
    first = question.split()[0].lower().strip("\"'") if question.split() else ""
    return question if first in INTERROGATIVES and len(question) <= limit else None


def _option_p(belief: BeliefGraph, action: Action, option: str) -> float:
    slot = belief.slot(action.entity, action.attribute)
    return slot.candidates.get(option, 0.0) if slot else 0.0


def llm_only_question(models: Any, role: str, prompt: str, history: History) -> Action:
    """LLM-only ablation: no graph; the LLM asks whatever it likes from prompt + history."""
    gen = models.generate(role, prompts.free_question_prompt(prompt, history),
                          max_new_tokens=40, stop=("\n",))
    return Action(kind="free", question=as_question(gen.text) or
                  "What else should the image show?")


def ag3_question(models: Any, role: str, belief: BeliefGraph, prompt: str,
                 history: History) -> Action:
    """Ag3, the paper's belief-based LLM agent: the LLM reads the belief graph (entities,
    importances, every candidate's probability) and the dialogue so far and writes the
    question itself. The action names no slot: what the question settles is decided only by
    parsing the user's answer. A reply holding no question becomes a generic one."""
    gen = models.generate(role, prompts.ag3_prompt(prompt, prompts.belief_text(belief),
                                                   history), max_new_tokens=40, stop=("\n",))
    return Action(kind="free", question=as_question(gen.text) or FALLBACK_QUESTION)


def make_policy(name: str, models: Any = None, role: str = "questioner",
                seed: int = 0) -> Policy:
    """A ``(belief, history) -> Action`` function for a policy name."""
    name = canonical(name)
    if name in LLM_POLICIES and models is None:
        raise ConfigError(f"policy '{name}' needs models with a '{role}' role")
    if name == "binary":
        return binary_policy
    if name in ("random", "random-binary"):
        form = "binary" if name == "random-binary" else "attribute"
        return lambda b, h: random_policy(b, h, seed=seed, question=form)
    if name == "belief-llm-template":
        def worded(b: BeliefGraph, h: History) -> Action | None:
            action = attribute_policy(b, h)
            return llm_question(models, role, b, action) if action else None
        return worded
    if name == "ag3":
        def written(b: BeliefGraph, h: History) -> Action | None:
            if attribute_policy(b, h) is None:
                return None  # nothing open: the graph would stop here too
            return ag3_question(models, role, b, b.prompt, h)
        return written
    if name == "llm-only":
        return lambda b, h: llm_only_question(models, role, b.prompt, h)
    if name != "attribute":
        raise ConfigError(f"unknown policy '{name}'; choose one of {', '.join(POLICIES)}")
    return attribute_policy


def choose_action(policy: str, belief: BeliefGraph, history: History,
                  seed: int = 0) -> Choice | None:
    """The graph-based choice for a policy name (LLM wording is applied after)."""
    policy = canonical(policy)
    if policy in ("binary", "random", "random-binary"):
        action = make_policy(policy, seed=seed)(belief, history)
    else:
        action = attribute_policy(belief, history)
    if action is None:
        return None
    return Choice(action=action.model_copy(update={"runner_ups": ()}),
                  runner_ups=action.runner_ups)
