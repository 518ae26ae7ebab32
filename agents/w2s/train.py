"""Training loop for the ladder's classifiers: a small MLP (or linear) head on a feature view.

One loop serves every model of the pipeline — ceilings on ground truth, students on weak
labels, with or without the auxiliary confidence loss and the explicit-conflict term —
so that the only differences between runs are the ones the experiment names. Like Burns et
al.'s ``train_model`` it uses Adam with cosine annealing over a fixed number of epochs and
passes the fraction of training done (``step_frac``) to the loss; inputs are standardised
with the training set's statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from tinmen.agents.w2s.losses import LossName, conflict_reward, loss_fn, soft_targets


class TrainConfig(BaseModel):
    """Hyper-parameters of one classifier fit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hidden: int = Field(default=64, ge=0, description="Hidden units; 0 = a linear head.")
    epochs: int = Field(default=3, ge=1)
    batch_size: int = Field(default=32, ge=2)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    loss: LossName = "xent"
    aux_coef: float = Field(default=0.5, ge=0, le=1, description="logconf: final α.")
    warmup_frac: float = Field(default=0.2, ge=0, le=1, description="logconf: α warm-up.")
    conflict_alpha: float = Field(default=0.0, ge=0,
                                  description="Weight of the explicit-conflict term (0 = off).")
    seed: int = 0


@dataclass
class Classifier:
    """A trained head with the standardisation it was trained under."""

    net: torch.nn.Module
    mean: np.ndarray
    std: np.ndarray

    def proba(self, x: np.ndarray) -> np.ndarray:
        """P(class 1) for every row of ``x``."""
        with torch.no_grad():
            logits = self.net(torch.as_tensor((x - self.mean) / self.std, dtype=torch.float32))
            return torch.softmax(logits, dim=-1)[:, 1].numpy().astype(np.float64)


def make_net(n_in: int, hidden: int) -> torch.nn.Module:
    if hidden == 0:
        return torch.nn.Linear(n_in, 2)
    return torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.ReLU(),
                               torch.nn.Linear(hidden, 2))


def fit(x: np.ndarray, p1: np.ndarray, config: TrainConfig,
        truth: np.ndarray | None = None) -> Classifier:
    """Train on features ``x`` and targets ``p1`` = P(class 1) (hard labels are 0/1).

    ``truth`` (the target-dimension labels) is needed only when ``conflict_alpha`` > 0.
    """
    if config.conflict_alpha > 0 and truth is None:
        raise ValueError("the explicit-conflict term needs the target labels (truth)")
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    xs = torch.as_tensor((x - mean) / std, dtype=torch.float32)
    labels = soft_targets(torch.as_tensor(p1, dtype=torch.float32))
    gt = torch.as_tensor(truth if truth is not None else np.zeros(len(x)), dtype=torch.long)
    net = make_net(x.shape[1], config.hidden)
    _optimise(net, xs, labels, gt, config, gen)
    return Classifier(net.eval(), mean, std)


def _optimise(net: torch.nn.Module, xs: torch.Tensor, labels: torch.Tensor, gt: torch.Tensor,
              config: TrainConfig, gen: torch.Generator) -> None:
    n = len(xs)
    per_epoch = max(1, -(-n // config.batch_size))
    steps = per_epoch * config.epochs
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    objective = loss_fn(config.loss, aux_coef=config.aux_coef, warmup_frac=config.warmup_frac)
    step = 0
    for _ in range(config.epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, config.batch_size):
            idx = order[start:start + config.batch_size]
            if len(idx) < 2:
                continue
            logits = net(xs[idx])
            loss = objective(logits, labels[idx], step / steps)
            if config.conflict_alpha > 0:
                loss = loss + config.conflict_alpha * conflict_reward(logits, gt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
