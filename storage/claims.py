"""Claims on a study's grid points: exactly once under concurrency.

Before a process runs (condition, rep) of a study it inserts a ``trial_claim`` row; the key
is unique, so when two processes resume one study only one of them gets each grid point
and the other moves on. A claim whose process died (same host, pid gone) is taken over;
one held by a live process or by another host is left to it. A trial that fails releases
its claim, so a later resume runs it again; a completed one keeps it.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from sqlalchemy import delete, exists, select, update
from tinmen.storage import Store, orm


def _alive(pid: int | None, host: str | None) -> bool:
    if host != socket.gethostname() or pid is None:
        return True  # another machine's process: we cannot tell, so we respect it
    if pid == os.getpid():
        return False  # ours, from an earlier run in this process that did not finish
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _completed(db: object, study_id: int, condition_id: int, rep: int) -> bool:
    S = orm.Session
    return bool(db.scalar(select(exists().where(  # type: ignore[attr-defined]
        S.study_id == study_id, S.condition_id == condition_id, S.rep == rep,
        S.status == orm.Status.COMPLETED))))


def claim(store: Store, study_id: int, condition_id: int, rep: int) -> bool:
    """True when this process now owns the grid point and it has not been completed."""
    with store.unit_of_work() as uow:
        row = {"study_id": study_id, "condition_id": condition_id, "rep": rep,
               "pid": os.getpid(), "host": socket.gethostname(), "claimed_at": orm.utcnow()}
        inserted = uow.session.execute(_insert_new(store).values(**row))
        uow.commit()
        if inserted.rowcount == 1:
            return True
    with store.unit_of_work() as uow:
        db = uow.session
        held = db.get(orm.TrialClaim, (study_id, condition_id, rep))
        if held is None or _alive(held.pid, held.host) or \
                _completed(db, study_id, condition_id, rep):
            return False
        T = orm.TrialClaim  # take over a dead process's claim, unless someone just did
        took = db.execute(update(T).where(T.study_id == study_id,
                                          T.condition_id == condition_id, T.rep == rep,
                                          T.pid == held.pid, T.host == held.host)
                          .values(pid=os.getpid(), host=socket.gethostname(),
                                  claimed_at=orm.utcnow()))
        uow.commit()
        return took.rowcount == 1


def _insert_new(store: Store) -> Any:
    """INSERT … ON CONFLICT DO NOTHING: the database decides who gets a grid point, in one
    statement, with no error to catch (both SQLite and PostgreSQL have it)."""
    if store.engine.url.get_backend_name() == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        return pg_insert(orm.TrialClaim).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert
    return sqlite_insert(orm.TrialClaim).on_conflict_do_nothing()


def release(store: Store, study_id: int, condition_id: int, rep: int) -> None:
    """Give a grid point back (its trial failed), so a later resume runs it again."""
    T = orm.TrialClaim
    with store.unit_of_work() as uow:
        uow.session.execute(delete(T).where(T.study_id == study_id,
                                            T.condition_id == condition_id, T.rep == rep,
                                            T.pid == os.getpid()))
        uow.commit()
