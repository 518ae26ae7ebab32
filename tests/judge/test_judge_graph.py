"""The self-rewarding graph end to end on a tiny from-scratch decoder, a real SQLite store."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from tinmen.graphs.judge import AGENT, study_plan
from tinmen.graphs.judge_report import comparison, rank_inputs, session_iterations
from tinmen.graphs.replay import replay_session
from tinmen.graphs.study import run_study
from tinmen.models.pool import ModelPool
from tinmen.models.registry import parse_bindings
from tinmen.storage import orm

SMALL = {"iterations": 1, "prompts": 3, "candidates": 3, "judge_samples": 2, "eval_items": 3,
         "judgeset_items": 2, "audit_items": 2, "sft_steps": 20, "max_new_tokens": 6}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from tinmen.storage import Store

    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('judge')}/t.db")
    plan = study_plan(["srlm", "scir"], 1, SMALL, parse_bindings([], AGENT.roles))
    outcome = run_study(store, plan, pool=ModelPool(), progress=False)
    yield store, outcome.study_id
    store.close()


def _rows(store, model, *where):
    with store.unit_of_work() as uow:
        return uow.session.scalars(select(model).where(*where)).all()


def test_every_prompt_gets_a_selection_decision_and_both_beliefs(study):
    store, sid = study
    decisions = _rows(store, orm.Decision, orm.Decision.kind == "pair_selection")
    assert len(decisions) == 2 * SMALL["prompts"]  # two sessions
    beliefs = {b.subject: b for b in _rows(store, orm.Belief)}
    for d in decisions:
        if d.based_on:  # a real pair (ties have none)
            grm, irm = (beliefs[s] for s in d.based_on)
            assert set(grm.distribution) == {"chosen", "rejected"}
            assert 0 <= irm.value <= 1
            assert d.uncertainty is not None and d.uncertainty >= 0  # the symmetric KL


def test_scir_keeps_exactly_the_consistent_pairs(study):
    store, sid = study
    with store.unit_of_work() as uow:
        rows = uow.session.execute(
            select(orm.Decision, orm.Condition.key)
            .join(orm.Session, orm.Session.id == orm.Decision.session_id)
            .join(orm.Condition, orm.Condition.id == orm.Session.condition_id)).all()
        beliefs = {(b.session_id, b.subject): b.value for b in
                   uow.session.scalars(select(orm.Belief)).all()}
    for decision, variant in rows:
        if not decision.based_on:
            assert decision.chosen == "drop"
            continue
        g, i = (beliefs[(decision.session_id, s)] for s in decision.based_on)
        consistent = (g - 0.5) * (i - 0.5) > 0
        assert decision.chosen == ("keep" if variant == "srlm" or consistent else "drop")


def test_candidates_and_verdicts_go_through_the_pool_and_are_recorded(study):
    store, sid = study
    calls = _rows(store, orm.ModelCall)
    assert {c.role for c in calls} >= {"policy", "reference", "auditor", "sft_judge"}
    policy_models = {c.model for c in calls if c.role == "policy"}
    assert len(policy_models) >= 2  # re-bound to the DPO-updated checkpoint


def test_per_iteration_metrics_from_the_store(study):
    store, sid = study
    rows = session_iterations(store, sid)
    assert sorted((r["variant"], r["t"]) for r in rows) == [("scir", 0), ("scir", 1),
                                                            ("srlm", 0), ("srlm", 1)]
    first = next(r for r in rows if r["t"] == 1)
    assert 0 <= first["win_rate_vs_prev"] <= 1
    assert first["own_judge_accuracy"] is None or 0 <= first["own_judge_accuracy"] <= 1
    assert 0 <= first["sample_mean"] <= 5
    assert first["pairs_kept"] is not None and first["pairs_kept"] <= SMALL["prompts"]
    assert comparison(store, sid)["reps"] == [0]
    data = rank_inputs(store, sid)
    assert data["counts"].shape == (2, 4, 6)  # 2 judges × (2 sessions × 2 checkpoints)
    assert float(data["counts"].sum()) == 2 * 4 * SMALL["audit_items"]


def test_a_session_replays_exactly_without_weights(study):
    store, sid = study
    row = _rows(store, orm.Session, orm.Session.study_id == sid)[0]
    session_id = row.id
    # every option is stored resolved, so changing a default later cannot change a replay
    assert set(row.inputs["options"]) >= set(AGENT.options.model_fields)
    report = replay_session(store, session_id)
    assert report.identical, report.differences or report.divergence


def test_oracle_selection_pairs_only_what_the_oracle_orders(tmp_path):
    """``selection=oracle`` (the perfect-judge ablation): every pair is right by the oracle."""
    from tinmen.storage import Store

    store = Store.open(f"sqlite:///{tmp_path}/o.db")
    options = {**SMALL, "prompts": 6, "candidates": 4, "selection": "oracle"}
    plan = study_plan(["srlm"], 1, options, parse_bindings([], AGENT.roles))
    sid = run_study(store, plan, pool=ModelPool(), progress=False).study_id
    pairs = _rows(store, orm.Prediction, orm.Prediction.model == "pair",
                  orm.Prediction.label.is_not(None))
    assert pairs and all(p.label == 1.0 for p in pairs)
    assert session_iterations(store, sid)[1]["pair_precision"] == 1.0
    store.close()


def test_sessions_in_parallel_threads_load_their_checkpoints_safely(tmp_path):
    """Two judge sessions in threads load different checkpoints at the same time; loads are
    serialised (transformers builds models under process-global contexts)."""
    from tinmen.storage import Store

    store = Store.open(f"sqlite:///{tmp_path}/p.db")
    plan = study_plan(["srlm"], 3, {**SMALL, "prompts": 4}, parse_bindings([], AGENT.roles))
    outcome = run_study(store, plan, pool=ModelPool(), workers=3, progress=False,
                        stop_on_error=False)
    assert outcome.failed == [] and outcome.ran == 3
    store.close()
