"""The losses against hand computations (Burns et al.'s confidence loss, Yang et al.'s
explicit-conflict term), and the invariants that make them what they claim to be."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tinmen.agents.w2s.losses import (
    conflict_reward,
    hardened,
    logconf,
    soft_targets,
    warmup_coef,
    xent,
)

LOGITS = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.5, 0.4], [-1.0, 1.0]])
WEAK_P1 = torch.tensor([0.2, 0.9, 0.4, 0.7])  # weak P(class 1): mean 0.55


def _softmax(row):
    e = [math.exp(v) for v in row]
    return [v / sum(e) for v in e]


def _ce(row, target):
    p = _softmax(row)
    return -sum(t * math.log(q) for t, q in zip(target, p))


def test_xent_is_the_soft_label_cross_entropy():
    labels = soft_targets(WEAK_P1)
    hand = np.mean([_ce(r, [1 - p, p]) for r, p in zip(LOGITS.tolist(), WEAK_P1.tolist())])
    assert xent(LOGITS, labels).item() == pytest.approx(hand, rel=1e-6)


def test_warmup_is_linear_then_flat():
    assert warmup_coef(0.0, 0.5, 0.2) == 0.0
    assert warmup_coef(0.1, 0.5, 0.2) == pytest.approx(0.25)
    assert warmup_coef(0.2, 0.5, 0.2) == pytest.approx(0.5)
    assert warmup_coef(0.9, 0.5, 0.2) == pytest.approx(0.5)
    assert warmup_coef(0.0, 0.5, 0.0) == 0.5  # no warm-up


def test_logconf_against_a_hand_computation():
    # student P(class 0) per row: 0.881, 0.269, 0.525, 0.119; the weak labels put 0.55 on
    # class 1, so the threshold is the 0.55-quantile of those (linear interpolation):
    # sorted 0.119, 0.269, 0.525, 0.881 → position 0.55·3 = 1.65 → 0.269 + 0.65·(0.525−0.269)
    p0 = [_softmax(r)[0] for r in LOGITS.tolist()]
    s = sorted(p0)
    threshold = s[1] + 0.65 * (s[2] - s[1])
    hard = [[1.0, 0.0] if q >= threshold else [0.0, 1.0] for q in p0]
    assert [h[1] for h in hard] == [0.0, 1.0, 0.0, 1.0]  # rows 0 and 2 are called class 0
    alpha = 0.5 * (0.1 / 0.2)  # step_frac 0.1 of a 0.2 warm-up, aux_coef 0.5
    targets = [[(1 - alpha) * (1 - p) + alpha * h[0], (1 - alpha) * p + alpha * h[1]]
               for p, h in zip(WEAK_P1.tolist(), hard)]
    hand = np.mean([_ce(r, t) for r, t in zip(LOGITS.tolist(), targets)])
    got = logconf(LOGITS, soft_targets(WEAK_P1), 0.1, aux_coef=0.5, warmup_frac=0.2)
    assert got.item() == pytest.approx(hand, rel=1e-6)


def test_logconf_without_confidence_weight_is_xent():
    labels = soft_targets(WEAK_P1)
    assert logconf(LOGITS, labels, 0.0).item() == pytest.approx(xent(LOGITS, labels).item())
    assert logconf(LOGITS, labels, 0.9, aux_coef=0.0).item() == pytest.approx(
        xent(LOGITS, labels).item())


def test_logconf_target_is_not_differentiated_through_the_hard_labels():
    logits = LOGITS.clone().requires_grad_(True)
    logconf(logits, soft_targets(WEAK_P1), 1.0).backward()
    # gradient of mean CE with a fixed target: (softmax − target) / n, rows sum to zero
    assert torch.allclose(logits.grad.sum(dim=1), torch.zeros(4), atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-4, 4), min_size=8, max_size=8),
       st.lists(st.floats(0.01, 0.99), min_size=8, max_size=8))
def test_hardened_labels_keep_the_weak_class_balance(raw, p1):
    """The adaptive threshold hardens about mean(weak P1)·n examples to class 1."""
    logits = torch.tensor([[v, -v] for v in raw])
    labels = soft_targets(torch.tensor(p1))
    hard = hardened(logits, labels)
    assert torch.all(hard.sum(dim=1) == 1)
    distinct = len({round(v, 6) for v in raw}) == len(raw)
    if distinct:
        expected = len(raw) * float(np.mean(p1))
        assert abs(hard[:, 1].sum().item() - expected) <= 1.0 + 1e-6


def test_conflict_reward_against_a_hand_computation():
    truth = torch.tensor([0, 0, 1, 0])
    # argmax: 0, 1, 0, 1 → wrong on rows 1, 2, 3; each pays CE towards the other label
    rows = LOGITS.tolist()
    hand = (_ce(rows[1], [0, 1]) + _ce(rows[2], [0, 1][::-1]) + _ce(rows[3], [0, 1])) / 4
    assert conflict_reward(LOGITS, truth).item() == pytest.approx(hand, rel=1e-6)


def test_conflict_reward_is_zero_where_the_student_agrees_with_the_target():
    truth = LOGITS.argmax(dim=1)
    assert conflict_reward(LOGITS, truth).item() == 0.0


def test_conflict_reward_pushes_wrong_answers_further_from_the_target():
    logits = LOGITS.clone().requires_grad_(True)
    truth = torch.tensor([0, 0, 1, 0])
    conflict_reward(logits, truth).backward()
    # row 1 is wrong (predicts 1, truth 0): descending the loss raises its class-1 logit
    assert logits.grad[1, 1] < 0 < logits.grad[1, 0]
    assert torch.all(logits.grad[0] == 0)  # right rows are untouched
