"""How well a belief matches the ground truth.

* :func:`belief_nll` — the paper's metric (``belief_metrics.negative_log_likelihood``): the
  importance-weighted negative log-likelihood of the true scene under the belief; each
  entity's presence, each attribute value and each relation, floored at 1e-10. Our scenes
  carry no importance scores, so the vocabulary's fixed table weights them (the paper parses
  the ground truth with the same parser that scores the belief).
* :func:`argmax_fact_coverage` — the headline: the share of the true scene's atomic facts
  that hold in the belief's argmax scene (every slot filled with its most probable value);
* :func:`fact_coverage` — the strict version: only values with p > 0.5 enter the scene, so
  turn 0 earns credit only for what the prompt states. Both optionally match synonyms (e.g.
  by embedding similarity).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from tinmen.agents.t2i.belief import BeliefGraph
from tinmen.agents.t2i.scenes import Fact, Scene
from tinmen.agents.t2i.vocabulary import (
    ATTRIBUTE_IMPORTANCE,
    BACKGROUND,
    ENTITY_IMPORTANCE,
    INVERSE,
    POSITIONS,
    RELATION_IMPORTANCE,
)

FLOOR = 1e-10  # the paper's floor: an impossible truth costs 23 nats, not infinity
Matcher = Callable[[str, str], bool]


def belief_nll(belief: BeliefGraph, scene: Scene, use_importance: bool = True) -> float:
    """Importance-weighted NLL of the true scene (presence, attributes, relations)."""
    def cost(p: float, weight: float) -> float:
        return -math.log(max(p, FLOOR)) * (weight if use_importance else 1.0)

    total = 0.0
    for truth in scene.entities:
        weight = ENTITY_IMPORTANCE["background" if truth.name == BACKGROUND else "explicit"]
        entity = belief.entity(truth.name)
        total += cost(entity.probability if entity else 0.0, weight)
        for name, value in truth.attributes.items():
            attribute = entity.attribute(name) if entity else None
            p = attribute.candidates.get(value, 0.0) if attribute else 0.0
            total += cost(p, weight * ATTRIBUTE_IMPORTANCE.get(name, 1.0))
    for r in scene.relations:
        total += cost(relation_probability(belief, r.subject, r.predicate, r.object),
                      RELATION_IMPORTANCE)
    return total


def relation_probability(belief: BeliefGraph, subject: str, predicate: str, obj: str) -> float:
    """P(subject predicate obj): from a relation slot (either direction), else — for "left
    of"/"right of" — from the two position distributions, given that they differ."""
    for r in belief.relations:
        if (r.subject, r.object) == (subject, obj):
            return r.candidates.get(predicate, 0.0)
        if (r.subject, r.object) == (obj, subject) and predicate in INVERSE:
            return r.candidates.get(INVERSE[predicate], 0.0)
    a, b = belief.attribute(subject, "position"), belief.attribute(obj, "position")
    if predicate not in ("left of", "right of") or a is None or b is None:
        return 0.0
    if predicate == "right of":
        a, b = b, a
    pairs = [(a.candidates.get(x, 0) * b.candidates.get(y, 0), i < j)
             for i, x in enumerate(POSITIONS) for j, y in enumerate(POSITIONS) if i != j]
    distinct = sum(w for w, _ in pairs)
    return sum(w for w, left in pairs if left) / distinct if distinct > 0 else 0.0


def _same(truth: Fact, guess: Fact, match: Matcher | None) -> bool:
    """Equal facts, or facts of one kind whose differing parts are synonyms."""
    if truth == guess:
        return True
    if match is None or len(truth) != len(guess) or truth[0] != guess[0]:
        return False
    fixed = {2} if truth[0] == "attr" else set()  # the attribute name must be the same
    return all(a == b or (i not in fixed and i > 0 and match(a, b))
               for i, (a, b) in enumerate(zip(truth, guess)))


def coverage(truth: Scene, guess: Scene, match: Matcher | None = None) -> float:
    facts = truth.facts()
    if not facts:
        return 1.0
    guessed = guess.facts()
    hits = sum(1 for f in facts if f in guessed or any(_same(f, g, match) for g in guessed))
    return hits / len(facts)


def fact_coverage(belief: BeliefGraph, scene: Scene, match: Matcher | None = None) -> float:
    """Share of the scene's atomic facts that hold in the belief's most likely scene.

    ``match(a, b)`` decides whether two names or values are synonyms; by default they must
    be equal.
    """
    return coverage(scene, belief.most_likely_scene(), match)


def argmax_fact_coverage(belief: BeliefGraph, scene: Scene,
                         match: Matcher | None = None) -> float:
    """Share of the scene's atomic facts that hold in the belief's *argmax* scene (every slot
    filled with its most probable value, as a generator would draw it): the headline
    coverage, whose single-turn value credits the guesses a T2I model makes anyway."""
    return coverage(scene, belief.argmax_scene(), match)


def embedding_matcher(embed: Callable[[list[str]], Sequence[Sequence[float]]],
                      threshold: float = 0.85) -> Matcher:
    """A synonym matcher from an embedder (e.g. ``lambda t: models.embed("embedder", t)``):
    two words match when their cosine similarity reaches ``threshold``. Vectors are cached."""
    cache: dict[str, Sequence[float]] = {}

    def vector(text: str) -> Sequence[float]:
        if text not in cache:
            cache[text] = embed([text])[0]
        return cache[text]

    def match(a: str, b: str) -> bool:
        va, vb = vector(a), vector(b)
        dot = sum(x * y for x, y in zip(va, vb))
        norm = math.sqrt(sum(x * x for x in va) * sum(y * y for y in vb))
        return norm > 0 and dot / norm >= threshold

    return match


def questions_to_reach(curve: Sequence[float], target: float) -> int | None:
    """The first turn (= questions asked) at which coverage reaches ``target``."""
    return next((turn for turn, value in enumerate(curve) if value >= target - 1e-12), None)
