"""The Simplex ranking model recovers a clear ranking; the bootstrap baseline; statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tinmen.agents.judge.ranking import bayes_rank, bootstrap_rank, counts_table, ranks_of
from tinmen.agents.judge.stats import kendall, pairwise_accuracy, spearman
from tinmen.agents.judge.synthetic import judge_matrices, simulate


def _clear_setting(seed: int = 0) -> torch.Tensor:
    """Three candidates whose true scores sit at 1, 3 and 5, two decent judges."""
    rng = np.random.default_rng(seed)
    pis = np.array([[.05, .8, .1, .05, 0, 0], [0, .05, .1, .7, .1, .05],
                    [0, 0, 0, .05, .15, .8]])
    thetas = np.stack([judge_matrices()["fair"], judge_matrices()["lenient"]])
    return simulate(rng, pis, thetas, items=30)


def test_bayesian_ranking_recovers_a_clear_ranking():
    pytest.importorskip("pyro")
    counts = _clear_setting()
    ranked = bayes_rank(counts, ["low", "mid", "high"], steps=300, samples=200, seed=0)
    by_name = {r.candidate: r for r in ranked}
    assert by_name["high"].mean_rank < by_name["mid"].mean_rank < by_name["low"].mean_rank
    assert by_name["high"].covers(1) and by_name["mid"].covers(2) and by_name["low"].covers(3)
    assert by_name["high"].p_best > 0.9
    assert by_name["high"].mean_score > by_name["low"].mean_score + 2


def test_bootstrap_baseline_recovers_it_too():
    ranked = bootstrap_rank(_clear_setting(), ["low", "mid", "high"], draws=200)
    assert [r.lo for r in ranked] == [3, 2, 1] and [r.hi for r in ranked] == [3, 2, 1]


def test_counts_table_and_ranks():
    counts = counts_table([0, 0, 1], [1, 1, 0], [5, 5, 2], (2, 2, 6))
    assert counts[0, 1, 5] == 2 and counts[1, 0, 2] == 1 and counts.sum() == 3
    assert ranks_of(np.array([0.1, 0.9, 0.5])).tolist() == [3, 1, 2]


def test_agreement_statistics():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert kendall([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    # groups a and b; in a the judge orders (1 > 0) correctly, in b wrongly, one judge tie
    acc = pairwise_accuracy(["a", "a", "b", "b", "b"], [1, 0, 1, 0, 0], [.9, .1, .2, .8, .2])
    assert acc == pytest.approx((1 + 0 + 0.5) / 3)


HAND_RESULTS = [  # (x, y, pearson, spearman, kendall) from the hand-written versions
    ([1, 2, 3, 4, 5], [2, 1, 4, 3, 5], 0.8, 0.8, 0.6),
    ([1, 1, 2, 3, 3, 4], [0, 1, 1, 2, 5, 5], 0.8664002254439633, 0.9090909090909091,
     0.8461538461538461),
    ([3, 1, 2], [1, 1, 1], None, None, None),
    ([1], [1], None, None, None),
]


@pytest.mark.parametrize(("x", "y", "r", "rho", "tau"), HAND_RESULTS)
def test_scipy_correlations_equal_the_former_hand_written_numbers(x, y, r, rho, tau):
    from tinmen.agents.judge.stats import pearson

    for got, want in ((pearson(x, y), r), (spearman(x, y), rho), (kendall(x, y), tau)):
        assert got == (None if want is None else pytest.approx(want, abs=1e-12))
