"""The store is safe to open from many processes at once, and ids typed by users are taken
literally (a ``%`` in a prefix is a character, not a wildcard)."""

from __future__ import annotations

import multiprocessing as mp

import pytest
from sqlalchemy import text
from tinmen.storage import Store, orm
from tinmen.storage.db import MIGRATIONS, create_store_engine, current_revision, upgrade

from tinmen.errors import NotFoundError, StoreError

OPENERS = 8


def _head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def _open_at_once(url: str, barrier, results) -> None:
    """One process's first open of the store, started together with the others."""
    barrier.wait()
    try:
        Store.open(url).close()
        results.put("ok")
    except Exception as exc:  # reported to the parent, which asserts on it
        results.put(f"{type(exc).__name__}: {exc}")


def open_concurrently(url: str) -> list[str]:
    """OPENERS processes open the store at ``url`` at the same instant; each one's outcome."""
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(OPENERS), ctx.Queue()
    procs = [ctx.Process(target=_open_at_once, args=(url, barrier, results))
             for _ in range(OPENERS)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    return outcomes


def test_concurrent_first_opens_of_one_new_file_all_succeed(tmp_path):
    url = f"sqlite:///{tmp_path}/new.db"
    outcomes = open_concurrently(url)
    assert outcomes == ["ok"] * OPENERS
    engine = create_store_engine(url)
    assert current_revision(engine) == _head()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1


def test_a_failed_migration_leaves_the_store_as_it_was(tmp_path):
    """Migrations run in one transaction: a failure half-way leaves no tables and no
    (empty) alembic_version behind, so the next open starts cleanly."""
    url = f"sqlite:///{tmp_path}/half.db"
    engine = create_store_engine(url)
    with engine.begin() as conn:  # 0001 creates eleven tables, then fails on this one
        conn.exec_driver_sql("CREATE TABLE model_call (id INTEGER PRIMARY KEY)")
    with pytest.raises(StoreError, match="already exists"):
        upgrade(engine)
    with engine.connect() as conn:
        tables = {r[0] for r in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"model_call"}  # neither 0001's tables nor alembic_version were kept


@pytest.mark.parametrize("prefix", ["%%%%", "____", "%", "a%b_"])
def test_session_prefix_wildcards_are_literal(store, prefix):
    with store.unit_of_work() as uow:
        uow.sessions.add(orm.Session(id="abcdef0123", graph="example", thread_id="t", seed=1))
        uow.commit()
    with store.unit_of_work() as uow, pytest.raises(NotFoundError):
        uow.sessions.get(prefix)


def test_session_prefix_with_a_literal_percent_still_matches(store):
    with store.unit_of_work() as uow:
        uow.sessions.add(orm.Session(id="50%_done_x", graph="example", thread_id="t", seed=1))
        uow.sessions.add(orm.Session(id="50ab_done", graph="example", thread_id="u", seed=1))
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.sessions.get("50%_d").id == "50%_done_x"
