"""Building preference pairs from judged candidates, and the SCIR agreement rule.

Self-rewarding (Yuan et al. 2024): of the N candidates for a prompt, the one with the
highest averaged judge score is *chosen*, the one with the lowest *rejected*; if they tie
the prompt gives no pair. SCIR (Zhou et al. 2025) additionally asks the model's two
internal reward models — the generative judge (P_grm) and the implicit DPO reward (P_irm)
— whether they agree on the pair's direction, and trains only on pairs where they do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from difflib import SequenceMatcher
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Variant = Literal["srlm", "scir"]
EPS = 1e-6


class Pair(BaseModel):
    """Indices of the chosen and rejected candidates and the scores that picked them."""

    model_config = ConfigDict(frozen=True)

    chosen: int
    rejected: int
    chosen_score: float
    rejected_score: float

    @property
    def margin(self) -> float:
        return self.chosen_score - self.rejected_score


class PairBeliefs(BaseModel):
    """What the model's two internal reward models believe about one pair."""

    model_config = ConfigDict(frozen=True)

    p_grm: float = Field(ge=0, le=1)
    p_irm: float = Field(ge=0, le=1)

    @property
    def disagreement(self) -> float:
        return abs(self.p_grm - self.p_irm)

    @property
    def sym_kl(self) -> float:
        return symmetric_kl(self.p_grm, self.p_irm)

    @property
    def consistent(self) -> bool:
        return agree(self.p_grm, self.p_irm)


def select_pair(scores: Sequence[float | None]) -> Pair | None:
    """Highest vs lowest score; ``None`` on a tie or with fewer than two scored candidates.

    Unscored candidates (``None``: no parsable verdict) are left out, as in the paper; the
    first candidate wins ties for highest and for lowest so the choice is deterministic.
    """
    scored = [(i, s) for i, s in enumerate(scores) if s is not None and not math.isnan(s)]
    if len(scored) < 2:
        return None
    best = max(scored, key=lambda x: (x[1], -x[0]))
    worst = min(scored, key=lambda x: (x[1], x[0]))
    if best[1] == worst[1]:
        return None
    return Pair(chosen=best[0], rejected=worst[0], chosen_score=best[1],
                rejected_score=worst[1])


def agree(p_grm: float, p_irm: float) -> bool:
    """Both internal reward models prefer the same side (an undecided 0.5 agrees with none)."""
    return (p_grm - 0.5) * (p_irm - 0.5) > 0


def keep_pair(variant: Variant, beliefs: PairBeliefs) -> bool:
    """Plain self-rewarding trains on every non-tied pair; SCIR only on consistent ones."""
    return variant == "srlm" or beliefs.consistent


def bernoulli_kl(p: float, q: float) -> float:
    p, q = min(max(p, EPS), 1 - EPS), min(max(q, EPS), 1 - EPS)
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def symmetric_kl(p: float, q: float) -> float:
    """KL(p‖q) + KL(q‖p) between two Bernoulli preference beliefs (nats).

    Written as (p − q)(log p − log q) + (q − p)(log(1 − p) − log(1 − q)): two products of
    same-signed factors, so rounding can never make it negative.
    """
    p, q = min(max(p, EPS), 1 - EPS), min(max(q, EPS), 1 - EPS)
    return (p - q) * (math.log(p) - math.log(q)) + \
        (q - p) * (math.log1p(-p) - math.log1p(-q))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def similarity(a: str, b: str) -> float:
    """Character-level similarity in [0, 1] of chosen vs rejected (1 = identical).

    Pairs whose two sides grow alike over iterations are the known collapse mode of
    self-rewarding: the preference signal then only rewards tiny surface differences.
    """
    if not a and not b:
        return 1.0
    return SequenceMatcher(None, a, b, autojunk=False).ratio()
