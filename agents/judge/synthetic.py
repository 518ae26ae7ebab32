"""A setting with a known true ranking: the oracle seen through judges with injected noise.

Each replicate draws candidates' true score distributions π_c, samples their items' true
(oracle) scores, and lets three judges of known, different kinds score every item:

* ``fair``        — right 70% of the time, otherwise a nearby score;
* ``lenient``     — adds a point half of the time (capped at the top score), then noise;
* ``compressive`` — cannot tell the low scores apart, nor the high ones.

The true ranking is by E_π[s]. Coverage is how often a method's interval holds a
candidate's true rank; the Simplex posterior and the bootstrap of mean judge scores are
compared on the same replicates.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tinmen.agents.judge.ranking import Method, SimplexPrior, bayes_rank, bootstrap_rank, ranks_of
from tinmen.agents.judge.stats import spearman

LEVELS = 6


def _noisy(target: np.ndarray, keep: float, decay: float = 1.0) -> np.ndarray:
    """Rows that report ``target[m]`` with prob ``keep``, else a score near it."""
    levels = len(target)
    rows = np.zeros((levels, levels))
    for m, t in enumerate(target):
        near = np.exp(-decay * np.abs(np.arange(levels) - t))
        near[t] = 0
        rows[m] = (1 - keep) * near / near.sum()
        rows[m, t] += keep
    return rows


def judge_matrices(levels: int = LEVELS) -> dict[str, np.ndarray]:
    """Confusion matrices (true score → reported score) of the three synthetic judges."""
    ident = np.arange(levels)
    up = np.minimum(ident + 1, levels - 1)
    lenient = 0.5 * _noisy(ident, 0.8) + 0.5 * _noisy(up, 0.8)
    squash = np.where(ident < levels // 2, 1, levels - 2)
    return {"fair": _noisy(ident, 0.7), "lenient": lenient,
            "compressive": _noisy(squash, 0.75)}


def simulate(rng: np.random.Generator, pis: np.ndarray, thetas: np.ndarray,
             items: int) -> torch.Tensor:
    """(J, C, M) score counts: every judge scores every item of every candidate once."""
    n_judges, levels = thetas.shape[0], thetas.shape[1]
    counts = np.zeros((n_judges, len(pis), levels))
    for c, pi in enumerate(pis):
        truth = rng.choice(levels, size=items, p=pi)
        for j in range(n_judges):
            for s in truth:
                counts[j, c, rng.choice(levels, p=thetas[j, s])] += 1
    return torch.tensor(counts, dtype=torch.float32)


def replicate(seed: int, *, candidates: int = 6, items: int = 40, level: float = 0.9,
              method: Method = "svi", steps: int = 600, prior: SimplexPrior | None = None
              ) -> dict[str, Any]:
    """One synthetic benchmark: coverage, width and rank correlation of both methods."""
    rng = np.random.default_rng(seed)
    pis = rng.dirichlet(np.full(LEVELS, 0.8), size=candidates)
    thetas = np.stack(list(judge_matrices().values()))
    counts = simulate(rng, pis, thetas, items)
    truth = ranks_of((pis * np.arange(LEVELS)).sum(-1))
    names = [f"c{i}" for i in range(candidates)]
    out: dict[str, Any] = {"seed": seed}
    for name, ranked in (("bayes", bayes_rank(counts, names, prior=prior, level=level,
                                              method=method, steps=steps, seed=seed)),
                         ("bootstrap", bootstrap_rank(counts, names, level=level, seed=seed))):
        hits = [r.covers(int(t)) for r, t in zip(ranked, truth)]
        out[name] = {"coverage": float(np.mean(hits)), "joint": float(all(hits)),
                     "width": float(np.mean([r.hi - r.lo + 1 for r in ranked])),
                     "spearman": spearman([r.mean_rank for r in ranked],
                                          [float(t) for t in truth])}
    return out


def summarise_runs(runs: list[dict[str, Any]], **setting: Any) -> dict[str, Any]:
    """Mean coverage (per candidate and joint), width and ρ of both methods over replicates."""
    summary: dict[str, Any] = {"replicates": len(runs), **setting}
    for name in ("bayes", "bootstrap"):
        summary[name] = {m: float(np.mean([r[name][m] for r in runs if r[name][m] is not None]))
                         for m in ("coverage", "joint", "width", "spearman")}
    return summary


def coverage_study(replicates: int = 20, seed: int = 0, **kwargs: Any) -> dict[str, Any]:
    """Run ``replicates`` synthetic benchmarks and summarise both methods."""
    runs = [replicate(seed + i, **kwargs) for i in range(replicates)]
    return summarise_runs(runs, **{k: v for k, v in kwargs.items() if k != "prior"})
