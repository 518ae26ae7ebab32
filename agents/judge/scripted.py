"""A scripted judge: the oracle seen through a known confusion matrix.

It plays an *external* judge of known quality (the "auditor" role) so that the Bayesian
ranking has judges with injected noise and a known truth, and so tests run without
weights. It reads the instruction and the response out of either prompt style, scores
them with the oracle, and reports score ``k`` with probability ``quality`` when the oracle
says ``k``, spreading the rest over the other scores by distance. Scores are deterministic
(replayable); sampled verdicts use the call's seed.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from typing import Any

from tinmen.agents.judge.rubric import SCORES, parse_score
from tinmen.agents.judge.tasks import oracle_score, task_from_instruction

_COMPACT = re.compile(r"J: (.*)\nR: (.*)\n(?:Score|Justify):", re.DOTALL)
_RUBRIC = re.compile(r"User: (.*)\n<response>(.*)</response>", re.DOTALL)


def _text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n".join(m.get("content", "") for m in prompt)


def confusion_row(true_score: int, quality: float, decay: float = 1.0) -> list[float]:
    """P(reported score | true score): ``quality`` on the diagonal, the rest by distance."""
    others = [math.exp(-decay * abs(s - true_score)) if s != true_score else 0.0
              for s in SCORES]
    total = sum(others)
    return [quality if s == true_score else (1 - quality) * w / total
            for s, w in zip(SCORES, others)]


class NoisyOracleJudge:
    """Scripted policy for the ``scripted`` backend; see the module docstring."""

    def __init__(self, quality: float = 0.6) -> None:
        self.quality = quality

    def true_score(self, prompt: Any) -> int | None:
        text = _text(prompt)
        found = _COMPACT.search(text) or _RUBRIC.search(text)
        if found is None:
            return None
        task = task_from_instruction(found.group(1))
        return None if task is None else oracle_score(task, found.group(2))

    def row(self, prompt: Any) -> list[float]:
        truth = self.true_score(prompt)
        if truth is None:
            return [1 / len(SCORES)] * len(SCORES)
        return confusion_row(truth, self.quality)

    def score(self, prompt: Any, options: Sequence[str]) -> list[float]:
        row = self.row(prompt)
        out = []
        for option in options:
            value = parse_score(option)
            out.append(math.log(row[value]) if value is not None and row[value] > 0
                       else math.log(1e-9))
        return out

    def respond(self, prompt: Any, params: Any, seed: int) -> str:
        row = self.row(prompt)
        pick = random.Random(seed).choices(SCORES, weights=row)[0]
        return f"Score: {pick}"
