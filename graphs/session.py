"""Running one session of a graph: live, replayed from the record, or forked.

The runner owns the session's lifecycle: it validates the role bindings before anything is
written, builds the :class:`Context`, drives LangGraph (answering ``interrupt()`` requests
through ``answer``), and flushes the recorder once at the end — or at a pause for human
input, with status ``interrupted``. A session that raises writes nothing.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from langgraph.types import Command
from tinmen.graphs import checkpoints
from tinmen.graphs.definition import AgentDef, RunMode, Status
from tinmen.graphs.recorder import Recorder
from tinmen.graphs.registry import agent_for_session, load_agent, reference_of
from tinmen.graphs.runtime import Context
from tinmen.models.client import CallRecord, LiveModels, Models, RecordedModels, derive_seed
from tinmen.models.remote_code import load_options, remote_code_allowed
from tinmen.models.spec import ModelSpec
from tinmen.storage import Store, orm
from tinmen.storage.db import busy_timeout_default, store_error

from tinmen.errors import ConfigError, StoreError

Answer = Callable[[Any], Any]  # interrupt payload -> response (None = pause the session)


@dataclass
class SessionResult:
    session_id: str
    status: Status
    output: dict[str, Any]
    recorder: Recorder


_CHECKPOINTER_LOCK = threading.Lock()  # threads sharing a store must share one saver
PG_CHECKPOINTER_SETUP_LOCK = 0x74696E6D656E01  # pg_advisory_lock key around saver.setup()


def checkpointer_for(store: Store) -> Any:
    """LangGraph's saver on the store's own database (SQLite file or PostgreSQL), one per
    store even when many threads ask at once; in-memory for an in-memory store."""
    cached = getattr(store, "_checkpointer", None)
    if cached is not None:
        return cached
    with _CHECKPOINTER_LOCK:
        if getattr(store, "_checkpointer", None) is None:
            store._checkpointer = _make_checkpointer(store)
    return store._checkpointer


def _make_checkpointer(store: Store) -> Any:
    """Every saver gets the strict serializer (graphs/checkpoints.py): a checkpoint blob is
    data, and loading it must never call what it names."""

    url = store.engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return checkpoints.sqlite_checkpointer(url.database,
                                               timeout_s=busy_timeout_default() / 1000)
    if url.get_backend_name() == "postgresql":
        try:
            import langgraph.checkpoint.postgres  # noqa: F401
            from psycopg import Connection
        except ModuleNotFoundError as exc:
            from tinmen.models.registry import missing_dependency

            raise missing_dependency(exc.name or "psycopg", "a PostgreSQL store") from exc
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = Connection.connect(dsn, autocommit=True, prepare_threshold=0)
        with _pg_setup_lock(conn):
            return checkpoints.postgres_checkpointer(conn)
    return checkpoints.memory_checkpointer()


@contextmanager
def _pg_setup_lock(conn: Any, wait_s: float = 120.0) -> Iterator[None]:
    """Serialize the saver's setup() across processes: its CREATE TABLE IF NOT EXISTS and
    migration-version inserts race (duplicate key) when several open a new store at once.
    Polled, not a blocking pg_advisory_lock: setup() runs CREATE INDEX CONCURRENTLY, which
    waits for every open transaction, including a waiter blocked on the lock (a deadlock)."""
    deadline = time.monotonic() + wait_s
    while not conn.execute("SELECT pg_try_advisory_lock(%s)",
                           (PG_CHECKPOINTER_SETUP_LOCK,)).fetchone()[0]:
        if time.monotonic() > deadline:
            raise StoreError("timed out waiting for another process to set up LangGraph's "
                              "checkpoint tables in the PostgreSQL store")
        time.sleep(0.05)
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (PG_CHECKPOINTER_SETUP_LOCK,))


@dataclass(frozen=True)
class SessionSpec:
    """Everything that decides what a session does: the agent (and how to import it
    again), validated inputs and options, the role bindings, the seed, its place in a study
    and its lineage. Live, replay, fork and resume are this one value run with differently
    composed :class:`Models` (see :func:`models_for`)."""

    agent: AgentDef
    ref: str  # registered name or import path, stored with the session
    inputs: dict[str, Any]
    options: dict[str, Any]
    bindings: dict[str, ModelSpec]
    seed: int = 0
    mode: RunMode = RunMode.LIVE
    study_id: int | None = None
    condition_id: int | None = None
    rep: int | None = None
    parent_id: str | None = None
    fork_step: int | None = None

    @classmethod
    def create(cls, agent: AgentDef | str, inputs: dict[str, Any] | None,
               bindings: dict[str, ModelSpec], *, options: dict[str, Any] | None = None,
               seed: int = 0, ref: str | None = None, **placement: Any) -> SessionSpec:
        """A validated live session: a bad input, option or role is a one-line error here,
        before anything is loaded or written."""
        if isinstance(agent, str):
            ref, agent = agent, load_agent(agent)
        check_seed(seed)
        check_bindings(agent, bindings)
        return cls(agent=agent, ref=ref or reference_of(agent), inputs=agent.resolve_inputs(inputs),
                   options=agent.resolve_options(options), bindings=dict(bindings),
                   seed=seed, **placement)

    @classmethod
    def of_row(cls, row: orm.Session) -> SessionSpec:
        """The spec a stored session ran with (its options as stored: resolved then)."""
        agent = agent_for_session(row.graph, row.graph_ref)
        stored = row.inputs or {}
        return cls(agent=agent, ref=row.graph_ref or row.graph,
                   inputs=dict(stored.get("inputs", {})),
                   options=agent.resolve_options(stored.get("options")),
                   bindings={r: ModelSpec.model_validate(s) for r, s in row.bindings.items()},
                   seed=row.seed, mode=RunMode(row.mode), study_id=row.study_id,
                   condition_id=row.condition_id, rep=row.rep, parent_id=row.parent_id,
                   fork_step=row.fork_step)

    def derived(self, **changes: Any) -> SessionSpec:
        return dataclasses.replace(self, **changes)

    def new_row(self) -> orm.Session:
        session_id = uuid.uuid4().hex
        return orm.Session(id=session_id, graph=self.agent.name, graph_ref=self.ref,
                           graph_version=self.agent.version, mode=self.mode.value,
                           status=Status.RUNNING.value, study_id=self.study_id,
                           condition_id=self.condition_id, rep=self.rep,
                           parent_id=self.parent_id, fork_step=self.fork_step,
                           thread_id=session_id, seed=self.seed,
                           inputs={"inputs": self.inputs, "options": self.options},
                           bindings={r: s.model_dump(mode="json")
                                     for r, s in self.bindings.items()})


SQLITE_INT = 2**63  # seeds are stored in 64-bit signed integers


def check_seed(seed: int) -> None:
    if not 0 <= int(seed) < SQLITE_INT:
        raise ConfigError(f"seed must be between 0 and 2**63 - 1, not {seed}")


def check_bindings(agent: AgentDef, bindings: dict[str, ModelSpec]) -> None:
    """Every required role bound, and no role the agent does not have."""
    unknown = sorted(set(bindings) - set(agent.roles))
    if unknown:
        raise ConfigError(f"agent '{agent.name}' has no role {', '.join(unknown)}; its roles: "
                          f"{', '.join(sorted(agent.roles))}")
    required = {role for role, default in agent.roles.items() if default}
    missing = sorted(required - set(bindings))
    if missing:
        raise ConfigError(f"agent '{agent.name}' needs models for roles {missing}; "
                          f"pass --model ROLE=SPEC")


def check_loadable(bindings: dict[str, ModelSpec], *, allow_remote_code: bool) -> None:
    """Refuse, before anything runs or is written, a binding whose load options would run
    code from a model folder — a spec file's or a stored session's — unless this run
    allows it (``--trust-remote-code`` / ``ModelPool(allow_remote_code=True)``)."""
    from tinmen.models.composite import check, constituent_specs, is_composite

    with remote_code_allowed(allow_remote_code):
        for spec in bindings.values():
            if is_composite(spec):  # a nudged / cascade spec: it and both constituents
                check(spec)
                for part in constituent_specs(spec).values():
                    load_options(part)
            else:
                load_options(spec)


def models_for(spec: SessionSpec, recorder: Recorder, *, pool: Any = None,
               records: Sequence[CallRecord] = ()) -> tuple[Models, LiveModels]:
    """The session's models for its mode: the pool (live), the record (replay), or the
    record up to the fork point and the pool after it (fork)."""
    live = LiveModels(pool, spec.bindings, sink=recorder, seed=derive_seed(spec.seed, "models"))
    if spec.mode is RunMode.LIVE:
        return live, live
    fallback = live if spec.mode is RunMode.FORK else None
    return RecordedModels(records, spec.bindings, sink=recorder, seed=live.seed,
                          fallback=fallback, step_of=lambda: recorder.step_name), live


def start_session(store: Store, spec: SessionSpec, *, pool: Any = None,
                  answer: Answer | None = None, records: Sequence[CallRecord] = (),
                  checkpointer: Any = None, record: bool = True,
                  on_step: Callable[[Any], None] | None = None) -> SessionResult:
    """Run ``spec`` once and store it; see the module docstring. ``on_step`` is called
    after every step (progress output)."""
    if spec.mode is not RunMode.REPLAY:  # a replay loads nothing; the others may
        check_loadable(spec.bindings, allow_remote_code=getattr(pool, "allow_remote_code",
                                                                False))
    recorder = Recorder(spec.new_row(), enabled=record)
    recorder.on_step = on_step
    models, live = models_for(spec, recorder, pool=pool, records=records)
    ctx = Context(models=models, recorder=recorder, seed=spec.seed, options=spec.options,
                  mode=spec.mode)
    try:
        return _drive(store, spec.agent, ctx, live, recorder, spec.inputs, spec.options,
                      answer, checkpointer, recorder.session.id)
    except sqlite3.OperationalError as exc:  # LangGraph's checkpointer on a locked file
        raise store_error(exc, store.url) from exc


def run_session(store: Store, agent: AgentDef | str, inputs: dict[str, Any] | None,
                bindings: dict[str, ModelSpec], *, pool: Any = None, seed: int = 0,
                options: dict[str, Any] | None = None, answer: Answer | None = None,
                checkpointer: Any = None, record: bool = True,
                on_step: Callable[[Any], None] | None = None,
                **placement: Any) -> SessionResult:
    """Run one live session of ``agent`` (a definition, a name or an import path)."""
    spec = SessionSpec.create(agent, inputs, bindings, options=options, seed=seed,
                              **placement)
    return start_session(store, spec, pool=pool, answer=answer, checkpointer=checkpointer,
                         record=record, on_step=on_step)


def _drive(store: Store, graph: AgentDef, ctx: Context, live: LiveModels, recorder: Recorder,
           inputs: dict[str, Any], options: dict[str, Any], answer: Answer | None,
           checkpointer: Any, session_id: str, first: Any = None,
           start_at: dict[str, Any] | None = None) -> SessionResult:
    """Run the graph to its end or to a pause; ``start_at`` (a checkpoint's config) resumes
    from an earlier checkpoint of the thread instead of its latest."""
    compiled = graph.build(checkpointer or checkpoints.memory_checkpointer())
    config = {"configurable": {"thread_id": session_id}}
    if first is None:
        first = graph.initial_state(inputs, options)
    result = compiled.invoke(first, start_at or config, context=ctx)
    while "__interrupt__" in result:
        payload = result["__interrupt__"][0].value
        durable = ctx.mode is not RunMode.REPLAY  # a replay is stored whole or not at all
        if durable:  # all so far is stored before a person is asked: a kill loses nothing
            _pause(store, recorder, payload)
        response = answer(payload) if answer is not None else None
        if response is None:
            if not durable:
                _pause(store, recorder, payload)
            return SessionResult(session_id, Status.INTERRUPTED, {}, recorder)
        _record_answer(recorder, payload, response)
        if durable:  # the answer is stored before the agent acts on it
            _pause(store, recorder, payload, waiting=1)
        _serve_interrupted_step_from_record(ctx, live, recorder)
        result = compiled.invoke(Command(resume=response), config, context=ctx)
    output = graph.output(result)
    recorder.flush(store, status=Status.COMPLETED, output=output)
    return SessionResult(session_id, Status.COMPLETED, output, recorder)


def _pause(store: Store, recorder: Recorder, payload: Any, *, waiting: int = 0) -> None:
    """Store the session as paused at ``payload``; its output says how many answers the
    graph has consumed (all stored ones but ``waiting``), so a resume knows whether the
    last stored answer has yet to be acted on."""
    applied = len(recorder.human) + recorder.saved_human_before - waiting
    recorder.flush(store, status=Status.INTERRUPTED,
                   output={"pending": {"question": payload, "answers_applied": applied}})


def _record_answer(recorder: Recorder, payload: Any, response: Any) -> None:
    check_answer(response)
    kind = str(payload.get("kind", "answer")) if isinstance(payload, dict) else "answer"
    recorder.human_input(kind, payload, response)


def check_answer(response: Any) -> None:
    """An answer is stored as JSON text before the agent acts on it: one that cannot be
    (invalid UTF-8, nan, an object) is refused here, and the session stays paused."""
    import json

    try:
        json.dumps(response, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        shown = repr(response)[:60]
        raise ConfigError(f"cannot store the answer {shown}: {exc}; answer with plain "
                          "UTF-8 text (the session is still paused: resume it)") from None


def resume_session(store: Store, session_id: str, answer: Answer, *, pool: Any) -> SessionResult:
    """Continue a session stored as ``interrupted`` (e.g. by another process).

    LangGraph's checkpointer restores the graph state; the node that was waiting re-runs,
    and the model calls it made before the pause are served from the record, not re-run.
    """
    with store.unit_of_work() as uow:
        row = uow.sessions.get(session_id)
        if row.status != Status.INTERRUPTED:
            raise ConfigError(f"session {row.id} is {row.status}, not interrupted: nothing "
                              "to resume")
        steps = uow.records.steps(row.id)
        calls = uow.calls.for_session(row.id)
        call_steps = [c.step_id for c in uow.records.calls(row.id)]
        stored_answers = [h.response for h in uow.records.human_inputs(row.id)]
        n_human = len(stored_answers)
        next_seq = uow.records.next_seq(row.id)
        agents = [a.name for a in uow.records.agents(row.id)]
    spec = SessionSpec.of_row(row)
    graph, bindings = spec.agent, spec.bindings
    recorder = Recorder.resume(row, [(s.id, s.index, s.node) for s in steps], n_human,
                               next_seq=next_seq, saved_agents=agents)
    live = LiveModels(pool, bindings, sink=recorder, seed=derive_seed(row.seed, "models"))
    last = recorder.steps[-1] if recorder.steps else None
    before = [c for c, sid in zip(calls, call_steps) if last is None or sid != last.saved_id]
    waiting = [c for c, sid in zip(calls, call_steps) if last is not None and sid == last.saved_id]
    live.set_counters(_counts(before))
    if last is not None:
        last.calls, last.counters = waiting, _counts(before)
        last.saved_calls = len(waiting)  # they are in the store already
    ctx = Context(models=live, recorder=recorder, seed=row.seed, options=spec.options,
                  mode=RunMode.RESUME, interrupted_step=last)
    compiled = graph.build(checkpointer_for(store))
    config = {"configurable": {"thread_id": row.thread_id}}
    start_at, pending = _pending_question(compiled, config, _stored_answer(row, stored_answers))
    if not pending:
        raise ConfigError(f"session {row.id} has no pending question in the checkpointer")
    response = _stored_answer(row, stored_answers)
    if response is None:  # no answer typed yet for the pending question: ask for one
        response = answer(pending[0].value)
        if response is None:
            return SessionResult(row.id, Status.INTERRUPTED, {}, recorder)
        _record_answer(recorder, pending[0].value, response)
        _pause(store, recorder, pending[0].value, waiting=1)  # stored before it is acted on
    _serve_interrupted_step_from_record(ctx, live, recorder)
    return _drive(store, graph, ctx, live, recorder, {}, ctx.options, answer,
                  checkpointer_for(store), row.thread_id, first=Command(resume=response),
                  start_at=start_at)


def _pending_question(compiled: Any, config: dict[str, Any], typed: Any
                      ) -> tuple[dict[str, Any] | None, Any]:
    """The question the session waits on, and where to resume from. When the process died
    after a typed answer was stored but before the next pause, the graph's checkpoint has
    moved past the question while the record has not: resume from the checkpoint that
    asked it, so the node that took the answer runs again and is recorded."""
    state = compiled.get_state(config)
    if state.interrupts or typed is None:
        return None, state.interrupts
    for earlier in compiled.get_state_history(config):
        if earlier.interrupts:
            # A copy of that checkpoint without its pending writes: a resume killed after
            # the node took the answer left the node's writes on the original, and LangGraph
            # would skip the node instead of running (and recording) it again.
            fresh = compiled.update_state(earlier.config, None, as_node="__copy__")
            return fresh, earlier.interrupts
    return None, ()


def _stored_answer(row: orm.Session, stored: list[Any]) -> Any:
    """The answer typed at the pending question before the process died, if there is one
    (stored answers beyond those the graph had consumed when it last paused)."""
    pending = (row.output or {}).get("pending") or {}
    applied = pending.get("answers_applied")
    if applied is None or len(stored) <= applied:
        return None
    return stored[applied]


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
