"""Running one session of a graph: live, replayed from the record, or forked.

The runner owns the session's lifecycle: it validates the role bindings before anything is
written, builds the :class:`Context`, drives LangGraph (answering ``interrupt()`` requests
through ``answer``), and flushes the recorder once at the end — or at a pause for human
input, with status ``interrupted``. A session that raises writes nothing.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from tinmen.graphs.recorder import Recorder
from tinmen.graphs.runtime import Context, GraphDef
from tinmen.models.client import CallRecord, LiveModels, Models, RecordedModels, derive_seed
from tinmen.models.spec import ModelSpec
from tinmen.storage import Store, orm
from tinmen.storage.db import busy_timeout_default, store_error

from tinmen.errors import ConfigError

Answer = Callable[[Any], Any]  # interrupt payload -> response (None = pause the session)


@dataclass
class SessionResult:
    session_id: str
    status: str
    output: dict[str, Any]
    recorder: Recorder


def checkpointer_for(store: Store) -> Any:
    """LangGraph's SQLite saver on the store's own file (one per store); in-memory otherwise."""
    cached = getattr(store, "_checkpointer", None)
    if cached is not None:
        return cached
    store._checkpointer = _make_checkpointer(store)
    return store._checkpointer


def _make_checkpointer(store: Store) -> Any:
    url = store.engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(url.database, check_same_thread=False,
                               timeout=busy_timeout_default() / 1000)
        return SqliteSaver(conn)
    if url.get_backend_name() == "postgresql":
        try:
            from langgraph.checkpoint.postgres import PostgresSaver
            from psycopg import Connection
        except ModuleNotFoundError as exc:
            from tinmen.models.registry import missing_dependency

            raise missing_dependency(exc.name or "psycopg", "a PostgreSQL store") from exc
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        saver = PostgresSaver(Connection.connect(dsn, autocommit=True, prepare_threshold=0))
        saver.setup()
        return saver
    return InMemorySaver()


def check_bindings(graph: GraphDef, bindings: dict[str, ModelSpec]) -> None:
    required = {role for role, default in graph.roles.items() if default}
    missing = sorted(required - set(bindings))
    if missing:
        raise ConfigError(f"graph '{graph.name}' needs models for roles {missing}; "
                          f"pass --model ROLE=SPEC")


def run_session(store: Store, graph: GraphDef, inputs: dict[str, Any],
                bindings: dict[str, ModelSpec], *, pool: Any = None, seed: int = 0,
                options: dict[str, Any] | None = None, answer: Answer | None = None,
                study_id: int | None = None, condition_id: int | None = None,
                rep: int | None = None, mode: str = "live", parent_id: str | None = None,
                fork_step: int | None = None, records: Sequence[CallRecord] | None = None,
                live_after_records: bool = False, checkpointer: Any = None,
                record: bool = True) -> SessionResult:
    """Run ``graph`` once and store it; see the module docstring.

    ``records`` (with ``live_after_records=False``) makes an exact replay: every model call
    is served from them and a missing or different call raises ``ReplayDivergence``.
    With ``live_after_records=True`` calls past the records go to ``pool`` (a fork).
    """
    if mode == "live" or live_after_records:
        check_bindings(graph, bindings)
    options = dict(options or {})
    session_id = uuid.uuid4().hex
    row = orm.Session(id=session_id, graph=graph.name, mode=mode, status="running",
                      study_id=study_id, condition_id=condition_id, rep=rep,
                      parent_id=parent_id, fork_step=fork_step, thread_id=session_id,
                      seed=seed, inputs={"inputs": inputs, "options": options},
                      bindings={r: s.model_dump(mode="json") for r, s in bindings.items()})
    recorder = Recorder(row, enabled=record)
    live = LiveModels(pool, bindings, sink=recorder, seed=derive_seed(seed, "models"))
    models: Models = live
    if records is not None:
        models = RecordedModels(records, bindings, sink=recorder, seed=live.seed,
                                fallback=live if live_after_records else None,
                                step_of=lambda: recorder.step_name)
    ctx = Context(models=models, recorder=recorder, seed=seed, options=options)
    try:
        return _drive(store, graph, ctx, live, recorder, inputs, options, answer,
                      checkpointer, session_id)
    except sqlite3.OperationalError as exc:  # LangGraph's checkpointer on a locked file
        raise store_error(exc, store.url) from exc


def _drive(store: Store, graph: GraphDef, ctx: Context, live: LiveModels, recorder: Recorder,
           inputs: dict[str, Any], options: dict[str, Any], answer: Answer | None,
           checkpointer: Any, session_id: str, first: Any = None) -> SessionResult:
    compiled = graph.build(checkpointer or InMemorySaver())
    config = {"configurable": {"thread_id": session_id}}
    if first is None:
        first = graph.initial_state(inputs, options)
    result = compiled.invoke(first, config, context=ctx)
    while "__interrupt__" in result:
        payload = result["__interrupt__"][0].value
        response = answer(payload) if answer is not None else None
        if response is None:
            recorder.flush(store, status="interrupted")
            return SessionResult(session_id, "interrupted", {}, recorder)
        _record_answer(recorder, payload, response)
        _serve_interrupted_step_from_record(ctx, live, recorder)
        result = compiled.invoke(Command(resume=response), config, context=ctx)
    output = graph.output(result)
    recorder.flush(store, status="completed", output=output)
    return SessionResult(session_id, "completed", output, recorder)


def _record_answer(recorder: Recorder, payload: Any, response: Any) -> None:
    kind = str(payload.get("kind", "answer")) if isinstance(payload, dict) else "answer"
    recorder.human_input(kind, payload, response)


def resume_session(store: Store, session_id: str, answer: Answer, *, pool: Any) -> SessionResult:
    """Continue a session stored as ``interrupted`` (e.g. by another process).

    LangGraph's checkpointer restores the graph state; the node that was waiting re-runs,
    and the model calls it made before the pause are served from the record, not re-run.
    """
    from tinmen.graphs.registry import get_graph

    with store.unit_of_work() as uow:
        row = uow.sessions.get(session_id)
        if row.status != "interrupted":
            raise ConfigError(f"session {row.id} is {row.status}, not interrupted: nothing "
                              "to resume")
        steps = uow.records.steps(row.id)
        calls = uow.calls.for_session(row.id)
        call_steps = [c.step_id for c in uow.records.calls(row.id)]
        n_human = len(uow.records.human_inputs(row.id))
    graph = get_graph(row.graph)
    bindings = {r: ModelSpec.model_validate(s) for r, s in row.bindings.items()}
    recorder = Recorder.resume(row, [(s.id, s.index, s.node) for s in steps], n_human)
    live = LiveModels(pool, bindings, sink=recorder, seed=derive_seed(row.seed, "models"))
    last = recorder.steps[-1] if recorder.steps else None
    before = [c for c, sid in zip(calls, call_steps) if last is None or sid != last.saved_id]
    waiting = [c for c, sid in zip(calls, call_steps) if last is not None and sid == last.saved_id]
    live.set_counters(_counts(before))
    if last is not None:
        last.calls, last.counters = waiting, _counts(before)
    ctx = Context(models=live, recorder=recorder, seed=row.seed,
                  options=row.inputs.get("options", {}), interrupted_step=last)
    compiled = graph.build(checkpointer_for(store))
    config = {"configurable": {"thread_id": row.thread_id}}
    pending = compiled.get_state(config).interrupts
    if not pending:
        raise ConfigError(f"session {row.id} has no pending question in the checkpointer")
    response = answer(pending[0].value)
    if response is None:
        return SessionResult(row.id, "interrupted", {}, recorder)
    _record_answer(recorder, pending[0].value, response)
    _serve_interrupted_step_from_record(ctx, live, recorder)
    return _drive(store, graph, ctx, live, recorder, {}, ctx.options, answer,
                  checkpointer_for(store), row.thread_id, first=Command(resume=response))


def _counts(records: Sequence[CallRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for rec in records:
        counts[rec.role] = max(counts.get(rec.role, 0), rec.call_index + 1)
    return counts


def _serve_interrupted_step_from_record(ctx: Context, live: LiveModels,
                                        recorder: Recorder) -> None:
    """The interrupted node re-runs from its start: serve its earlier calls from the record."""
    step = ctx.interrupted_step
    if step is None or not step.calls:
        return
    replay = RecordedModels(step.calls, ctx.models.bindings, sink=recorder, seed=live.seed,
                            fallback=ctx.models, step_of=lambda: recorder.step_name)
    replay.set_counters(step.counters)
    ctx.models = replay
