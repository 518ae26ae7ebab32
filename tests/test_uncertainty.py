"""Uncertainty signals (models/uncertainty.py): recorded for every generate, recomputed from
the record alone; decision entropy and margin computed by the recorder."""

from __future__ import annotations

import math

import pytest
from tinmen.graphs.example import AGENT
from tinmen.graphs.session import run_session
from tinmen.models.pool import ModelPool
from tinmen.models.protocols import TOP_K, GenerateParams, Generation
from tinmen.models.registry import resolve_spec
from tinmen.models.spec import ModelSpec
from tinmen.models.uncertainty import (
    chow_quantile,
    option_probs,
    option_signals,
    quantile,
    recompute,
    signals,
    topk_entropy,
)
from tinmen.storage import analysis, orm

LP = (math.log(0.9), math.log(0.5), math.log(0.2), math.log(0.9))


def _output(**extra):
    gen = Generation("a b c d", ("a", "b", "c", "d"), LP, LP, **extra)
    return gen.to_json()


def test_g_nll_is_recorded_only_for_greedy_calls():
    greedy = signals({"temperature": 0.0}, _output())
    sampled = signals({"temperature": 0.7}, _output())
    assert greedy["g_nll"] == pytest.approx(-sum(LP)) == greedy["nll"]
    assert sampled["g_nll"] is None and sampled["nll"] == pytest.approx(-sum(LP))


def test_nll_quantiles_top1_and_mean_follow_the_token_logprobs():
    s = signals({"temperature": 0.0}, _output())
    nlls = sorted(-x for x in LP)
    assert s["nll_quantiles"]["max"] == pytest.approx(nlls[-1])
    assert s["nll_quantiles"]["q50"] == pytest.approx((nlls[1] + nlls[2]) / 2)
    assert s["top1_min"] == pytest.approx(0.2) and s["mean_nll"] == pytest.approx(-sum(LP) / 4)
    assert chow_quantile(list(LP), 1.0) == pytest.approx(-math.log(0.2))
    assert quantile([], 0.5) != quantile([], 0.5)  # NaN for no tokens


def test_entropy_is_absent_without_topk_and_a_lower_bound_with_it():
    assert signals({}, _output())["entropy_mean"] is None
    # true distribution: 0.5, 0.3, 0.1, 0.1 — top-2 kept, the rest one bucket
    full = -sum(p * math.log(p) for p in (0.5, 0.3, 0.1, 0.1))
    approx = topk_entropy([math.log(0.5), math.log(0.3)])
    assert approx == pytest.approx(-(0.5 * math.log(0.5) + 0.3 * math.log(0.3)
                                     + 0.2 * math.log(0.2)))
    assert approx <= full
    with_topk = signals({}, _output(topk_logprobs=tuple((lp,) for lp in LP)))
    assert with_topk["entropy_k"] == 1 and with_topk["entropy_max"] > 0


def test_a_model_that_gives_no_logprobs_has_no_signals():
    assert signals({}, Generation("x", token_logprobs=None, top1_logprobs=None).to_json()) \
        is None


def test_the_transformers_backend_reports_topk_logprobs(tmp_path):
    from tinmen.models.backends.transformers_lm import TransformersLM
    from tiny_models import build_tiny_lm

    lm = TransformersLM.from_spec(ModelSpec(name="t", backend="transformers-lm",
                                            source=str(build_tiny_lm(tmp_path))))
    gen = lm.generate(["the cat sat"], GenerateParams(max_new_tokens=5), [0])[0]
    assert gen.topk_logprobs is not None and len(gen.topk_logprobs) == len(gen.tokens)
    for row, top1, lp in zip(gen.topk_logprobs, gen.top1_logprobs, gen.token_logprobs):
        assert len(row) == TOP_K and row[0] == pytest.approx(top1) and lp <= row[0] + 1e-6
        assert list(row) == sorted(row, reverse=True)


def test_every_generate_records_signals_that_recompute_from_the_record(any_store):
    spec = resolve_spec('{"backend": "scripted", "source": "echo", '
                        '"options": {"word_probs": {"egg": 0.3}}}')
    result = run_session(any_store, AGENT, {"request": "how do I boil an egg"},
                         {"agent": spec}, pool=ModelPool())
    with any_store.unit_of_work() as uow:
        rows = uow.records.calls(result.session_id)
        records = uow.calls.for_session(result.session_id)
    generates = [(row, rec) for row, rec in zip(rows, records) if row.op == "generate"]
    assert generates
    for row, rec in generates:
        assert row.uncertainty is not None and row.uncertainty == recompute(rec)
        assert row.uncertainty["top1_min"] == pytest.approx(0.3)
        assert row.uncertainty["g_nll"] == pytest.approx(row.nll)
    assert all(row.uncertainty is None for row in rows if row.op != "generate")
    frame = analysis.model_calls(any_store, session=result.session_id)
    assert frame["uncertainty"].notna().sum() == len(generates)


@pytest.mark.parametrize(("scores", "entropy", "margin"), [
    ([0.7, 0.2, 0.1], -sum(p * math.log(p) for p in (0.7, 0.2, 0.1)), 0.5),  # probabilities
    ([0.0, 0.0], math.log(2), 0.0),  # margins / log-weights: softmax
    ([1.0, 0.0], None, None),  # 0/1 flags that sum to 1: read as probabilities
])
def test_option_signals_read_probabilities_as_such_and_other_scores_by_softmax(
        scores, entropy, margin):
    got = option_signals(option_probs(scores))
    if entropy is None:
        assert got == {"entropy": 0.0, "margin": 1.0}
    else:
        assert got["entropy"] == pytest.approx(entropy)
        assert got["margin"] == pytest.approx(margin)


def test_every_decision_gets_entropy_and_margin_from_its_options(store):
    result = run_session(store, AGENT, {"request": "how do I boil an egg"},
                         {"agent": resolve_spec("scripted:echo")}, pool=ModelPool())
    with store.unit_of_work() as uow:
        decisions = uow.records.decisions(result.session_id)
        assert decisions
        for d in decisions:
            probs = option_probs([o["score"] for o in d.options])
            assert d.entropy == pytest.approx(option_signals(probs)["entropy"])
            assert d.margin == pytest.approx(option_signals(probs)["margin"])
    assert {"entropy", "margin"} <= set(analysis.decisions(store).columns)


def test_a_decision_without_numeric_scores_has_no_entropy(store):
    from tinmen.graphs.recorder import decision_signals

    assert decision_signals([{"option": "a"}, {"option": "b", "score": "high"}]) == {
        "entropy": None, "margin": None}
    assert orm.Decision.entropy is not None  # the column exists (migration 0005)


def test_the_0004_schema_upgrades_to_0005_with_the_signal_columns(empty_db_url):
    from sqlalchemy import inspect
    from tinmen.storage import Store
    from tinmen.storage.db import create_store_engine, upgrade

    engine = create_store_engine(empty_db_url)
    upgrade(engine, "0004")
    assert "uncertainty" not in {c["name"] for c in inspect(engine).get_columns("model_call")}
    engine.dispose()
    store = Store.open(empty_db_url)
    columns = inspect(store.engine)
    assert "uncertainty" in {c["name"] for c in columns.get_columns("model_call")}
    assert {"entropy", "margin"} <= {c["name"] for c in columns.get_columns("decision")}
    store.close()
