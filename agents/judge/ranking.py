"""Ranking candidates under noisy judges: the Simplex model (Vossler et al.) and a bootstrap.

With an M-level score, candidate c is a point π_c on the probability simplex (how often its
answers truly deserve each score) and judge j is a confusion matrix Θ_j (row m: what it
reports when the true score is m), the same for every candidate ("judge constancy"). The
scores judge j gives candidate c are then draws from γ_jc = π_c Θ_j. Rankings are by the
true expected score E[s | c] = Σ_m m π_cm. For M ≥ 3 the ranking is not identifiable from
judge scores alone, so the prior on judge quality carries real weight: each judge has a
quality q_j ~ Beta(a, b) and its rows Θ_j[m] ~ Dirichlet(κ (q_j e_m + (1 − q_j) d_m)), with
d_m spreading the rest of the mass by distance from m. The posterior (fitted with Pyro,
SVI with a full-rank Gaussian guide by default, or NUTS) gives every candidate's rank
distribution and a credible interval that carries the epistemic uncertainty about the
judges; the bootstrap of mean judge scores only carries the sampling noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from tinmen.errors import MissingDependencyError

Method = Literal["svi", "nuts"]


class SimplexPrior(BaseModel):
    """Priors of the Simplex model (the knobs of a sensitivity analysis)."""

    model_config = ConfigDict(frozen=True)

    candidate_concentration: float = Field(default=1.0, gt=0, description="Dirichlet on π_c.")
    quality_a: float = Field(default=3.0, gt=0, description="Beta prior on judge quality q_j.")
    quality_b: float = Field(default=2.0, gt=0)
    kappa: float = Field(default=6.0, gt=0, description="Concentration of confusion rows.")
    decay: float = Field(default=1.0, ge=0, description="Off-diagonal mass decay by distance.")


@dataclass(frozen=True)
class Ranked:
    """One candidate's posterior (or bootstrap) rank summary; rank 1 is the best."""

    candidate: str
    mean_score: float
    mean_rank: float
    lo: int
    hi: int
    p_best: float

    def covers(self, rank: int) -> bool:
        return self.lo <= rank <= self.hi


def counts_table(judges: Sequence[int], candidates: Sequence[int], scores: Sequence[int],
                 shape: tuple[int, int, int]) -> torch.Tensor:
    """(J, C, M) counts of each score each judge gave each candidate."""
    counts = torch.zeros(shape)
    for j, c, s in zip(judges, candidates, scores, strict=True):
        counts[j, c, s] += 1
    return counts


def _spread(levels: int, decay: float) -> torch.Tensor:
    dist = torch.arange(levels)[:, None] - torch.arange(levels)[None, :]
    w = torch.exp(-decay * dist.abs().float()) * (1 - torch.eye(levels))
    return w / w.sum(-1, keepdim=True)


def _pyro() -> Any:
    try:
        import pyro
    except ModuleNotFoundError as exc:
        raise MissingDependencyError("the Bayesian ranking needs Pyro; install it with: "
                                     "pip install 'tinmen[judge]'  (pyro-ppl>=1.9)") from exc
    return pyro


def simplex_model(counts: torch.Tensor, prior: SimplexPrior) -> None:
    """Pyro model over π (candidates), q and Θ (judges) given the (J, C, M) score counts."""
    pyro = _pyro()
    import pyro.distributions as dist

    n_judges, n_cands, levels = counts.shape
    with pyro.plate("candidates", n_cands):
        pi = pyro.sample("pi", dist.Dirichlet(torch.full((levels,),
                                                         prior.candidate_concentration)))
    with pyro.plate("judges", n_judges):
        q = pyro.sample("quality", dist.Beta(prior.quality_a, prior.quality_b))
    eye, spread = torch.eye(levels), _spread(levels, prior.decay)
    conc = prior.kappa * (q[:, None, None] * eye + (1 - q)[:, None, None] * spread) + 1e-3
    with pyro.plate("judge_rows", n_judges, dim=-2), pyro.plate("true_level", levels, dim=-1):
        theta = pyro.sample("theta", dist.Dirichlet(conc))
    gamma = torch.einsum("cm,jms->jcs", pi, theta).clamp_min(1e-12)
    pyro.factor("scores", (counts * gamma.log()).sum())


def posterior_pi(counts: torch.Tensor, prior: SimplexPrior, *, method: Method = "svi",
                 steps: int = 600, samples: int = 400, seed: int = 0) -> torch.Tensor:
    """Posterior draws of π, shape (samples, C, M)."""
    pyro = _pyro()
    from pyro.infer import MCMC, NUTS, SVI, Trace_ELBO
    from pyro.infer.autoguide import AutoMultivariateNormal, init_to_median

    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    if method == "nuts":
        mcmc = MCMC(NUTS(simplex_model), num_samples=samples, warmup_steps=steps,
                    disable_progbar=True)
        mcmc.run(counts, prior)
        return mcmc.get_samples()["pi"]
    guide = AutoMultivariateNormal(simplex_model, init_loc_fn=init_to_median)
    svi = SVI(simplex_model, guide, pyro.optim.ClippedAdam({"lr": 0.03}), Trace_ELBO())
    for _ in range(steps):
        svi.step(counts, prior)
    with torch.no_grad():
        return torch.stack([guide(counts, prior)["pi"] for _ in range(samples)])


def ranks_of(values: np.ndarray) -> np.ndarray:
    """Rank 1 = highest value, along the last axis (ties broken by position)."""
    order = np.argsort(-values, axis=-1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, values.shape[-1] + 1), axis=-1)
    return ranks


def summarise(names: Sequence[str], score_draws: np.ndarray, level: float) -> list[Ranked]:
    """Rank summaries from (draws, C) expected-score draws; interval at ``level``."""
    ranks = ranks_of(score_draws)
    tail = (1 - level) / 2
    lo = np.floor(np.quantile(ranks, tail, axis=0)).astype(int)
    hi = np.ceil(np.quantile(ranks, 1 - tail, axis=0)).astype(int)
    return [Ranked(candidate=n, mean_score=float(score_draws[:, c].mean()),
                   mean_rank=float(ranks[:, c].mean()), lo=int(lo[c]), hi=int(hi[c]),
                   p_best=float((ranks[:, c] == 1).mean())) for c, n in enumerate(names)]


def bayes_rank(counts: torch.Tensor, names: Sequence[str], *, prior: SimplexPrior | None = None,
               level: float = 0.9, method: Method = "svi", steps: int = 600,
               samples: int = 400, seed: int = 0) -> list[Ranked]:
    """Posterior ranks with ``level`` credible intervals under the Simplex model."""
    pi = posterior_pi(counts, prior or SimplexPrior(), method=method, steps=steps,
                      samples=samples, seed=seed)
    levels = torch.arange(counts.shape[-1], dtype=pi.dtype)
    return summarise(names, (pi * levels).sum(-1).numpy(), level)


def bootstrap_rank(counts: torch.Tensor, names: Sequence[str], *, level: float = 0.9,
                   draws: int = 500, seed: int = 0) -> list[Ranked]:
    """The naive baseline: bootstrap the mean judge score of each candidate (all judges).

    Each candidate's scores are resampled with replacement; only sampling noise enters the
    interval, none of the uncertainty about what the judges' scores mean.
    """
    # not scipy.stats.bootstrap: that gives a confidence interval of one statistic, and the
    # ranking needs the joint draws of every candidate's mean (ranks are taken per draw)
    rng = np.random.default_rng(seed)
    levels = np.arange(counts.shape[-1])
    means = np.zeros((draws, counts.shape[1]))
    for c in range(counts.shape[1]):
        pooled = np.repeat(np.tile(levels, counts.shape[0]),
                           counts[:, c, :].reshape(-1).numpy().astype(int))
        if pooled.size == 0:
            continue
        picks = rng.integers(0, pooled.size, size=(draws, pooled.size))
        means[:, c] = pooled[picks].mean(-1)
    return summarise(names, means, level)
