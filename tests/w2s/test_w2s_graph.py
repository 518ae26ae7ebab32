"""Whole small runs of the w2s graph: every model's predictions, beliefs and decisions in the
store; the text ladder on a tiny from-config LM served by the pool; exact replay."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from tinmen.graphs.replay import replay_session
from tinmen.graphs.session import run_session
from tinmen.graphs.w2s import AGENT
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec
from tinmen.storage import orm

SIZES = {"n_gt": 80, "n_w2s": 60, "n_test": 50, "n_help": 30}
OPTIONS = {"weak": "1", "intermediate": "4", "strong": "8", "conflict": "explicit",
           "filter": 0.6, "synthetic": SIZES, "train": {"epochs": 2, "hidden": 16}}


def _counts(store, sid):
    with store.unit_of_work() as uow:
        db = uow.session
        preds = dict(db.execute(select(orm.Prediction.model, func.count())
                                .where(orm.Prediction.session_id == sid,
                                       orm.Prediction.split == "test")
                                .group_by(orm.Prediction.model)).all())
        beliefs = db.scalar(select(func.count()).select_from(orm.Belief)
                            .where(orm.Belief.session_id == sid))
        decisions = db.execute(select(orm.Decision.chosen).where(
            orm.Decision.session_id == sid)).scalars().all()
        steps = db.execute(select(orm.Step.node).where(orm.Step.session_id == sid)
                           .order_by(orm.Step.index)).scalars().all()
    return preds, beliefs, decisions, steps


def test_small_synthetic_run_stores_every_models_predictions(store):
    result = run_session(store, AGENT, {"data_seed": 1}, {}, options=OPTIONS)
    assert result.status == "completed"
    preds, beliefs, decisions, steps = _counts(store, result.session_id)
    assert steps == ["split", "train_weak", "weak_labels", "train_intermediate",
                     "train_student", "train_strong", "evaluate"]
    assert preds == {m: SIZES["n_test"] for m in (
        "weak", "intermediate", "w2s", "w2s_conflict", "strong_ceiling", "oracle_weak",
        "oracle_strong", "oracle_intermediate")}
    assert beliefs == SIZES["n_w2s"]  # one weak-label belief per supervised example
    assert len(decisions) == SIZES["n_w2s"] and set(decisions) <= {"keep", "drop"}
    assert 0 < result.output["accuracy"]["strong_ceiling"] <= 1


def test_beliefs_hold_the_weak_label_and_its_confidence(store):
    result = run_session(store, AGENT, {"data_seed": 2}, {},
                         options={**OPTIONS, "intermediate": None, "filter": None,
                                  "conflict": "none"})
    with store.unit_of_work() as uow:
        rows = uow.session.execute(select(orm.Belief).where(
            orm.Belief.session_id == result.session_id)).scalars().all()
        decisions = uow.session.scalar(select(func.count()).select_from(orm.Decision).where(
            orm.Decision.session_id == result.session_id))
        example = rows[0]
        assert example.subject.startswith("weak_label/syn2-")
        p, c = example.value["p_harmful"], example.value["confidence"]
        assert c == pytest.approx(max(p, 1 - p))
        assert example.distribution["harmful"] == pytest.approx(p)
    assert decisions == 0  # no filter, no keep/drop decisions
    assert set(result.output["accuracy"]) == {"weak", "w2s", "strong_ceiling"}


def test_same_data_seed_gives_the_same_example_ids_and_ceilings(store):
    opts = {**OPTIONS, "intermediate": None, "filter": None}
    a = run_session(store, AGENT, {"data_seed": 3}, {}, options={**opts, "loss": "xent"})
    b = run_session(store, AGENT, {"data_seed": 3}, {}, options={**opts, "loss": "logconf"})
    with store.unit_of_work() as uow:
        def ceiling(sid):
            return uow.session.execute(select(orm.Prediction.example_id,
                                              orm.Prediction.probability)
                                       .where(orm.Prediction.session_id == sid,
                                              orm.Prediction.model == "strong_ceiling")
                                       .order_by(orm.Prediction.example_id)).all()
        assert ceiling(a.session_id) == ceiling(b.session_id)


def test_replay_reproduces_beliefs_and_decisions(store):
    result = run_session(store, AGENT, {"data_seed": 4}, {}, options=OPTIONS)
    report = replay_session(store, result.session_id)
    assert report.identical, report.differences


def test_text_ladder_on_a_tiny_lm_from_the_pool(store, tmp_path):
    from tiny_models import build_tiny_lm

    path = build_tiny_lm(tmp_path / "lm", layers=4)
    spec = resolve_spec(f"transformers-lm:{path}")
    pool = ModelPool()
    options = {"task": "text", "weak": "1", "strong": "4", "conflict": "implicit",
               "text": {"n_gt": 24, "n_w2s": 24, "n_test": 20, "n_help": 10},
               "train": {"epochs": 2}, "ladder": ["1", "2", "4"]}
    result = run_session(store, AGENT, {"data_seed": 0}, {"lm": spec}, pool=pool,
                         options=options)
    preds, beliefs, _, _ = _counts(store, result.session_id)
    assert preds == {"weak": 20, "w2s": 20, "w2s_conflict": 20, "strong_ceiling": 20}
    assert beliefs == 24
    assert pool.loads[spec.key] == 1  # the frozen LM was loaded once, by the pool
    with store.unit_of_work() as uow:
        ids = uow.session.execute(select(orm.Prediction.example_id).where(
            orm.Prediction.session_id == result.session_id)).scalars().all()
    assert all(i.startswith("req-") for i in ids)


def test_text_ladder_without_a_model_is_a_user_error(store):
    from tinmen.errors import ConfigError

    with pytest.raises(ConfigError, match="--model lm="):
        run_session(store, AGENT, {"data_seed": 0}, {},
                    options={"task": "text", "weak": "1", "strong": "2"})


def _trained_on(store, sid, model):
    with store.unit_of_work() as uow:
        return set(uow.session.scalars(select(orm.Prediction.example_id).where(
            orm.Prediction.session_id == sid, orm.Prediction.model == model,
            orm.Prediction.split == "train")).all())


def test_weak_model_and_strong_ceiling_train_on_disjoint_ground_truth_halves(store):
    from tinmen.agents.w2s.synthetic import SyntheticConfig, make_synthetic

    opts = {**OPTIONS, "intermediate": None, "filter": None, "conflict": "none"}
    result = run_session(store, AGENT, {"data_seed": 6}, {}, options=opts)
    task = make_synthetic(SyntheticConfig(**SIZES), 6, ["1", "8"])
    weak = _trained_on(store, result.session_id, "weak")
    ceiling = _trained_on(store, result.session_id, "strong_ceiling")
    assert weak == set(task.ids_of("gt"))  # the first half
    assert ceiling == set(task.ids_of("w2s"))  # the second half: the student's examples
    assert not weak & ceiling
    with store.unit_of_work() as uow:  # the student's weak labels are on the ceiling's half
        labelled = {s.removeprefix("weak_label/") for s in uow.session.scalars(
            select(orm.Belief.subject).where(orm.Belief.session_id == result.session_id))}
    assert labelled == ceiling


def test_ceiling_half_gt_puts_the_ceiling_on_the_weak_models_half(store):
    opts = {**OPTIONS, "intermediate": None, "filter": None, "conflict": "none",
            "ceiling_half": "gt"}
    result = run_session(store, AGENT, {"data_seed": 6}, {}, options=opts)
    assert _trained_on(store, result.session_id, "strong_ceiling") == \
        _trained_on(store, result.session_id, "weak")
