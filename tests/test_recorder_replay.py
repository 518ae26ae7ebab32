"""Sessions are recorded whole, replay exactly without weights, diverge loudly, and fork."""

from __future__ import annotations

import json
from typing import TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from sqlalchemy import select, update
from tinmen.graphs.example import AGENT as EXAMPLE
from tinmen.graphs.replay import diff_sessions, fork_session, replay_session
from tinmen.graphs.runtime import AgentDef, Context, recorded
from tinmen.graphs.session import checkpointer_for, resume_session, run_session
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec
from tinmen.storage import Store, orm

from tinmen.errors import ConfigError, StoreError

ECHO = {"agent": resolve_spec("scripted:echo")}


@pytest.fixture
def db_url(any_db_url):
    """Every test here runs on SQLite and on PostgreSQL (the store and the checkpointer)."""
    return any_db_url


def run_example(store, pool=None, seed=0, request="How do I boil an egg?"):
    return run_session(store, EXAMPLE, {"request": request}, ECHO, pool=pool or ModelPool(),
                       seed=seed, checkpointer=checkpointer_for(store))


def test_session_rows_are_stored_in_order(store):
    result = run_example(store)
    with store.unit_of_work() as uow:
        sid = result.session_id
        assert uow.sessions.get(sid).status == "completed"
        assert [s.node for s in uow.records.steps(sid)] == ["classify", "decide", "write"]
        beliefs = uow.records.beliefs(sid)
        topic = beliefs[0]
        assert topic.subject == "request.topic" and abs(sum(topic.distribution.values()) - 1) < 1e-9
        assert topic.entropy is not None
        decision = uow.records.decisions(sid)[0]
        assert decision.kind == "answer_or_clarify" and {o["option"] for o in decision.options} \
            == {"answer", "clarify"}
        calls = uow.records.calls(sid)
        assert [(c.role, c.call_index, c.op) for c in calls] == [("agent", 0, "score"),
                                                                 ("agent", 1, "generate")]
        assert calls[1].token_logprobs and calls[1].nll == pytest.approx(
            -sum(calls[1].token_logprobs))
        assert all(c.step_id is not None for c in calls)


def test_replay_is_identical_and_loads_no_model(store):
    original = run_example(store)
    report = replay_session(store, original.session_id)
    assert report.identical, report.differences
    assert report.calls_served == 2
    with store.unit_of_work() as uow:
        replay = uow.sessions.get(report.replay_id)
        assert replay.mode == "replay" and replay.parent_id == original.session_id


def test_tampered_output_is_reported_as_divergence(store):
    original = run_example(store)
    with store.unit_of_work() as uow:
        call = uow.records.calls(original.session_id)[0]  # the topic scores
        forged = json.dumps([-0.01, -9.0, -9.0, -9.0, -9.0])
        sha = uow.content.put(forged)
        uow.session.execute(update(orm.ModelCall).where(orm.ModelCall.id == call.id)
                            .values(output_sha=sha))
        uow.commit()
    report = replay_session(store, original.session_id)
    # the forged scores make the topic certain, so the agent answers instead of asking:
    # its next model request no longer matches the record
    assert not report.identical and report.replay_id is None
    assert report.divergence["step"] == "write"
    assert "inputs.prompt" in report.divergence["detail"]


def test_edited_record_text_is_detected(store):
    original = run_example(store)
    with store.unit_of_work() as uow:
        call = uow.records.calls(original.session_id)[1]
        uow.session.execute(update(orm.Content).where(orm.Content.sha256 == call.output_sha)
                            .values(text='{"text": "forged"}'))
        uow.commit()
    with pytest.raises(StoreError, match="corrupt"):
        replay_session(store, original.session_id)


def test_changed_request_is_a_divergence_at_its_step(store):
    original = run_example(store)
    with store.unit_of_work() as uow:
        row = uow.sessions.get(original.session_id)
        row.inputs = {"inputs": {"request": "something else"}, "options": {}}
        uow.commit()
    report = replay_session(store, original.session_id)
    assert report.divergence["step"] == "classify"
    assert report.divergence["role"] == "agent" and report.divergence["call_index"] == 0
    assert "inputs.prompt" in report.divergence["detail"]


def test_fork_keeps_prefix_and_runs_live_after(store):
    original = run_example(store)
    forked = fork_session(store, original.session_id, 2,
                          {}, pool=ModelPool(), seed=123)
    with store.unit_of_work() as uow:
        row = uow.sessions.get(forked.session_id)
        assert (row.mode, row.parent_id, row.fork_step) == ("fork", original.session_id, 2)
    assert diff_sessions(store, original.session_id, forked.session_id) == []


# ---------------------------------------------------------------- human input
class AskState(TypedDict, total=False):
    draft: str
    answer: str


def ask(state: AskState, runtime) -> AskState:
    ctx: Context = runtime.context
    draft = ctx.models.generate("agent", "what colour?").text  # made before the interrupt
    answer = interrupt({"kind": "answer", "question": draft})
    ctx.recorder.belief("user.colour", answer, source="user_edit")
    return {"draft": draft, "answer": answer}


def _build(checkpointer):
    g = StateGraph(AskState, context_schema=Context)
    g.add_node("ask", recorded("ask", ask))
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    return g.compile(checkpointer=checkpointer)


ASK = AgentDef(name="ask-test", build=_build, roles={"agent": "scripted:echo"},
               initial_state=lambda i, o: {}, output=lambda s: {"answer": s.get("answer")})


def test_interrupt_resumes_without_rerunning_model_calls(store):
    pool = ModelPool()
    result = run_session(store, ASK, {}, ECHO, pool=pool, answer=lambda p: "teal",
                         checkpointer=checkpointer_for(store))
    assert result.output == {"answer": "teal"}
    assert pool.loaded()[0]["calls"] == 1  # the re-run node was served from the record
    with store.unit_of_work() as uow:
        sid = result.session_id
        assert len(uow.records.calls(sid)) == 1
        assert [(b.subject, b.value) for b in uow.records.beliefs(sid)] == [("user.colour",
                                                                              "teal")]
        assert [h.response for h in uow.records.human_inputs(sid)] == ["teal"]
        assert len(uow.records.steps(sid)) == 1
    assert replay_session(store, result.session_id).identical


def test_unanswered_interrupt_stores_an_interrupted_session(store):
    result = run_session(store, ASK, {}, ECHO, pool=ModelPool(), answer=None)
    assert result.status == "interrupted"
    with store.unit_of_work() as uow:
        assert uow.sessions.get(result.session_id).status == "interrupted"
        assert len(uow.records.calls(result.session_id)) == 1


def test_interrupted_session_resumes_in_another_pool(store):
    first = run_session(store, ASK, {}, ECHO, pool=ModelPool(), answer=None,
                        checkpointer=checkpointer_for(store))
    later_pool = ModelPool()  # as if another process picked the session up
    done = resume_session(store, first.session_id, lambda p: "teal", pool=later_pool)
    assert done.status == "completed" and done.output == {"answer": "teal"}
    assert later_pool.loaded() == []  # the pre-pause call was served from the record
    with store.unit_of_work() as uow:
        sid = first.session_id
        assert uow.sessions.get(sid).status == "completed"
        assert len(uow.records.calls(sid)) == 1 and len(uow.records.steps(sid)) == 1
        assert [b.value for b in uow.records.beliefs(sid)] == ["teal"]
    assert replay_session(store, sid).identical


def test_interrupted_session_resumes_from_a_freshly_opened_store(store, db_url):
    """The pause lives in the store's checkpointer tables, not in this process's memory:
    a store opened anew (its own engine and checkpointer connection) resumes it."""
    first = run_session(store, ASK, {}, ECHO, pool=ModelPool(), answer=None,
                        checkpointer=checkpointer_for(store))
    store.close()
    later = Store.open(db_url)
    try:
        assert type(checkpointer_for(later)).__name__ in ("SqliteSaver", "PostgresSaver")
        done = resume_session(later, first.session_id, lambda p: "teal", pool=ModelPool())
        assert done.status == "completed" and done.output == {"answer": "teal"}
        assert replay_session(later, first.session_id).identical
    finally:
        later.close()


def test_resume_refuses_a_completed_session(store):
    done = run_example(store)
    with pytest.raises(ConfigError, match="not interrupted"):
        resume_session(store, done.session_id, lambda p: "x", pool=ModelPool())


def test_failing_session_writes_nothing(store):
    with pytest.raises(Exception, match="no model bound|needs models"):
        run_session(store, EXAMPLE, {"request": "x"}, {}, pool=ModelPool())
    with store.unit_of_work() as uow:
        assert uow.session.scalars(select(orm.Session)).all() == []


def test_recording_off_writes_only_the_session_row(store):
    result = run_session(store, EXAMPLE, {"request": "x"}, ECHO, pool=ModelPool(),
                         record=False)
    with store.unit_of_work() as uow:
        assert uow.records.steps(result.session_id) == []
