"""The store: migrations, unit of work, deduplication, and one-line errors."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import func, select
from tinmen.storage import Store, orm
from tinmen.storage.db import current_revision, table_names

from tinmen.errors import NotFoundError, StoreError

TABLES = {"study", "condition", "session", "agent", "step", "model_call", "belief",
          "decision", "human_input", "metric", "prediction", "artifact", "content"}


def _session(sid: str = "s1") -> orm.Session:
    return orm.Session(id=sid, graph="example", thread_id=sid, seed=2**62 + 5)


def test_migrations_upgrade_an_empty_database(empty_db_url):
    store = Store.open(empty_db_url)
    assert TABLES <= set(table_names(store.engine))
    assert current_revision(store.engine) == _head()
    Store.open(empty_db_url).close()  # idempotent on an up-to-date store
    store.close()


def _head() -> str:
    from alembic.script import ScriptDirectory
    from tinmen.storage.db import MIGRATIONS

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def test_the_0001_schema_upgrades_to_head_keeping_its_sessions(empty_db_url):
    """A store written by an earlier tinmen opens with the new columns, rows intact."""
    from tinmen.storage.db import create_store_engine, upgrade

    url = empty_db_url
    engine = create_store_engine(url)
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO session (id, graph, mode, status, thread_id, seed, "
                             "inputs, bindings, created_at) VALUES ('old', 'example', 'live', "
                             "'completed', 'old', 1, '{}', '{}', '2026-01-01')")
    engine.dispose()
    store = Store.open(url)
    assert current_revision(store.engine) == _head()
    with store.unit_of_work() as uow:
        row = uow.sessions.get("old")
        assert row.graph_ref is None and row.graph == "example"


def test_sqlite_pragmas_are_on(store):
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0


def test_unit_of_work_commits_only_when_asked(any_store):
    store = any_store
    with store.unit_of_work() as uow:
        uow.sessions.add(_session("kept"))
        uow.commit()
    with store.unit_of_work() as uow:
        uow.sessions.add(_session("dropped"))  # no commit: rolled back on exit
    with pytest.raises(RuntimeError), store.unit_of_work() as uow:
        uow.sessions.add(_session("failed"))
        uow.session.flush()
        raise RuntimeError("boom")
    with store.unit_of_work() as uow:
        assert [s.id for s in uow.sessions.list()] == ["kept"]
        assert uow.sessions.get("kept").seed == 2**62 + 5  # 63-bit seeds survive


def test_foreign_keys_are_enforced(any_store):
    store = any_store
    with pytest.raises(StoreError), store.unit_of_work() as uow:
        uow.session.add(orm.Step(session_id="missing", index=0, node="x"))
        uow.commit()


def test_repeated_text_is_stored_once(any_store):
    store = any_store
    with store.unit_of_work() as uow:
        a = uow.content.put("the same prompt")
        b = uow.content.put("the same prompt")
        uow.commit()
    with store.unit_of_work() as uow:
        again = uow.content.put("the same prompt")
        uow.commit()
        n = uow.session.scalar(select(func.count()).select_from(orm.Content))
    assert a == b == again and n == 1


def test_session_lookup_by_prefix_and_missing(any_store):
    store = any_store
    with store.unit_of_work() as uow:
        uow.sessions.add(_session("abcdef123"))
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.sessions.get("abcd").id == "abcdef123"
        with pytest.raises(NotFoundError, match="tinmen sessions"):
            uow.sessions.get("zzzz")


@pytest.mark.parametrize("url, needle", [
    ("nosuchdialect://x", "unknown database dialect"),
    ("not a url", "bad database URL"),
    ("sqlite:////no/such/folder/x.db", "does not exist"),
])
def test_bad_database_url_gives_one_line(url, needle):
    with pytest.raises(StoreError, match=needle) as info:
        Store.open(url)
    assert "\n" not in str(info.value)


def test_a_plain_path_ending_in_db_is_a_sqlite_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for given, file in (("runs.db", tmp_path / "runs.db"),
                        (str(tmp_path / "abs.sqlite"), tmp_path / "abs.sqlite")):
        store = Store.open(given)
        with store.unit_of_work() as uow:
            uow.sessions.add(_session("p" + file.stem))
            uow.commit()
        store.close()
        assert file.exists() and sqlite3.connect(file).execute(
            "select id from session").fetchall() == [("p" + file.stem,)]


def test_locked_database_gives_one_line(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/locked.db"
    Store.open(url)
    monkeypatch.setenv("TINMEN_BUSY_TIMEOUT_MS", "100")
    holder = sqlite3.connect(tmp_path / "locked.db")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        store = Store.open(url, migrate=False)
        with pytest.raises(StoreError, match="locked by another process") as info:
            with store.unit_of_work() as uow:
                uow.sessions.add(_session("blocked"))
                uow.commit()
        assert "\n" not in str(info.value)
    finally:
        holder.rollback()
        holder.close()
    with Store.open(url).unit_of_work() as uow:  # nothing half-written
        assert uow.sessions.list() == []
