"""The same safety on the PostgreSQL store: migrations under a lock, `db check` by queries,
and a strict checkpoint serializer on LangGraph's PostgreSQL saver."""

from __future__ import annotations

import ormsgpack
import pytest
from langgraph.checkpoint.serde.jsonplus import EXT_CONSTRUCTOR_SINGLE_ARG
from pg_stores import pg_database
from sqlalchemy import text
from test_checkpoint_safety import ASK, ECHO
from test_store_safety import OPENERS, _head, open_concurrently
from tinmen.graphs.example import AGENT as EXAMPLE
from tinmen.graphs.session import checkpointer_for, resume_session, run_session
from tinmen.models.pool import ModelPool
from tinmen.storage import Store, orm
from tinmen.storage.check import check_store
from tinmen.storage.db import create_store_engine, current_revision

from tinmen.errors import StoreError

pytestmark = pytest.mark.postgres


def test_concurrent_first_opens_of_one_new_database_all_succeed():
    with pg_database() as url:
        assert open_concurrently(url) == ["ok"] * OPENERS
        engine = create_store_engine(url)
        assert current_revision(engine) == _head()
        engine.dispose()


def _written(url: str) -> str:
    store = Store.open(url)
    done = run_session(store, EXAMPLE, {"request": "boil an egg"}, ECHO, pool=ModelPool())
    with store.unit_of_work() as uow:
        uow.artifacts.put(b"image bytes")
        uow.studies.add(orm.Study(name="grid", graph="example"))
        uow.commit()
    store.close()
    return done.session_id


def _execute(url: str, *statements: str, **params) -> None:
    engine = create_store_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), params)
    engine.dispose()


def test_db_check_finds_each_kind_of_damage_on_postgresql(pg_db_url):
    sid = _written(pg_db_url)
    assert check_store(pg_db_url).problems == []
    _execute(pg_db_url,
             # a foreign key broken the way a restore without constraints leaves it
             "ALTER TABLE belief DROP CONSTRAINT belief_session_id_fkey",
             "UPDATE belief SET session_id = 'ghost' WHERE id = (SELECT min(id) FROM belief)",
             "ALTER TABLE belief ADD CONSTRAINT belief_session_id_fkey FOREIGN KEY "
             "(session_id) REFERENCES session (id) ON DELETE CASCADE NOT VALID",
             'UPDATE step SET "index" = "index" + 10 WHERE session_id = :sid AND "index" = '
             '(SELECT max("index") FROM step WHERE session_id = :sid)',
             "UPDATE content SET text = text || 'x' WHERE sha256 = (SELECT min(sha256) FROM "
             "content)",
             "UPDATE artifact SET data = 'other'::bytea",
             "UPDATE study SET host = 'elsewhere', created_at = now() - interval '3 days'",
             sid=sid)
    kinds = {p.kind for p in check_store(pg_db_url).problems}
    assert kinds == {"foreign_key", "step_gap", "orphan", "content_hash", "artifact_hash",
                     "stale"}  # orphan: the metric that named the moved step
    repaired = check_store(pg_db_url, repair=True, delete_rows=True)
    assert any("deleted" in line for line in repaired.repaired)
    assert {p.kind for p in check_store(pg_db_url).problems} == {"step_gap", "content_hash",
                                                                 "artifact_hash"}


def test_a_tampered_postgresql_checkpoint_is_refused(pg_db_url, tmp_path):
    marker = tmp_path / "pg-marker"
    store = Store.open(pg_db_url)
    first = run_session(store, ASK, {}, ECHO, pool=ModelPool(), answer=None,
                        checkpointer=checkpointer_for(store))
    evil = ormsgpack.packb(ormsgpack.Ext(EXT_CONSTRUCTOR_SINGLE_ARG,
                                         ormsgpack.packb(["os", "mkdir", str(marker)])))
    with store.engine.begin() as conn:
        # the pending question: a pending write, read back by every resume
        changed = conn.execute(text("UPDATE checkpoint_writes SET type = 'msgpack', blob = :b "
                                    "WHERE thread_id = :t AND channel = '__interrupt__'"),
                               {"b": evil, "t": first.session_id})
        assert changed.rowcount > 0
    with pytest.raises(StoreError, match="os.mkdir"):
        resume_session(store, first.session_id, lambda p: "teal", pool=ModelPool())
    assert not marker.exists()
    store.close()
