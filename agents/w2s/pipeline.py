"""The steps of the weak-to-strong pipeline as pure functions over arrays.

The graph (``tinmen.graphs.w2s``) calls these in order: the weak ceiling learns ground truth
on one half and labels the other half with soft labels; the strong ceiling learns ground
truth on that other half (Burns et al.'s ``train_weak_to_strong.py``), so the two ceilings
never share a training example; the supervisor may keep only its
confident labels; an intermediate model may relabel them (bootstrapping); the student learns
from what remains — plus, under an *implicit* conflict, helpfulness examples that contradict
the target on part of the space, or, under an *explicit* conflict, a term that rewards
answers against the target where it already disagrees (Yang et al.).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from tinmen.agents.w2s.task import TaskData
from tinmen.agents.w2s.train import Classifier, TrainConfig, fit

Conflict = Literal["none", "implicit", "explicit"]
CONFLICTS: tuple[str, ...] = ("none", "implicit", "explicit")
Half = Literal["gt", "w2s"]
# Yang et al.'s explicit-conflict weight: --reward_alpha=0.5 in every run_*.sh of
# RUCBM/weak-to-strong-deception, and the default of their reward-model trainer
CONFLICT_ALPHA = 0.5


class PipelineConfig(BaseModel):
    """One weak-to-strong run: the ladder pair, the loss and the conflict setting."""

    model_config = ConfigDict(frozen=True)

    weak: str
    strong: str
    intermediate: str | None = Field(default=None, description="Bootstrap through this rung.")
    loss: Literal["xent", "logconf"] = "xent"
    conflict: Conflict = "none"
    conflict_alpha: float = Field(default=CONFLICT_ALPHA, ge=0,
                                  description="Explicit-conflict weight.")
    filter: float | None = Field(default=None, ge=0.5, le=1.0,
                                 description="Keep weak labels with confidence ≥ this.")
    train: TrainConfig = TrainConfig()


def confidence(p1: np.ndarray) -> np.ndarray:
    """The supervisor's confidence in its label: max(p, 1 - p)."""
    return np.maximum(p1, 1.0 - p1)


def keep_mask(p1: np.ndarray, threshold: float | None) -> np.ndarray:
    """Which weak labels the supervisor keeps (all when there is no filter)."""
    if threshold is None:
        return np.ones(len(p1), dtype=bool)
    return confidence(p1) >= threshold


def ceiling(task: TaskData, rung: str, config: TrainConfig, half: Half = "gt") -> Classifier:
    """A rung trained on ground truth: the weak model on the first half (``gt``), the strong
    ceiling on the second (``w2s``, the examples the student sees with weak labels)."""
    return fit(task.view(rung, half), task.labels(half).astype(np.float64), config)


def cross_fit_labels(x: np.ndarray, labels: np.ndarray, config: TrainConfig,
                     x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrapping: an intermediate model relabels the supervised half.

    Two-fold cross-fitting, so no example is labelled by a model that trained on it:
    returns its labels for ``x`` and its (fold-averaged) predictions for ``x_test``.
    """
    n = len(x)
    folds = (np.arange(n) % 2 == 0, np.arange(n) % 2 == 1)
    out, test = np.zeros(n), np.zeros(len(x_test))
    for i, (train_on, label) in enumerate((folds, folds[::-1])):
        model = fit(x[train_on], labels[train_on], config.model_copy(
            update={"seed": config.seed + i}))
        out[label] = model.proba(x[label])
        test += model.proba(x_test) / 2
    return out, test


def student_set(task: TaskData, rung: str, labels: np.ndarray, keep: np.ndarray,
                conflict: Conflict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, soft targets and target-dimension truth the student trains on.

    Under the implicit conflict the helpfulness examples (hard labels) are mixed in.
    """
    x = task.view(rung, "w2s")[keep]
    p1 = labels[keep]
    truth = task.labels("w2s")[keep]
    if conflict == "implicit" and task.count("help"):
        x = np.concatenate([x, task.view(rung, "help")])
        p1 = np.concatenate([p1, task.help_label[task.index("help")].astype(np.float64)])
        truth = np.concatenate([truth, task.labels("help")])
    return x, p1, truth


def train_student(task: TaskData, config: PipelineConfig, labels: np.ndarray,
                  keep: np.ndarray, conflict: Conflict) -> Classifier:
    """The strong student on the supervisor's labels, under ``conflict``."""
    x, p1, truth = student_set(task, config.strong, labels, keep, conflict)
    alpha = config.conflict_alpha if conflict == "explicit" else 0.0
    train = config.train.model_copy(update={"loss": config.loss, "conflict_alpha": alpha})
    return fit(x, p1, train, truth=truth if alpha > 0 else None)


def accuracy(p1: np.ndarray, y: np.ndarray) -> float:
    return float(((p1 > 0.5).astype(np.int64) == y).mean())


def pgr(weak: float, w2s: float, ceiling_acc: float) -> float | None:
    """Performance gap recovered; undefined unless the ceiling beats the weak model."""
    if ceiling_acc <= weak:
        return None
    return (w2s - weak) / (ceiling_acc - weak)
