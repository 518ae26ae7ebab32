"""Uncertainty signals of one generation, computed from its recorded log-probs only.

Everything here is a pure function of what a ``generate`` call recorded (its params and its
output's ``token_logprobs`` / ``top1_logprobs`` / ``topk_logprobs``), so the signals of a
session stored before they existed can be recomputed from the record
(:func:`recompute`), and they equal what the recorder stored (:func:`summary`).

Signals (the literature's names; all in nats):

* ``nll`` — realized NLL of the text, ``-sum(log p(token))``; length-biased.
* ``g_nll`` — G-NLL, the NLL of the *greedy* sequence: the same number, but only where the
  call decoded greedily (``temperature == 0``); absent (``None``) for a sampled call,
  whose realized NLL is not the greedy sequence's.
* ``mean_nll`` — ``nll / n_tokens``.
* ``nll_quantiles`` — per-token NLL quantiles ``q50``, ``q80``, ``q90``, ``max``: the
  "Chow-quantile" deferral signal of token-level cascades (Gupta et al.), robust to
  length where the sequence NLL is not.
* ``top1_min`` / ``top1_mean`` — the top-1 next-token probability (the Nudging trigger,
  Fei et al.): lowest and mean over the generated tokens.
* ``entropy_mean`` / ``entropy_max`` — per-token entropy **approximated from the top-k
  log-probs** (k = ``entropy_k``, :data:`~tinmen.models.protocols.TOP_K` for in-process
  models): the k largest probabilities plus one bucket for the remaining mass. It is a
  lower bound of the true entropy; absent where the backend reported no top-k (served
  models, scripted policies without log-probs).

Decisions get the same treatment from their option distribution: :func:`option_signals`
(entropy and margin = top-1 minus top-2 probability).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

QUANTILES: Mapping[str, float] = {"q50": 0.5, "q80": 0.8, "q90": 0.9, "max": 1.0}
SIGNALS_VERSION = 1  # bump when a definition changes; stored with every summary


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (linear interpolation, numpy's default) of ``values``."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def token_nlls(token_logprobs: Sequence[float]) -> list[float]:
    return [-float(lp) for lp in token_logprobs]


def chow_quantile(token_logprobs: Sequence[float], q: float = 0.8) -> float:
    """The ``q`` quantile of the per-token NLL: the Chow-quantile deferral score."""
    return quantile(token_nlls(token_logprobs), q)


def topk_entropy(topk_logprobs: Sequence[float]) -> float:
    """Entropy of one position from its k largest log-probs, the remaining mass as one
    outcome (a lower bound of the full-vocabulary entropy)."""
    probs = [math.exp(lp) for lp in topk_logprobs]
    rest = max(0.0, 1.0 - sum(probs))
    return -sum(p * math.log(p) for p in (*probs, rest) if p > 0)


def signals(params: Mapping[str, Any], output: Mapping[str, Any]) -> dict[str, Any] | None:
    """The summary of one ``generate`` call (``params`` and ``output`` as recorded);
    ``None`` where the model gave no log-probs."""
    lps = output.get("token_logprobs")
    if lps is None:
        return None
    lps = [float(x) for x in lps]
    nlls = token_nlls(lps)
    nll = float(sum(nlls))
    greedy = float(params.get("temperature", 0.0)) == 0.0
    out: dict[str, Any] = {
        "v": SIGNALS_VERSION, "n_tokens": len(lps), "nll": nll,
        "g_nll": nll if greedy else None,
        "mean_nll": nll / len(lps) if lps else None,
        "nll_quantiles": {k: quantile(nlls, q) for k, q in QUANTILES.items()} if lps else None,
        "top1_min": None, "top1_mean": None,
        "entropy_mean": None, "entropy_max": None, "entropy_k": None}
    top1 = output.get("top1_logprobs")
    if top1:
        probs = [math.exp(float(x)) for x in top1]
        out["top1_min"], out["top1_mean"] = min(probs), sum(probs) / len(probs)
    topk = output.get("topk_logprobs")
    if topk:
        ents = [topk_entropy(row) for row in topk]
        out["entropy_mean"], out["entropy_max"] = sum(ents) / len(ents), max(ents)
        out["entropy_k"] = max(len(row) for row in topk)
    return _finite(out)


def _finite(value: Any) -> Any:
    """Non-finite floats (a token of probability 0) as None: JSON columns refuse them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def recompute(record: Any) -> dict[str, Any] | None:
    """The signals of a stored call (a :class:`~tinmen.models.client.CallRecord`, e.g. from
    ``uow.calls.for_session``), from its params and output alone; ``None`` for calls other
    than ``generate`` or without log-probs."""
    if record.op != "generate":
        return None
    return signals(record.params, record.output)


def option_signals(probs: Sequence[float]) -> dict[str, float | None]:
    """Entropy (nats) and margin (top-1 minus top-2 probability) of a decision's options."""
    if not probs:
        return {"entropy": None, "margin": None}
    ordered = sorted(probs, reverse=True)
    entropy = -sum(p * math.log(p) for p in ordered if p > 0)
    margin = ordered[0] - ordered[1] if len(ordered) > 1 else 1.0
    return {"entropy": entropy, "margin": margin}


def option_probs(scores: Sequence[float]) -> list[float]:
    """A distribution over a decision's options from their scores: the scores themselves
    where they already are one (each in [0, 1], summing to 1), else their softmax (scores
    read as log-weights: log-probs, margins, votes)."""
    if not scores or not all(math.isfinite(s) or s == -math.inf for s in scores):
        return []
    if all(0.0 <= s <= 1.0 for s in scores) and abs(sum(scores) - 1.0) < 1e-6:
        return [float(s) for s in scores]
    top = max(scores)
    if top == -math.inf:
        return []
    weights = [math.exp(s - top) for s in scores]
    total = sum(weights)
    return [w / total for w in weights]
