"""Library functions behind the CLI: each opens what it needs, does one thing, returns data."""

from __future__ import annotations

import json
from typing import Any

from tinmen.storage import Store, orm


def list_sessions(store: Store, *, study: int | None = None, graph: str | None = None,
                  agent: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    with store.unit_of_work() as uow:
        rows = uow.sessions.list(study_id=study, graph=graph, agent=agent, limit=limit)
        return [{"id": r.id, "graph": r.graph, "mode": r.mode, "status": r.status,
                 "study": r.study_id, "parent": r.parent_id,
                 "created": r.created_at.isoformat(timespec="seconds"),
                 "steps": len(uow.records.steps(r.id))} for r in rows]


def show_session(store: Store, session_id: str) -> dict[str, Any]:
    """Everything recorded for one session, steps in order with their rows nested."""
    with store.unit_of_work() as uow:
        row = uow.sessions.get(session_id)
        steps = uow.records.steps(row.id)
        beliefs, decisions = uow.records.beliefs(row.id), uow.records.decisions(row.id)
        calls = uow.records.calls(row.id)
        texts = uow.content.get_many([c.output_sha for c in calls])
        human = uow.records.human_inputs(row.id)
        metrics = uow.records.metrics(row.id)
    by_step: dict[int | None, dict[str, list[Any]]] = {
        s.id: {"beliefs": [], "decisions": [], "calls": []} for s in steps}
    for b in beliefs:
        by_step.setdefault(b.step_id, {"beliefs": [], "decisions": [], "calls": []})[
            "beliefs"].append({"subject": b.subject, "value": b.value,
                               "distribution": b.distribution, "entropy": b.entropy,
                               "source": b.source})
    for d in decisions:
        by_step[d.step_id]["decisions"].append({
            "kind": d.kind, "chosen": d.chosen, "options": d.options,
            "uncertainty": d.uncertainty, "rationale": d.rationale})
    for c in calls:
        by_step[c.step_id]["calls"].append({
            "role": c.role, "index": c.call_index, "op": c.op, "model": c.model,
            "output": _short(json.loads(texts[c.output_sha])), "nll": c.nll,
            "latency_s": round(c.latency_s, 4), "batch_size": c.batch_size,
            "device": c.device})
    return {"id": row.id, "graph": row.graph, "mode": row.mode, "status": row.status,
            "parent": row.parent_id, "fork_step": row.fork_step, "seed": row.seed,
            "inputs": row.inputs, "output": row.output,
            "models": {r: s.get("name") for r, s in row.bindings.items()},
            "steps": [{"index": s.index, "node": s.node, **by_step[s.id]} for s in steps],
            "human_inputs": [{"kind": h.kind, "response": h.response} for h in human],
            "metrics": [{"name": m.name, "value": m.value, "turn": m.turn} for m in metrics]}


def _short(value: Any, limit: int = 200) -> Any:
    if isinstance(value, dict) and "text" in value:
        return value["text"][:limit]
    text = json.dumps(value)
    return value if len(text) <= limit else text[:limit] + "…"


def list_studies(store: Store, *, limit: int = 50) -> list[dict[str, Any]]:
    """Studies, newest first: conditions, and how many sessions completed."""
    from sqlalchemy import func, select

    with store.unit_of_work() as uow:
        db = uow.session
        studies = list(db.scalars(select(orm.Study).order_by(orm.Study.id.desc()).limit(limit)))
        ids = [s.id for s in studies]
        n_cond = dict(db.execute(select(orm.Condition.study_id, func.count())
                                 .where(orm.Condition.study_id.in_(ids))
                                 .group_by(orm.Condition.study_id)).all())
        n_done = dict(db.execute(select(orm.Session.study_id, func.count())
                                 .where(orm.Session.study_id.in_(ids),
                                        orm.Session.status == orm.Status.COMPLETED)
                                 .group_by(orm.Session.study_id)).all())
        return [{"id": s.id, "name": s.name, "graph": s.graph, "ref": s.graph_ref,
                 "status": s.status, "conditions": n_cond.get(s.id, 0),
                 "sessions": n_done.get(s.id, 0),
                 "created": s.created_at.isoformat(timespec="seconds")} for s in studies]


def session_counts(store: Store, session_id: str) -> dict[str, int]:
    """How many rows of each kind a session has (what the demo prints)."""
    with store.unit_of_work() as uow:
        sid = uow.sessions.get(session_id).id
        rec = uow.records
        return {"steps": len(rec.steps(sid)), "beliefs": len(rec.beliefs(sid)),
                "decisions": len(rec.decisions(sid)), "model_calls": len(rec.calls(sid)),
                "calls_with_logprobs": sum(1 for c in rec.calls(sid) if c.token_logprobs)}


def artifact_bytes(store: Store, sha: str) -> bytes:
    with store.unit_of_work() as uow:
        return uow.artifacts.get(sha).data


def study_row(store: Store, study_id: int) -> orm.Study:
    with store.unit_of_work() as uow:
        return uow.studies.get(study_id)
