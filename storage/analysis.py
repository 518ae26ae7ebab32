"""The analysis API: every table of the store as a pandas DataFrame.

One function per kind of row — :func:`sessions`, :func:`steps`, :func:`beliefs`,
:func:`decisions`, :func:`model_calls`, :func:`metrics`, :func:`human_inputs`, and
:func:`handoffs` (the decisions of composite models, one column per field) — with the
same filters (``study``, ``condition`` (key), ``graph``, ``agent``, ``session`` (id or
unique prefix), ``status``, ``mode``, and ``steps=(first, last)`` for step-level rows).
Every row carries its session's study, condition key and rep, so a DataFrame groups by
condition without a join; beliefs, decisions, model calls and human inputs carry ``seq``,
one order across those tables within a session, so ``pd.concat(...).sort_values(["session_id",
"seq"])`` replays a session's history in time. Reports, the viewer and ``tinmen export``
are built on these functions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Select, and_, select
from tinmen.storage import Store, orm

from tinmen.errors import ConfigError

S, C, St = orm.Session, orm.Condition, orm.Step

SESSION_COLUMNS = (S.id.label("session_id"), S.graph, S.mode, S.status,
                   S.study_id.label("study"), C.key.label("condition"), S.rep, S.seed,
                   S.parent_id.label("parent"), S.fork_step, S.created_at, S.finished_at)
LINK = (S.id.label("session_id"), S.study_id.label("study"), C.key.label("condition"), S.rep)


def _filtered(stmt: Select[Any], *, study: int | None = None, condition: str | None = None,
              graph: str | None = None, agent: str | None = None, session: str | None = None,
              status: str | None = None, mode: str | None = None) -> Select[Any]:
    """``stmt`` (which selects from ``session``) restricted by the common filters."""
    stmt = stmt.outerjoin(C, C.id == S.condition_id)
    where = []
    if study is not None:
        where.append(S.study_id == study)
    if condition is not None:
        where.append(C.key == condition)
    if graph is not None:
        where.append(S.graph == graph)
    if status is not None:
        where.append(S.status == status)
    if mode is not None:
        where.append(S.mode == mode)
    if session is not None:
        where.append(S.id.startswith(session, autoescape=True))
    if agent is not None:
        where.append(S.id.in_(select(orm.Agent.session_id).where(orm.Agent.name == agent)))
    return stmt.where(and_(*where)) if where else stmt


def _frame(store: Store, stmt: Select[Any], columns: Sequence[str]) -> pd.DataFrame:
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    return pd.DataFrame([dict(r) for r in rows], columns=list(columns))


def _names(cols: Sequence[Any]) -> list[str]:
    return [c.key if hasattr(c, "key") else c.name for c in cols]


def sessions(store: Store, **filters: Any) -> pd.DataFrame:
    """One row per session (newest last), with its study, condition key and rep."""
    stmt = _filtered(select(*SESSION_COLUMNS).select_from(S), **filters)
    return _frame(store, stmt.order_by(S.created_at, S.id), _names(SESSION_COLUMNS))


def steps(store: Store, *, steps: tuple[int, int] | None = None, **filters: Any
          ) -> pd.DataFrame:
    """One row per graph node execution."""
    cols = (*LINK, St.id.label("step_id"), St.index.label("step"), St.node, St.agent,
            St.duration_s, St.checkpoint_id)
    stmt = _filtered(select(*cols).select_from(St).join(S, S.id == St.session_id), **filters)
    stmt = _step_range(stmt, steps)
    return _frame(store, stmt.order_by(St.session_id, St.index), _names(cols))


def _step_range(stmt: Select[Any], steps: tuple[int, int] | None) -> Select[Any]:
    if steps is None:
        return stmt
    first, last = steps
    if first > last:
        raise ConfigError(f"step range {first}..{last} is empty")
    return stmt.where(St.index >= first, St.index <= last)


def _step_rows(store: Store, table: Any, extra: Sequence[Any], steps: tuple[int, int] | None,
               filters: dict[str, Any], order: Any) -> pd.DataFrame:
    cols = (*LINK, St.index.label("step"), St.node, *extra)
    stmt = (select(*cols).select_from(table).join(S, S.id == table.session_id)
            .outerjoin(St, St.id == table.step_id))
    stmt = _step_range(_filtered(stmt, **filters), steps)
    return _frame(store, stmt.order_by(table.session_id, order), _names(cols))


def beliefs(store: Store, *, steps: tuple[int, int] | None = None, subject: str | None = None,
            **filters: Any) -> pd.DataFrame:
    """Every belief: subject, value, distribution over options, entropy, source."""
    B = orm.Belief
    frame = _step_rows(store, B, (B.seq, B.agent, B.subject, B.value, B.distribution,
                                  B.entropy, B.source), steps, filters, B.id)
    return frame[frame["subject"] == subject] if subject is not None else frame


def decisions(store: Store, *, steps: tuple[int, int] | None = None, kind: str | None = None,
              **filters: Any) -> pd.DataFrame:
    """Every decision: its scored options, the chosen one, uncertainty and rationale."""
    D = orm.Decision
    frame = _step_rows(store, D, (D.seq, D.agent, D.kind, D.options, D.chosen, D.uncertainty,
                                  D.entropy, D.margin, D.rationale, D.based_on), steps,
                       filters, D.id)
    return frame[frame["kind"] == kind] if kind is not None else frame


HANDOFF_KINDS = ("handoff", "deferral")  # decisions of composite models (models/composite.py)
HANDOFF_FIELDS = ("role", "writer", "span", "tokens", "position", "base_token", "base_top1",
                  "gamma", "rule", "score", "threshold", "base_call", "aligned_call",
                  "small_call", "large_call")


def handoffs(store: Store, *, steps: tuple[int, int] | None = None, **filters: Any
             ) -> pd.DataFrame:
    """Every handoff of a composite model, one row each: a Nudging handoff (kind
    ``handoff``: the ``span`` the aligned model wrote at token ``position`` of the answer,
    the base's rejected ``base_token`` and its top-1 probability ``base_top1`` < ``gamma``)
    or a cascade's deferral decision (kind ``deferral``: ``writer`` small or large, the
    ``rule``'s ``score`` against ``threshold``); ``*_call`` are the call indices of the
    constituent calls (roles ``ROLE.base`` …) in :func:`model_calls`."""
    D = orm.Decision
    base = _step_rows(store, D, (D.seq, D.kind, D.chosen), steps, filters, D.id)
    base = base[base["kind"].isin(HANDOFF_KINDS)].reset_index(drop=True)
    cols = [c for c in base.columns if c != "chosen"] + list(HANDOFF_FIELDS)
    rows = [{**{c: r[c] for c in base.columns if c != "chosen"},
             **{f: (r["chosen"] or {}).get(f) for f in HANDOFF_FIELDS}}
            for r in base.to_dict(orient="records")]
    return pd.DataFrame(rows, columns=cols)


def model_calls(store: Store, *, steps: tuple[int, int] | None = None,
                with_text: bool = False, **filters: Any) -> pd.DataFrame:
    """Every model call: role, index, op, model, seed, log-probs, NLL, latency, batch size,
    device; ``with_text`` adds the request and the output (decoded JSON)."""
    M = orm.ModelCall
    frame = _step_rows(store, M, (M.seq, M.role, M.call_index, M.op, M.model, M.params, M.seed,
                                  M.request_hash, M.token_logprobs, M.nll, M.uncertainty,
                                  M.latency_s,
                                  M.queue_wait_s, M.batch_size, M.device, M.request_sha,
                                  M.output_sha), steps, filters, M.id)
    if with_text and len(frame):
        with store.unit_of_work() as uow:
            texts = uow.content.get_many(list(frame["request_sha"]) + list(frame["output_sha"]))
        frame["request"] = [json.loads(texts[s]) for s in frame["request_sha"]]
        frame["output"] = [json.loads(texts[s]) for s in frame["output_sha"]]
    return frame


def metrics(store: Store, *, name: str | None = None, **filters: Any) -> pd.DataFrame:
    """Every metric a session recorded (per turn where the agent has turns)."""
    M = orm.Metric
    cols = (*LINK, M.step_index.label("step"), M.name, M.value, M.turn, M.meta)
    stmt = _filtered(select(*cols).select_from(M).join(S, S.id == M.session_id), **filters)
    if name is not None:
        stmt = stmt.where(M.name == name)
    return _frame(store, stmt.order_by(M.session_id, M.id), _names(cols))


def human_inputs(store: Store, **filters: Any) -> pd.DataFrame:
    """Every answer or edit a person (or a recorded stand-in) gave at a pause."""
    H = orm.HumanInput
    cols = (*LINK, H.seq, H.step_index.label("step"), H.kind, H.prompt, H.response,
            H.created_at)
    stmt = _filtered(select(*cols).select_from(H).join(S, S.id == H.session_id), **filters)
    return _frame(store, stmt.order_by(H.session_id, H.id), _names(cols))


TABLES = {"sessions": sessions, "steps": steps, "beliefs": beliefs, "decisions": decisions,
          "model_calls": model_calls, "metrics": metrics, "human_inputs": human_inputs,
          "handoffs": handoffs}


def export_study(store: Store, study: int, out_dir: str | Path, fmt: str = "parquet"
                 ) -> dict[str, Path]:
    """Write every table of ``study`` to ``out_dir`` (one file per table)."""
    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"--format must be parquet or csv, not '{fmt}'")
    with store.unit_of_work() as uow:
        uow.studies.get(study)  # a missing study is a NotFoundError, before any file
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, fn in TABLES.items():
        frame = fn(store, study=study)
        path = out / f"{name}.{fmt}"
        _write(frame, path, fmt)
        written[name] = path
    return written


def _write(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    # JSON columns (dicts, lists) are written as JSON text: both formats then hold plain
    # scalars, and a reader gets the same values back with json.loads
    frame = frame.copy()
    for col in frame.columns:
        if frame[col].map(lambda v: isinstance(v, dict | list)).any():
            frame[col] = frame[col].map(lambda v: None if v is None else json.dumps(v))
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
