"""Many writers on one PostgreSQL store lose nothing: 16 threads sharing a store, and 16
processes each opening their own, write whole sessions at once (with LangGraph's
checkpointer on the same database, whose tables the processes create concurrently)."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from tinmen.graphs.example import AGENT as EXAMPLE
from tinmen.graphs.session import checkpointer_for, run_session
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec
from tinmen.storage import Store, orm

pytestmark = pytest.mark.postgres

WRITERS = 16
SESSIONS_EACH = 4
STEPS = ["classify", "decide", "write"]
# what the forkserver imports once for every child; this module itself cannot be among
# them (Python 3.11's forkserver ignores sys.path, so only installed packages preload)
PRELOAD = ["pytest", "tinmen.graphs.session", "tinmen.graphs.example", "tinmen.models.pool",
           "tinmen.models.registry", "psycopg", "langgraph.checkpoint.postgres",
           "sqlalchemy.dialects.postgresql.psycopg"]
CALLS_PER_SESSION = 2


def write_sessions(store: Store, writer: int, n: int, barrier) -> list[str]:
    """One writer's sessions; all writers pass the barrier together so their flushes,
    content inserts and checkpoints overlap."""
    pool = ModelPool()
    bindings = {"agent": resolve_spec("scripted:echo")}
    barrier.wait()
    return [run_session(store, EXAMPLE, {"request": f"writer {writer} asks question {i}"},
                        bindings, pool=pool, seed=writer * 1000 + i,
                        checkpointer=checkpointer_for(store)).session_id
            for i in range(n)]


def process_writer(url: str, writer: int, n: int, barrier, out) -> None:
    """A separate process: its own engine and checkpointer connection on the same store."""
    store = Store.open(url, migrate=False)
    try:
        out.put((writer, write_sessions(store, writer, n, barrier)))
    except BaseException as exc:  # reported to the test, not lost in a child's stderr
        out.put((writer, repr(exc)))
    finally:
        store.close()


def assert_all_complete(url: str, ids: list[str]) -> None:
    """Every session is there, completed, with every step and call it made."""
    assert len(set(ids)) == WRITERS * SESSIONS_EACH
    store = Store.open(url, migrate=False)
    try:
        with store.unit_of_work() as uow:
            db = uow.session
            assert db.scalar(select(func.count()).select_from(orm.Session)) == len(ids)
            assert db.scalar(select(func.count()).select_from(orm.ModelCall)) == \
                len(ids) * CALLS_PER_SESSION
            for sid in ids:
                assert uow.sessions.get(sid).status == "completed"
                assert [s.node for s in uow.records.steps(sid)] == STEPS
                assert len(uow.records.calls(sid)) == CALLS_PER_SESSION
                assert len(uow.records.beliefs(sid)) >= 1
                assert len(uow.records.decisions(sid)) == 1
    finally:
        store.close()


def test_sixteen_threads_share_one_postgres_store(pg_db_url):
    store = Store.open(pg_db_url)
    barrier = threading.Barrier(WRITERS)
    try:
        with ThreadPoolExecutor(WRITERS) as ex:
            futures = [ex.submit(write_sessions, store, w, SESSIONS_EACH, barrier)
                       for w in range(WRITERS)]
            ids = [sid for f in futures for sid in f.result(timeout=300)]
    finally:
        store.close()
    assert_all_complete(pg_db_url, ids)


def test_sixteen_processes_write_to_one_postgres_store(pg_db_url):
    """Forked from a forkserver that imported tinmen once (16 fresh interpreters importing
    LangGraph cost over a minute on 2 busy cores); no child shares a connection with pytest."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    barrier, out = ctx.Barrier(WRITERS), ctx.Queue()
    procs = [ctx.Process(target=process_writer, args=(pg_db_url, w, SESSIONS_EACH, barrier, out))
             for w in range(WRITERS)]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=300) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    errors = {w: r for w, r in results.items() if isinstance(r, str)}
    assert not errors, errors
    assert_all_complete(pg_db_url, [sid for ids in results.values() for sid in ids])
