"""What a weak-to-strong task hands the pipeline, whichever ladder built it.

A :class:`TaskData` holds stable example ids, the target labels (harmlessness: 1 =
harmful), which split each example belongs to, one feature *view* per rung of the model
ladder (the synthetic groups a rung sees, or an LM's hidden states at a layer), the
helpfulness labels used by the implicit conflict and — where the task plants them — the
Bayes-optimal predictions of every rung (``oracle``) that define the true regions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

SPLITS = ("gt", "w2s", "test", "help")


def split_labels(n_gt: int, n_w2s: int, n_test: int, n_help: int) -> np.ndarray:
    """Consecutive blocks: ground-truth half, supervised half, test, helpfulness."""
    return np.array(["gt"] * n_gt + ["w2s"] * n_w2s + ["test"] * n_test + ["help"] * n_help)


@dataclass(frozen=True)
class TaskData:
    ids: list[str]
    y: np.ndarray
    split: np.ndarray
    views: Mapping[str, np.ndarray]
    help_label: np.ndarray
    oracle: Mapping[str, np.ndarray] = field(default_factory=dict)
    latent: np.ndarray | None = None
    texts: list[str] | None = None

    def index(self, split: str) -> np.ndarray:
        """Row indices of ``split`` (one of :data:`SPLITS`)."""
        return np.flatnonzero(self.split == split)

    def view(self, rung: str, split: str) -> np.ndarray:
        return self.views[rung][self.index(split)]

    def labels(self, split: str) -> np.ndarray:
        return self.y[self.index(split)]

    def ids_of(self, split: str) -> list[str]:
        return [self.ids[i] for i in self.index(split)]

    def count(self, split: str) -> int:
        return int((self.split == split).sum())
