"""Pair selection (highest vs lowest, ties dropped) and the SCIR agreement rule."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tinmen.agents.judge.pairs import (
    PairBeliefs,
    agree,
    keep_pair,
    select_pair,
    similarity,
    symmetric_kl,
)


def test_highest_vs_lowest():
    pair = select_pair([3.0, 4.67, 1.33, 4.0])
    assert (pair.chosen, pair.rejected) == (1, 2)
    assert pair.margin == pytest.approx(3.34)


def test_ties_give_no_pair():
    assert select_pair([3.0, 3.0, 3.0, 3.0]) is None


def test_unscored_candidates_are_left_out():
    assert select_pair([None, 2.0, None]) is None  # one scored candidate: nothing to pair
    pair = select_pair([None, 2.0, float("nan"), 5.0])
    assert (pair.chosen, pair.rejected) == (3, 1)


def test_equal_extremes_pick_the_first_deterministically():
    pair = select_pair([5.0, 1.0, 5.0, 1.0])
    assert (pair.chosen, pair.rejected) == (0, 1)


@given(st.lists(st.one_of(st.none(), st.floats(0, 5)), min_size=2, max_size=8))
def test_chosen_is_never_below_rejected(scores):
    pair = select_pair(scores)
    real = [s for s in scores if s is not None]
    if pair is None:
        assert len(real) < 2 or max(real) == min(real)
    else:
        assert pair.chosen_score == max(real) and pair.rejected_score == min(real)
        assert pair.chosen_score > pair.rejected_score


@pytest.mark.parametrize("p_grm,p_irm,consistent", [
    (0.9, 0.6, True), (0.2, 0.1, True), (0.9, 0.4, False), (0.3, 0.7, False),
    (0.9, 0.5, False),  # an undecided implicit reward does not agree
])
def test_scir_keeps_only_consistent_pairs(p_grm, p_irm, consistent):
    beliefs = PairBeliefs(p_grm=p_grm, p_irm=p_irm)
    assert agree(p_grm, p_irm) is consistent
    assert keep_pair("scir", beliefs) is consistent
    assert keep_pair("srlm", beliefs) is True  # plain self-rewarding keeps every pair


@given(st.floats(0.001, 0.999), st.floats(0.001, 0.999))
def test_symmetric_kl_is_symmetric_and_zero_only_on_agreement(p, q):
    assert symmetric_kl(p, q) == pytest.approx(symmetric_kl(q, p))
    assert symmetric_kl(p, q) >= 0
    assert symmetric_kl(p, p) == pytest.approx(0.0, abs=1e-12)
    if abs(p - q) > 0.05:
        assert symmetric_kl(p, q) > 0


def test_symmetric_kl_hand_value():
    expected = 0.8 * math.log(0.8 / 0.4) + 0.2 * math.log(0.2 / 0.6) + \
        0.4 * math.log(0.4 / 0.8) + 0.6 * math.log(0.6 / 0.2)
    assert PairBeliefs(p_grm=0.8, p_irm=0.4).sym_kl == pytest.approx(expected)
    assert PairBeliefs(p_grm=0.8, p_irm=0.4).disagreement == pytest.approx(0.4)


def test_similarity_of_chosen_and_rejected():
    assert similarity("1 2 3", "1 2 3") == 1.0
    assert similarity("abc", "xyz") == 0.0
    assert 0 < similarity("abcd", "abce") < 1
