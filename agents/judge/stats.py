"""Agreement statistics between a judge and the oracle (no SciPy needed).

Yuan et al. report a judge's agreement with human rankings as pairwise accuracy, exact
5-best match, Spearman's ρ and Kendall's τ; these are the same measures against the oracle.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Sequence
from itertools import combinations


def average_ranks(values: Sequence[float]) -> list[float]:
    """Ranks starting at 1, ties sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    n = len(x)
    if n < 2:
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return None if sxx == 0 or syy == 0 else sxy / math.sqrt(sxx * syy)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's ρ (Pearson on average ranks); ``None`` when a side is constant."""
    return pearson(average_ranks(x), average_ranks(y))


def kendall(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's τ-b (tie-corrected); ``None`` when a side is constant."""
    concordant = discordant = ties_x = ties_y = 0
    for i, j in combinations(range(len(x)), 2):
        dx, dy = x[i] - x[j], y[i] - y[j]
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            ties_x += 1
        elif dy == 0:
            ties_y += 1
        elif dx * dy > 0:
            concordant += 1
        else:
            discordant += 1
    denom = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return None if denom == 0 else (concordant - discordant) / denom


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
