"""Running one session of a graph: live, replayed from the record, or forked.

The runner owns the session's lifecycle: it validates the role bindings before anything is
written, builds the :class:`Context`, drives LangGraph (answering ``interrupt()`` requests
through ``answer``), and flushes the recorder once at the end — or at a pause for human
input, with status ``interrupted``. A session that raises writes nothing.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from tinmen.errors import ConfigError
from tinmen.graphs.recorder import Recorder
from tinmen.graphs.runtime import Context, GraphDef
from tinmen.models.client import CallRecord, LiveModels, Models, RecordedModels, derive_seed
from tinmen.models.spec import ModelSpec
from tinmen.storage import Store, orm

Answer = Callable[[Any], Any]  # interrupt payload -> response (None = pause the session)


@dataclass
class SessionResult:
    session_id: str
    status: str
    output: dict[str, Any]
    recorder: Recorder


def checkpointer_for(store: Store) -> Any:
    """LangGraph's SQLite saver on the store's own file; in-memory for other stores."""
    url = store.engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(url.database, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        return SqliteSaver(conn)
    return InMemorySaver()


def check_bindings(graph: GraphDef, bindings: dict[str, ModelSpec]) -> None:
    missing = sorted(set(graph.roles) - set(bindings))
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
    compiled = graph.build(checkpointer or InMemorySaver())
    config = {"configurable": {"thread_id": session_id}}
    result = compiled.invoke(graph.initial_state(inputs, options), config, context=ctx)
    while "__interrupt__" in result:
        payload = result["__interrupt__"][0].value
        response = answer(payload) if answer is not None else None
        if response is None:
            recorder.flush(store, status="interrupted")
            return SessionResult(session_id, "interrupted", {}, recorder)
        recorder.human_input(str(payload.get("kind", "answer")) if isinstance(payload, dict)
                             else "answer", payload, response)
        _serve_interrupted_step_from_record(ctx, live, recorder)
        result = compiled.invoke(Command(resume=response), config, context=ctx)
    output = graph.output(result)
    recorder.flush(store, status="completed", output=output)
    return SessionResult(session_id, "completed", output, recorder)


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
