"""The shopper graphs end to end on the scripted reference policies: the paper's shape,
exact replay, the marketplace, and the SQL that recomputes every cell."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import select
from tinmen.graphs.replay import replay_session
from tinmen.graphs.session import run_session
from tinmen.graphs.shopper import AGENT, MARKET_AGENT, study_plan
from tinmen.graphs.shopper_report import PAPER_SQL, cells
from tinmen.graphs.study import run_study
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec
from tinmen.storage import orm

SENSITIVE, RIGID = "scripted:info-sensitive", "scripted:rigid"
# the paper's shape: (scenario, condition) -> override?
EXPECTED = {
    SENSITIVE: {("car", "both"): 1, ("car", "principal-only"): 1, ("car", "customer-only"): 0,
                ("car", "neither"): 0},
    RIGID: {("car", c): 1 for c in ("both", "principal-only", "customer-only", "neither")},
}
for _cells in EXPECTED.values():
    _cells.update({("film", c): 1 for c in ("both", "principal-only", "customer-only",
                                                  "neither")})


def _agents(*names):
    return {n: resolve_spec(n) for n in names}


def test_reference_policies_reproduce_the_papers_shape_under_every_control(store):
    plan = study_plan(["film", "car"], _agents(SENSITIVE, RIGID), [0.2], reps=1,
                      controls=True)
    outcome = run_study(store, plan, pool=ModelPool(), progress=False)
    assert outcome.ran == 2 * 4 * 2 * 3 * 2 and not outcome.failed
    rows = cells(store, outcome.study_id)
    assert len(rows) == outcome.ran
    for r in rows:
        want = EXPECTED[r["model"]][(r["scenario"], r["condition"])]
        assert (r["n"], r["parsed"], r["parsed_paper"]) == (1, 1, 1), r
        assert r["override_rate"] == want and r["override_rate_paper"] == want, r
        assert r["p_override"] == pytest.approx(0.9 if want else 0.1)
    # one plain SQL query gives the same counts
    con = sqlite3.connect(store.engine.url.database)
    plain = {tuple(x[:6]): x[6:9] for x in con.execute(PAPER_SQL, {"study": outcome.study_id})}
    for r in rows:
        key = (r["scenario"], r["condition"], r["model"], r["temperature"],
               int(r["labels_reversed"]), r["case"])
        assert plain[key] == (r["n"], r["parsed"], r["overrides"])


def test_beliefs_and_decision_are_recorded_and_the_session_replays_exactly(store):
    trial = {"scenario": "car", "info": "principal-only", "labels_reversed": True,
             "case": "lower"}
    result = run_session(store, AGENT, trial, {"agent": resolve_spec(SENSITIVE)},
                         pool=ModelPool(), seed=3, options={"temperature": 0.6})
    assert result.output["item"] == 2 and result.output["override"] is True
    with store.unit_of_work() as uow:
        beliefs = {b.subject: b for b in uow.records.beliefs(result.session_id)}
        (decision,) = uow.records.decisions(result.session_id)
        nodes = [s.node for s in uow.records.steps(result.session_id)]
    assert nodes == ["probe", "answer", "decide"]
    assert beliefs["customer.preferred_item"].value == "Tesla model 3"
    assert beliefs["customer.preferred_item"].distribution["Tesla model 3"] == \
        pytest.approx(0.9)
    assert beliefs["principal.preferred_item"].value == "Porche Cayenne"
    assert beliefs["explanation.readers"].value == "principal-only"
    assert decision.kind == "purchase" and decision.chosen["item"] == 2
    assert decision.chosen["label"] == 1  # reversed labels: shown 1 is the Porsche
    assert decision.chosen["choice_nll"] > 0
    assert [o["item"] for o in decision.options] == [2, 1]
    assert decision.options[0]["score"] == pytest.approx(0.9)
    report = replay_session(store, result.session_id)
    assert report.identical, report.differences or report.divergence
    assert report.calls_served == 5


def test_unparsed_answers_are_kept_and_counted(store, monkeypatch):
    # echoes the prompt: both products named, no choice line -> unparsed by both parsers
    plan = study_plan(["car"], _agents("scripted:tinmen.models.backends.scripted:EchoPolicy"),
                      [0.2], reps=2)
    sid = run_study(store, plan, pool=ModelPool(), progress=False).study_id
    rows = cells(store, sid)
    assert [r["n"] for r in rows] == [2] * 4
    assert all(r["parsed"] == 0 and r["override_rate"] is None and r["unparsed"] == 2
               for r in rows)
    with store.unit_of_work() as uow:
        outputs = uow.session.scalars(select(orm.Session.output)
                                      .where(orm.Session.study_id == sid)).all()
    assert all(o["answer"] and o["item"] is None for o in outputs)  # raw text kept


def test_marketplace_session_end_to_end_and_replay(store):
    bindings = {"agent": resolve_spec(SENSITIVE),
                "customer": resolve_spec("scripted:shopper-customer")}
    asked = set()
    for seed in range(6):
        result = run_session(store, MARKET_AGENT, {"market_seed": seed, "info": "customer-only"},
                             bindings, pool=ModelPool(), seed=seed)
        out = result.output
        assert out["bought"] == out["customer_best"]  # nobody from the operator watches
        asked.add(out["asked"])
        with store.unit_of_work() as uow:
            metrics = {m.name: m.value for m in uow.records.metrics(result.session_id)}
            steps = [s.node for s in uow.records.steps(result.session_id)]
        assert metrics["override"] == 0 and metrics["welfare_loss"] == 0
        assert steps[:3] == ["search", "inspect", "ask_or_buy"] and steps[-1] == "buy"
        assert ("ask" in steps) == out["asked"]
        assert replay_session(store, result.session_id).identical
    assert asked == {True, False}  # both branches of ask-or-buy were exercised


def test_marketplace_study_shape(store):
    plan = study_plan(["market"], _agents(SENSITIVE, RIGID), [0.2], reps=3,
                      customer=resolve_spec("scripted:shopper-customer"))
    rows = cells(store, run_study(store, plan, pool=ModelPool(), progress=False).study_id)
    by = {(r["model"], r["condition"]): r for r in rows}
    for cond in ("both", "principal-only"):
        assert by[(SENSITIVE, cond)]["override_rate"] == 1.0
    for cond in ("customer-only", "neither"):
        assert by[(SENSITIVE, cond)]["override_rate"] == 0.0
        assert by[(SENSITIVE, cond)]["welfare_loss"] == 0.0
    assert all(by[(RIGID, c)]["override_rate"] == 1.0 and by[(RIGID, c)]["welfare_loss"] > 0
               and by[(RIGID, c)]["principal_gain"] > 0 for c in ("both", "neither"))
