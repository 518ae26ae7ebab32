"""Store ingest, SQLite and PostgreSQL side by side: rows/s of recorded sessions written.

    .venv/bin/python benchmarks/store_ingest.py [--sessions 200] [--writers 1,4,16]
        [--pg-url postgresql+psycopg://tinmen:tinmen@127.0.0.1:5432/tinmen_test]

Each session is shaped like the example agent's (3 steps, a belief with its distribution,
a scored decision, a ``score`` and a ``generate`` model call with token log-probs, a
metric, its agent row) and is written the way every session is: one ``Recorder.flush``,
one transaction. Only the flushes are timed (building the recorders is not), for
``--writers`` threads sharing one store, on a fresh SQLite file and a fresh PostgreSQL
database (created on the ``--pg-url`` server, default ``TINMEN_TEST_PG_URL`` — see
``.ci/pg`` — and dropped afterwards). Rows are counted in the store afterwards, so the
rate is of rows that really landed, content-deduplicated text included.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from tinmen.graphs.recorder import Recorder
from tinmen.models.client import CallRecord
from tinmen.storage import Store, orm

TABLES = (orm.Session, orm.Agent, orm.Step, orm.ModelCall, orm.Belief, orm.Decision,
          orm.Metric, orm.Content)
TOPICS = ["science", "cooking", "travel", "sports", "money"]


def call(index: int, op: str, prompt: str, output: object) -> CallRecord:
    return CallRecord(role="agent", op=op, call_index=index, spec={"name": "scripted:echo"},
                      params={"max_new_tokens": 8}, inputs={"prompt": prompt},
                      request_hash=uuid.uuid4().hex, seed=2**62 + index, output=output,
                      latency_s=0.001)


def recorded_session(i: int) -> Recorder:
    """One session's rows in a recorder, as the example agent leaves them before flush."""
    sid = uuid.uuid4().hex
    rec = Recorder(orm.Session(id=sid, graph="example", mode="live", status="running",
                               thread_id=sid, seed=i, inputs={"inputs": {"request": f"q{i}"}},
                               bindings={"agent": {"name": "scripted:echo"}}))
    rec.agent("agent", seed=i, roles=["agent"])
    probs = {t: 0.2 for t in TOPICS}
    with rec.step("classify", agent="agent"):
        rec.model_call(call(0, "score", f"Request {sid}: which topic?", [-1.6] * 5))
        rec.belief("request.topic", "cooking", distribution=probs, agent="agent")
    with rec.step("decide", agent="agent"):
        rec.decision("answer_or_clarify", options=[{"option": "answer", "score": -0.4},
                                                   {"option": "clarify", "score": 0.4}],
                     chosen="clarify", uncertainty=1.6, based_on=["request.topic"])
    with rec.step("write", agent="agent"):
        reply = {"text": f"Could you say more about request {sid}?",
                 "token_logprobs": [-0.5] * 8}
        rec.model_call(call(1, "generate", f"Clarify request {sid}", reply))
        rec.metric("reply_tokens", 8)
    return rec


def row_count(store: Store) -> int:
    with store.unit_of_work() as uow:
        return sum(int(uow.session.scalar(select(func.count()).select_from(t)) or 0)
                   for t in TABLES)


def ingest(store: Store, sessions: int, writers: int) -> tuple[int, float]:
    """(rows written, seconds) for ``sessions`` flushes spread over ``writers`` threads."""
    recorders = [recorded_session(i) for i in range(sessions)]
    before = row_count(store)
    start = time.perf_counter()
    with ThreadPoolExecutor(writers) as ex:
        list(ex.map(lambda r: r.flush(store, status="completed", output={"ok": True}),
                    recorders))
    seconds = time.perf_counter() - start
    return row_count(store) - before, seconds


@contextmanager
def scratch_pg(server_url: str) -> Iterator[str]:
    """A fresh database on the server, dropped afterwards (the role needs CREATEDB)."""
    base = make_url(server_url)
    name = f"tinmen_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def measure(urls: dict[str, str], sessions: int, writers: list[int]
            ) -> dict[str, dict[int, tuple[int, float]]]:
    """Both stores, each writer count in turn, alternating stores so that a change in the
    machine's load hits both alike (each warmed up first: migrations, caches)."""
    stores = {name: Store.open(url) for name, url in urls.items()}
    try:
        for store in stores.values():
            ingest(store, 5, 1)
        return _alternating(stores, sessions, writers)
    finally:
        for store in stores.values():
            store.close()


def _alternating(stores: dict[str, Store], sessions: int, writers: list[int]
                 ) -> dict[str, dict[int, tuple[int, float]]]:
    results: dict[str, dict[int, tuple[int, float]]] = {name: {} for name in stores}
    for w in writers:
        for name, store in stores.items():
            results[name][w] = ingest(store, sessions, w)
    return results


def print_table(results: dict[str, dict[int, tuple[int, float]]], sessions: int) -> None:
    per_session = next(iter(results["sqlite"].values()))[0] // sessions
    print(f"{sessions} sessions per run, {per_session} rows each (one transaction each)")
    print(f"{'writers':>7} | {'sqlite rows/s':>13} | {'postgresql rows/s':>17} | "
          f"{'pg/sqlite':>9} | {'sqlite ms/session':>17} | {'pg ms/session':>13}")
    for w in results["sqlite"]:
        (sr, ss), (pr, ps) = results["sqlite"][w], results["postgresql"][w]
        print(f"{w:>7} | {sr / ss:>13.0f} | {pr / ps:>17.0f} | {(pr / ps) / (sr / ss):>8.2f}x | "
              f"{ss / sessions * 1000:>17.2f} | {ps / sessions * 1000:>13.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--writers", default="1,4,16", help="comma-separated thread counts")
    parser.add_argument("--pg-url", default=os.environ.get("TINMEN_TEST_PG_URL"),
                        help="a PostgreSQL server URL whose role may CREATE DATABASE")
    args = parser.parse_args()
    if not args.pg_url:
        parser.error("no PostgreSQL server: pass --pg-url or run "
                     "`export TINMEN_TEST_PG_URL=$(bash .ci/pg)`")
    writers = [int(w) for w in args.writers.split(",")]
    with tempfile.TemporaryDirectory() as tmp, scratch_pg(args.pg_url) as pg_url:
        urls = {"sqlite": f"sqlite:///{Path(tmp)}/ingest.db", "postgresql": pg_url}
        results = measure(urls, args.sessions, writers)
    print_table(results, args.sessions)


if __name__ == "__main__":
    main()
