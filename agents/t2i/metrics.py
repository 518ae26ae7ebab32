"""How well a belief matches the ground truth: fact coverage and importance-weighted NLL."""

from __future__ import annotations

import math
from collections.abc import Callable

from tinmen.agents.t2i.belief import BeliefGraph
from tinmen.agents.t2i.scenes import Scene

FLOOR = 1e-6  # probability floor so an impossible value costs a finite NLL

Matcher = Callable[[str, str], bool]


def fact_coverage(belief: BeliefGraph, scene: Scene, match: Matcher | None = None) -> float:
    """Share of the scene's atomic facts that hold in the belief's most likely scene.

    ``match(a, b)`` decides whether two values are synonyms (e.g. by embedding similarity);
    by default values must be equal.
    """
    truth = scene.facts()
    if not truth:
        return 1.0
    guess = belief.most_likely_scene().facts()
    if match is None:
        return len(truth & guess) / len(truth)
    hits = sum(1 for fact in truth if fact in guess or any(
        len(g) == len(fact) and g[:-1] == fact[:-1] and match(g[-1], fact[-1]) for g in guess))
    return hits / len(truth)


def belief_nll(belief: BeliefGraph, scene: Scene) -> float:
    """Importance-weighted NLL of the true attribute values under the belief."""
    total = 0.0
    for entity in scene.entities:
        for attribute, value in entity.attributes.items():
            slot = belief.slot(entity.name, attribute)
            p = slot.candidates.get(value, 0.0) if slot else 0.0
            weight = slot.importance if slot else 1.0
            total += -weight * math.log(max(p, FLOOR))
    return total
