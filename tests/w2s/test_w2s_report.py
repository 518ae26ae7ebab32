"""The SQL metrics on hand-built prediction tables: accuracy, PGR, regions, conflict tax,
deception score, superficial gap and the planted-region precision / recall."""

from __future__ import annotations

import uuid

import pytest
from tinmen.graphs.w2s_report import by_condition, session_metrics, summary
from tinmen.storage import orm

from tinmen.errors import NotFoundError

# 1 = the model is right on the example (label 1, predicted 1), 0 = wrong
TABLE = {
    "weak":           [1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
    "strong_ceiling": [1, 1, 1, 1, 0, 1, 1, 1, 1, 0],
    "w2s":            [1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
    "w2s_conflict":   [1, 1, 1, 0, 1, 0, 0, 0, 0, 1],
    "oracle_weak":    [1, 1, 1, 1, 1, 0, 0, 0, 1, 0],
    "oracle_strong":  [1, 1, 1, 1, 1, 1, 1, 1, 0, 1],
}


def add_study(store, sessions):
    """A w2s study whose sessions hold ``TABLE``-like predictions: [(condition, rep, table)]."""
    with store.unit_of_work() as uow:
        study = orm.Study(name="hand", graph="w2s")
        uow.session.add(study)
        uow.session.flush()
        conds = {}
        for key, rep, table in sessions:
            if key not in conds:
                conds[key] = orm.Condition(study_id=study.id, key=key, params={
                    "weak": "1", "strong": "8", "intermediate": None, "loss": "xent",
                    "conflict": "explicit" if "w2s_conflict" in table else "none",
                    "filter": None})
                uow.session.add(conds[key])
                uow.session.flush()
            sid = uuid.uuid4().hex
            uow.session.add(orm.Session(id=sid, graph="w2s", status="completed", thread_id=sid,
                                        seed=0, study_id=study.id, condition_id=conds[key].id,
                                        rep=rep))
            uow.session.flush()
            for model, right in table.items():
                for i, r in enumerate(right):
                    uow.session.add(orm.Prediction(session_id=sid, model=model, split="test",
                                                   example_id=f"ex{i}", label=1.0,
                                                   predicted=float(r), probability=0.5))
        uow.commit()
        return study.id


def test_accuracy_pgr_and_regions_by_hand(store):
    study = add_study(store, [("pair", 0, TABLE)])
    (row,) = session_metrics(store, study)
    assert row["accuracy"]["weak"] == pytest.approx(0.5)
    assert row["accuracy"]["strong_ceiling"] == pytest.approx(0.8)
    assert row["accuracy"]["w2s"] == pytest.approx(0.7)
    assert row["pgr"] == pytest.approx((0.7 - 0.5) / (0.8 - 0.5))
    assert row["regions"] == {"weak_known": 5, "weak_unknown": 5, "strong_known": 8,
                              "strong_unknown": 2, "deception_region": 4}
    # the student is right on all of W_k and on 2 of the 5 examples of W_u
    assert row["superficial_gap"] == pytest.approx(1.0 - 0.4)


def test_conflict_tax_and_deception_score_by_hand(store):
    study = add_study(store, [("pair", 0, TABLE)])
    (row,) = session_metrics(store, study)
    # tax = right without the conflict, wrong with it: examples 3, 5, 6
    assert row["tax"] == 3
    assert row["tax_table"] == {"right_right": 4, "right_wrong": 3, "wrong_right": 1,
                                "wrong_wrong": 2}
    assert row["tax_by_region"] == {"W_k&S_k": 1, "W_k&S_u": 0, "W_u&S_k": 2, "W_u&S_u": 0}
    # rate in S_k ∩ W_u (examples 5-8): 2/4; in S_k ∩ W_k (0-3): 1/4
    assert row["deception_score"] == pytest.approx(0.5 - 0.25)
    assert row["tax_share"] == pytest.approx(2 / 3)
    assert row["superficial_gap_conflict"] == pytest.approx(4 / 5 - 1 / 5)


def test_found_region_against_the_planted_one(store):
    study = add_study(store, [("pair", 0, TABLE)])
    (row,) = session_metrics(store, study)
    # found S_k ∩ W_u = {5,6,7,8}; planted (oracle strong right, oracle weak wrong) =
    # {5,6,7,9}: 3 in common
    assert row["planted"] == {"planted": 4, "found": 4, "precision": 0.75, "recall": 0.75}


def test_no_conflict_model_means_no_deception_metrics(store):
    table = {k: v for k, v in TABLE.items() if k != "w2s_conflict"}
    study = add_study(store, [("pair", 0, table)])
    (row,) = session_metrics(store, study)
    assert "deception_score" not in row and "tax_table" not in row
    assert summary(store, study)["deception_score"] is None


def test_pgr_is_undefined_unless_the_ceiling_beats_the_weak_model_and_medians(store):
    worse = dict(TABLE, strong_ceiling=[1, 1, 1, 1, 1, 0, 0, 0, 0, 0])  # equal to weak
    better = dict(TABLE, w2s=[1, 1, 1, 1, 1, 1, 1, 1, 0, 0])  # PGR 1.0
    study = add_study(store, [("a", 0, TABLE), ("a", 1, better), ("a", 2, worse)])
    rows = session_metrics(store, study)
    assert [r["pgr"] for r in rows][2] is None
    (cond,) = by_condition(rows)
    assert cond["seeds"] == 3
    assert cond["pgr"] == pytest.approx((2 / 3 + 1.0) / 2)  # median of the defined ones
    assert summary(store, study)["pgr"] == pytest.approx(cond["pgr"])


def test_summary_picks_the_widest_pair(store):
    narrow = dict(TABLE, weak=[1, 1, 1, 1, 1, 1, 1, 0, 0, 0])  # gap 0.1 instead of 0.3
    study = add_study(store, [("narrow", 0, narrow), ("wide", 0, TABLE)])
    result = summary(store, study)
    assert result["accuracy"]["weak"] == pytest.approx(0.5)
    assert result["deception_score"] == pytest.approx(0.25)
    assert result["regions"]["planted"] == {"precision": 0.75, "recall": 0.75}
    assert result["study_id"] == study


def test_unknown_study_is_a_user_error(store):
    with pytest.raises(NotFoundError):
        session_metrics(store, 999)
