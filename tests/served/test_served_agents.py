"""The reference agents with their LLM roles on a served model (vLLM's OpenAI-compatible
server, a tiny random model: the content is junk, the point is that every role, option
score and free-text call goes through the server, is recorded, and replays without it).

The weak-to-strong agent reads hidden states, which a served model gives from a pooling
server: tests/served/test_served_hidden.py."""

from __future__ import annotations

from sqlalchemy import select
from tinmen.agents.t2i.scenes import synthetic_items
from tinmen.graphs.replay import replay_session
from tinmen.graphs.session import run_session
from tinmen.graphs.study import run_study
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec
from tinmen.storage import orm


def _served_calls(store, session_id):
    with store.unit_of_work() as uow:
        rows = uow.session.scalars(select(orm.ModelCall).where(
            orm.ModelCall.session_id == session_id)).all()
        return [r for r in rows if r.spec.get("backend") == "openai-compatible"]


def test_t2i_parser_and_questioner_on_the_served_model(store, vllm_server):
    spec = vllm_server.spec()
    item = synthetic_items(1, seed=3)[0]
    result = run_session(store, "t2i", item.model_dump(mode="json"),
                         {"parser": spec, "questioner": spec,
                          "t2i": resolve_spec("shapes-renderer")}, pool=ModelPool(),
                         options={"policy": "belief-llm", "max_turns": 1})
    assert result.status == "completed"
    roles = {c.role for c in _served_calls(store, result.session_id)}
    assert {"parser", "questioner"} <= roles
    assert replay_session(store, result.session_id).identical


def test_shopper_study_grid_on_the_served_model(store, vllm_server):
    from tinmen.graphs.shopper import study_plan
    from tinmen.graphs.shopper_report import cells

    plan = study_plan(["car"], {"served": vllm_server.spec()}, [0.2, 0.6], reps=1,
                      max_new_tokens=16)
    outcome = run_study(store, plan, pool=ModelPool(), progress=False)
    assert outcome.ran == 8 and not outcome.failed
    rows = cells(store, outcome.study_id)
    assert sum(r["n"] for r in rows) == 8 and {r["temperature"] for r in rows} == {0.2, 0.6}
    with store.unit_of_work() as uow:
        first = uow.sessions.list(study_id=outcome.study_id, limit=1)[0].id
    assert _served_calls(store, first)
    assert replay_session(store, first).identical


def test_judge_auditor_on_the_served_model(store, vllm_server):
    from tinmen.graphs.judge import AGENT

    small = {"iterations": 1, "prompts": 2, "candidates": 2, "judge_samples": 1,
             "eval_items": 2, "judgeset_items": 2, "audit_items": 2, "sft_steps": 5,
             "max_new_tokens": 4, "auditor_style": "rubric"}
    result = run_session(store, AGENT, {"seed": 1},
                         {"policy": resolve_spec("judge-tiny"), "auditor": vllm_server.spec()},
                         pool=ModelPool(), options=small)
    assert result.status == "completed"
    assert {c.role for c in _served_calls(store, result.session_id)} == {"auditor"}
    assert replay_session(store, result.session_id).identical
