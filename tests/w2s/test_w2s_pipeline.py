"""Pipeline pieces: the conflict switch, the supervisor filter, cross-fitted bootstrapping,
the synthetic task's planted structure, the text task and the study grid."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tinmen.agents.w2s.pipeline import (
    PipelineConfig,
    confidence,
    cross_fit_labels,
    keep_mask,
    pgr,
    student_set,
    train_student,
)
from tinmen.agents.w2s.synthetic import SyntheticConfig, make_synthetic, rung_groups
from tinmen.agents.w2s.text import parse_rung
from tinmen.agents.w2s.textdata import all_requests, helpfulness, sample_requests
from tinmen.agents.w2s.train import TrainConfig
from tinmen.graphs.w2s import conditions

from tinmen.errors import ConfigError

SMALL = SyntheticConfig(n_gt=60, n_w2s=60, n_test=60, n_help=40)
FAST = TrainConfig(epochs=1, hidden=8)


@pytest.fixture(scope="module")
def task():
    return make_synthetic(SMALL, seed=0, rungs=["1", "8"])


def test_conflict_switch_changes_what_the_student_trains_on(task):
    labels = np.full(SMALL.n_w2s, 0.7)
    keep = np.ones(SMALL.n_w2s, dtype=bool)
    x_none, p_none, _ = student_set(task, "8", labels, keep, "none")
    x_imp, p_imp, truth = student_set(task, "8", labels, keep, "implicit")
    x_exp, _, _ = student_set(task, "8", labels, keep, "explicit")
    assert len(x_none) == len(x_exp) == SMALL.n_w2s  # explicit changes the loss, not the data
    assert len(x_imp) == SMALL.n_w2s + SMALL.n_help  # implicit mixes in helpfulness examples
    help_labels = task.help_label[task.index("help")]
    assert np.array_equal(p_imp[SMALL.n_w2s:], help_labels)
    # helpfulness contradicts harmlessness on part of the space, and only there
    assert 0 < (help_labels != truth[SMALL.n_w2s:]).sum() < SMALL.n_help


def test_explicit_conflict_trains_a_different_student(task):
    labels = np.clip(task.labels("w2s") * 0.8 + 0.1, 0, 1)
    keep = np.ones(SMALL.n_w2s, dtype=bool)
    x = task.view("8", "test")
    base = PipelineConfig(weak="1", strong="8", train=FAST.model_copy(update={"seed": 3}))
    none = train_student(task, base, labels, keep, "none").proba(x)
    again = train_student(task, base, labels, keep, "none").proba(x)
    explicit = train_student(task, base.model_copy(update={"conflict_alpha": 1.0}), labels,
                             keep, "explicit").proba(x)
    assert np.array_equal(none, again)  # deterministic given the seed
    assert not np.allclose(none, explicit)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=30), st.floats(0.5, 1.0))
def test_filter_keeps_exactly_the_confident_labels(p1, threshold):
    p = np.array(p1)
    keep = keep_mask(p, threshold)
    assert np.array_equal(keep, np.maximum(p, 1 - p) >= threshold)
    assert np.all(confidence(p) >= 0.5)
    assert keep_mask(p, None).all()


def test_cross_fit_never_labels_an_example_with_a_model_trained_on_it():
    # identical inputs; fold A (even rows) says 1, fold B says 0: a model that saw an
    # example would echo its label, a cross-fitted one reports the other fold's
    x = np.zeros((40, 3), dtype=np.float32)
    labels = (np.arange(40) % 2 == 0).astype(float)
    out, test = cross_fit_labels(x, labels, TrainConfig(epochs=50, hidden=0, lr=0.2),
                                 x[:5])
    assert np.all(out[0::2] < 0.2) and np.all(out[1::2] > 0.8)
    assert np.allclose(test, 0.5, atol=0.1)  # the two folds' models averaged


def test_pgr_needs_a_ceiling_above_the_weak_model():
    assert pgr(0.6, 0.7, 0.8) == pytest.approx(0.5)
    assert pgr(0.6, 0.7, 0.6) is None and pgr(0.6, 0.7, 0.5) is None


def test_synthetic_views_and_planted_regions(task):
    assert task.views["1"].shape[1] == SMALL.dims and task.views["8"].shape[1] == 8 * SMALL.dims
    assert len(set(task.ids)) == len(task.ids)
    again = make_synthetic(SMALL, seed=0, rungs=["1", "8"])
    assert task.ids == again.ids and np.array_equal(task.views["8"], again.views["8"])
    y = task.y
    assert (task.oracle["8"] == y).mean() > (task.oracle["1"] == y).mean()  # more groups know more
    with pytest.raises(ValueError):
        rung_groups("9", SMALL.groups)
    assert rung_groups("g3", 8) == 3


def test_text_requests_are_distinct_and_seeded():
    pool = all_requests()
    assert len({row[0] for row in pool}) == len(pool) >= 600
    texts, y, split, helpful, ids = sample_requests(1, 20, 20, 20, 10)
    again = sample_requests(1, 20, 20, 20, 10)
    assert texts == again[0] and ids == again[4] and len(set(ids)) == 70
    assert set(split) == {"gt", "w2s", "test", "help"}
    # the test split holds only requests about nouns / activities never seen in training
    fold = {text: row_fold for text, _, _, row_fold in pool}
    assert {fold[t] for t, s in zip(texts, split) if s == "test"} == {"test"}
    assert {fold[t] for t, s in zip(texts, split) if s != "test"} == {"train"}
    family = {text: fam for text, _, fam, _ in pool}
    assert all(family[t] == "dual" for t, s in zip(texts, split) if s == "help")
    # helpfulness disagrees with harmlessness only on harmful dual-use requests
    assert helpfulness(1, "dual") == 0 and helpfulness(1, "intent") == 1
    assert np.all(helpful <= y)
    with pytest.raises(ValueError):
        sample_requests(0, 1000, 0, 0, 0)


def test_text_rungs():
    assert parse_rung("8").layer == 8 and parse_rung("8").spec is None
    assert parse_rung("gpt2@6").spec == "gpt2" and parse_rung("gpt2@6").layer == 6
    assert parse_rung("gpt2").layer is None
    with pytest.raises(ValueError):
        parse_rung("gpt2@x")


def test_study_grid_pairs_losses_conflicts_and_bootstrap():
    conds = conditions("synthetic", ["1", "4", "8"], ["xent", "logconf"], ["explicit"],
                       bootstrap=True, filter=0.7)
    keys = [c.key for c in conds]
    assert len(keys) == len(set(keys)) == (3 + 1) * 2
    assert "synthetic:1>4>8|xent|explicit|filter=0.7" in keys
    chain = next(c for c in conds if c.params["intermediate"])
    assert (chain.params["weak"], chain.params["intermediate"], chain.params["strong"]) == (
        "1", "4", "8")
    with pytest.raises(ConfigError):
        conditions("synthetic", ["1", "8"], ["xent"], ["none"], bootstrap=True, filter=None)
