"""Agreement statistics between a judge and the oracle.

Yuan et al. report a judge's agreement with human rankings as pairwise accuracy, exact
5-best match, Spearman's ρ and Kendall's τ; these are the same measures against the oracle.
The correlations are SciPy's; ``None`` stands for undefined (fewer than two values, or a
constant side), where SciPy returns NaN and warns.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from itertools import combinations
from typing import Any


def average_ranks(values: Sequence[float]) -> list[float]:
    """Ranks starting at 1, ties sharing their average rank."""
    from scipy.stats import rankdata

    return [float(r) for r in rankdata(values, method="average")]


def _defined(fn: Callable[..., Any], x: Sequence[float], y: Sequence[float]) -> float | None:
    if len(x) < 2 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(fn(x, y).statistic)
    return None if math.isnan(value) else value


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    from scipy.stats import pearsonr

    return _defined(pearsonr, x, y)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's ρ (Pearson on average ranks); ``None`` when a side is constant."""
    from scipy.stats import spearmanr

    return _defined(spearmanr, x, y)


def kendall(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's τ-b (tie-corrected); ``None`` when a side is constant."""
    from scipy.stats import kendalltau

    return _defined(kendalltau, x, y)


def pairwise_accuracy(groups: Sequence[Hashable], truth: Sequence[float],
                      judged: Sequence[float]) -> float | None:
    """Share of same-group pairs with different true scores that the judge orders the same
    way (a judge tie counts half); ``None`` when there is no such pair."""
    by_group: dict[Hashable, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        by_group[g].append(i)
    hits, total = 0.0, 0
    for members in by_group.values():
        for i, j in combinations(members, 2):
            if truth[i] == truth[j]:
                continue
            total += 1
            d = (judged[i] - judged[j]) * (truth[i] - truth[j])
            hits += 1.0 if d > 0 else 0.5 if d == 0 else 0.0
    return hits / total if total else None
