"""Training losses of the weak-to-strong pipeline (two classes; column 1 = the target label).

* :func:`xent` — cross-entropy on the weak supervisor's *soft* labels (Burns et al., the
  naive baseline).
* :func:`logconf` — Burns et al.'s auxiliary confidence loss: the target mixes the weak
  label with the student's own *hardened* prediction, ``(1 - α) · weak + α · hard``.
  Hardening uses an adaptive threshold: the quantile of the student's class-0 probability
  at the batch's mean weak probability of class 1, so the hardened labels keep the weak
  labels' class balance instead of collapsing onto one class. α is warmed up linearly from
  0 to ``aux_coef`` over the first ``warmup_frac`` of training, as the paper describes (the
  released ``loss.py`` instead uses α = ``aux_coef · step_frac`` during warm-up and jumps to
  ``aux_coef`` after it).
* :func:`conflict_reward` — Yang et al.'s *explicit* conflict: on the examples where the
  student already disagrees with the target, a cross-entropy term pulls it further towards
  the opposite label (``use_reward_mechanism`` in their trainers), weighted by
  ``conflict_alpha`` and averaged over the whole batch.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

LossName = Literal["xent", "logconf"]


def soft_targets(p1: torch.Tensor) -> torch.Tensor:
    """Two-column targets ``[1 - p, p]`` from the probability of class 1."""
    return torch.stack([1.0 - p1, p1], dim=-1)


def xent(logits: torch.Tensor, labels: torch.Tensor, step_frac: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy between the logits and two-column soft labels."""
    return F.cross_entropy(logits.float(), labels.float())


def warmup_coef(step_frac: float, aux_coef: float, warmup_frac: float) -> float:
    """α at this point of training: linear from 0 to ``aux_coef`` over the warm-up."""
    if warmup_frac <= 0:
        return aux_coef
    return aux_coef * min(1.0, max(0.0, step_frac) / warmup_frac)


def hardened(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The student's own predictions made hard with the adaptive threshold (one-hot)."""
    preds = torch.softmax(logits.float(), dim=-1)
    share_of_class1 = labels.float().mean(dim=0)[1]
    threshold = torch.quantile(preds[:, 0], share_of_class1)
    is_class0 = (preds[:, 0] >= threshold).float()
    return torch.stack([is_class0, 1.0 - is_class0], dim=-1).detach()


def logconf(logits: torch.Tensor, labels: torch.Tensor, step_frac: float, *,
            aux_coef: float = 0.5, warmup_frac: float = 0.2) -> torch.Tensor:
    """Burns et al.'s auxiliary confidence loss (see the module docstring)."""
    alpha = warmup_coef(step_frac, aux_coef, warmup_frac)
    target = labels.float() * (1.0 - alpha) + hardened(logits, labels) * alpha
    return F.cross_entropy(logits.float(), target)


def conflict_reward(logits: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Yang et al.'s explicit-conflict term: reward wrong answers where already wrong.

    ``truth`` holds the target labels (0/1). The mask is recomputed from the current
    logits at every step and is not differentiated through.
    """
    wrong = (logits.argmax(dim=-1) != truth.long()).float().detach()
    against = F.cross_entropy(logits.float(), (1 - truth.long()), reduction="none")
    return (wrong * against).mean()


def loss_fn(name: LossName, *, aux_coef: float = 0.5, warmup_frac: float = 0.2):
    """The loss called by the training loop as ``fn(logits, labels, step_frac)``."""
    if name == "xent":
        return xent
    if name == "logconf":
        return lambda logits, labels, step_frac: logconf(
            logits, labels, step_frac, aux_coef=aux_coef, warmup_frac=warmup_frac)
    raise ValueError(f"unknown loss '{name}'")
