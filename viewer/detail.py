"""One session as the session page and ``/api/sessions/{id}`` show it, built on the
analysis API (storage/analysis.py): its header and lineage, and per step its beliefs,
decisions (every option with a probability), model calls (prompt, output, per-token
log-probs), human inputs and metrics, plus the images it made."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pandas as pd
from sqlalchemy import select
from tinmen.storage import Store, analysis, orm
from tinmen.viewer.options import decision_view, distribution_bars

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A DataFrame as JSON-safe dicts (NaN -> None, numpy scalars -> Python)."""
    if frame.empty:
        return []
    return json.loads(frame.to_json(orient="records", date_format="iso", default_handler=str))


def header(store: Store, session_id: str) -> dict[str, Any]:
    """The session row (by id or unique prefix; NotFoundError otherwise) and its lineage."""
    S = orm.Session
    with store.unit_of_work() as uow:
        row = uow.sessions.get(session_id)
        cond = uow.session.get(orm.Condition, row.condition_id) if row.condition_id else None
        children = uow.session.execute(
            select(S.id, S.mode, S.status, S.fork_step, S.created_at)
            .where(S.parent_id == row.id).order_by(S.created_at)).mappings().all()
        parent = uow.session.execute(select(S.id, S.mode, S.status).where(
            S.id == row.parent_id)).mappings().first() if row.parent_id else None
    return {"id": row.id, "graph": row.graph, "mode": row.mode, "status": row.status,
            "seed": row.seed, "study": row.study_id, "condition": cond.key if cond else None,
            "rep": row.rep, "inputs": row.inputs, "output": row.output, "error": row.error,
            "models": {r: s.get("name") or s.get("source") for r, s in row.bindings.items()},
            "bindings": row.bindings, "fork_step": row.fork_step,
            "created": row.created_at.isoformat(timespec="seconds"),
            "lineage": {"parent": dict(parent) if parent else None,
                        "children": [{**dict(c), "created_at": c["created_at"].isoformat(
                            timespec="seconds")} for c in children]}}


def session_detail(store: Store, session_id: str) -> dict[str, Any]:
    """Everything recorded for one session, grouped by step."""
    head = header(store, session_id)
    sid = head["id"]
    steps = {s["step"]: {**s, "beliefs": [], "decisions": [], "calls": [], "human_inputs": [],
                         "metrics": []} for s in records(analysis.steps(store, session=sid))}
    loose: dict[str, list[Any]] = {"beliefs": [], "decisions": [], "calls": [],
                                   "human_inputs": [], "metrics": []}
    for kind, rows in _rows(store, sid).items():
        for row in rows:
            steps.get(row.get("step"), loose)[kind].append(row)
    return {**head, "steps": [steps[k] for k in sorted(steps)], "unplaced": loose,
            "images": images(store, sid, head["output"])}


def _rows(store: Store, sid: str) -> dict[str, list[dict[str, Any]]]:
    beliefs = records(analysis.beliefs(store, session=sid))
    for b in beliefs:
        b["bars"] = distribution_bars(b.get("distribution"))
    decisions = [decision_view(d) for d in records(analysis.decisions(store, session=sid))]
    calls = [call_view(c) for c in records(analysis.model_calls(store, session=sid,
                                                                with_text=True))]
    return {"beliefs": beliefs, "decisions": decisions, "calls": calls,
            "human_inputs": records(analysis.human_inputs(store, session=sid)),
            "metrics": records(analysis.metrics(store, session=sid))}


def call_view(call: dict[str, Any]) -> dict[str, Any]:
    """A model call as shown: the prompt and output as text, each token with its
    probability (exp of its log-prob) for the confidence colouring."""
    output = call.pop("output", None)
    request = call.pop("request", None)
    call["prompt"] = prompt_text(request)
    call["output_text"] = output["text"] if isinstance(output, dict) and "text" in output \
        else _short_json(output)
    tokens = output.get("tokens") if isinstance(output, dict) else None
    lps = call.get("token_logprobs") or []
    if not tokens or len(tokens) != len(lps):
        tokens = [f"#{i}" for i in range(len(lps))]
    call["tokens"] = [{"text": t, "logprob": lp, "p": math.exp(lp) if lp is not None else None}
                      for t, lp in zip(tokens, lps)]
    call["choices"] = _choices(request, output)
    return call


def _choices(request: Any, output: Any) -> list[dict[str, Any]]:
    """A scoring call's options with their probabilities (softmax of the log-probs)."""
    inputs = request.get("inputs", request) if isinstance(request, dict) else None
    options = inputs.get("options") if isinstance(inputs, dict) else None
    if not isinstance(options, list) or not isinstance(output, list) or \
            len(options) != len(output) or not all(isinstance(v, int | float) for v in output):
        return []
    top = max(output)
    weights = [math.exp(v - top) for v in output]
    return [{"option": str(o).strip(), "p": w / sum(weights)} for o, w in zip(options, weights)]


def prompt_text(request: Any) -> str:
    """A request as text: chat messages one per line, a plain prompt as it is, the
    options a score call chose among after it; anything else as JSON."""
    inputs = request.get("inputs", request) if isinstance(request, dict) else request
    if not isinstance(inputs, dict):
        return _short_json(inputs)
    body = next((inputs[k] for k in ("messages", "prompt", "text", "texts") if k in inputs),
                None)
    if body is None:
        return _short_json(inputs)
    text = _messages(body) if isinstance(body, list) else body if isinstance(
        body, str) else _short_json(body)
    if isinstance(inputs.get("options"), list):
        text += "\n[options] " + " | ".join(str(o).strip() for o in inputs["options"])
    return text


def _messages(items: list[Any]) -> str:
    if all(isinstance(m, dict) and "content" in m for m in items):
        return "\n".join(f"[{m.get('role', '?')}] {m['content']}" for m in items)
    return _short_json(items)


def _short_json(value: Any, limit: int = 4000) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "…"


def _shas(value: Any, depth: int = 0) -> set[str]:
    if isinstance(value, str):
        return {value} if HEX64.match(value) else set()
    if depth > 3:
        return set()
    items = value.values() if isinstance(value, dict) else value if isinstance(
        value, list) else ()
    return set().union(*(_shas(v, depth + 1) for v in items)) if items else set()


def images(store: Store, sid: str, output: Any) -> list[dict[str, Any]]:
    """Image artifacts the session names (belief values such as ``image:2``, its output),
    in the order they were recorded; metadata only, the bytes are served by hash."""
    B, Art = orm.Belief, orm.Artifact
    with store.unit_of_work() as uow:
        named = uow.session.execute(select(B.subject, B.value, B.step_id).where(
            B.session_id == sid).order_by(B.id)).all()
        found = {s for _, v, _ in named for s in _shas(v)} | _shas(output)
        meta = {r.sha256: r for r in uow.session.execute(
            select(Art.sha256, Art.mime, Art.size).where(Art.sha256.in_(found))).all()}
        steps = dict(uow.session.execute(select(orm.Step.id, orm.Step.index).where(
            orm.Step.session_id == sid)).all())
    out, seen = [], set()
    for subject, value, step_id in named:
        for sha in sorted(_shas(value)):
            if sha in meta and sha not in seen and meta[sha].mime.startswith("image/"):
                seen.add(sha)
                out.append({"sha256": sha, "mime": meta[sha].mime, "size": meta[sha].size,
                            "subject": subject, "step": steps.get(step_id)})
    for sha in sorted(_shas(output) - seen):
        if sha in meta and meta[sha].mime.startswith("image/"):
            out.append({"sha256": sha, "mime": meta[sha].mime, "size": meta[sha].size,
                        "subject": "output", "step": None})
    return out
