"""Decisions and distributions as the viewer draws them: every option with a probability
(the recorded one, or a softmax of the scores), the chosen one marked, and distribution
bars sorted by probability."""

from __future__ import annotations

import json
import math
from typing import Any

PROB_KEYS = ("probability", "p", "prob")
SCORE_KEYS = (*PROB_KEYS, "score", "logprob")


def option_label(option: Any) -> str:
    if isinstance(option, dict):
        if "option" in option:
            return str(option["option"])
        rest = {k: v for k, v in option.items() if k not in SCORE_KEYS}
        return json.dumps(rest, default=str) if len(rest) != 1 else str(next(iter(rest.values())))
    return str(option)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def option_probabilities(options: list[Any]) -> list[float | None]:
    """Recorded probabilities where the options carry them; scores that already form a
    distribution as they are; other scores through a softmax; else unknown (None)."""
    for key in PROB_KEYS:
        found = [_number(o.get(key)) if isinstance(o, dict) else None for o in options]
        if options and all(p is not None for p in found):
            return found
    scores = [_number(o.get("score")) if isinstance(o, dict) else None for o in options]
    if not options or any(s is None for s in scores):
        return [None] * len(options)
    values = [float(s) for s in scores if s is not None]
    if all(0 <= s <= 1 for s in values) and abs(sum(values) - 1) < 1e-6:
        return list(values)
    top = max(values)
    weights = [math.exp(s - top) for s in values]
    return [w / sum(weights) for w in weights]


def is_chosen(option: Any, chosen: Any) -> bool:
    """The option the decision took: equal to ``chosen``, or (for dict options and a dict
    choice) agreeing with it on every key both have, scores aside."""
    if isinstance(option, dict):
        if "option" in option and option["option"] == chosen:
            return True
        rest = {k: v for k, v in option.items() if k not in SCORE_KEYS}
        if isinstance(chosen, dict):  # e.g. {"item": 2, "name": …} chosen as {"item": 2, …}
            shared = [k for k in rest if k in chosen]
            return bool(shared) and all(chosen[k] == rest[k] for k in shared)
        return len(rest) == 1 and next(iter(rest.values())) == chosen
    return option == chosen


def decision_view(decision: dict[str, Any]) -> dict[str, Any]:
    options = decision.get("options") or []
    probs = option_probabilities(options)
    decision["rows"] = [{"label": option_label(o), "p": p,
                         "score": o.get("score") if isinstance(o, dict) else None,
                         "chosen": is_chosen(o, decision.get("chosen"))}
                        for o, p in zip(options, probs)]
    decision["chosen_label"] = option_label(decision.get("chosen"))
    return decision


def distribution_bars(distribution: Any, limit: int = 8) -> list[dict[str, Any]]:
    """``{value: p}`` as bars, most likely first (numbers only; others are skipped)."""
    if not isinstance(distribution, dict):
        return []
    pairs = [(str(k), _number(v)) for k, v in distribution.items()]
    ranked = sorted(((k, v) for k, v in pairs if v is not None), key=lambda kv: -kv[1])
    return [{"value": k, "p": v} for k, v in ranked[:limit]]


def confidence_class(p: float | None) -> str:
    """A token's colour bucket by its probability."""
    if p is None:
        return "c-none"
    return "c-hi" if p >= 0.8 else "c-mid" if p >= 0.4 else "c-lo" if p >= 0.1 else "c-vlo"
