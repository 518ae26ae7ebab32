"""``Store`` (engine + session factory) and the unit of work that owns each transaction.

Repositories add and read rows but never commit; the caller's unit of work commits once,
and anything not committed is rolled back when the block exits::

    with store.unit_of_work() as uow:
        uow.sessions.add(row)
        uow.commit()
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import sessionmaker
from tinmen.storage.db import create_store_engine, store_error, upgrade
from tinmen.storage.repos import (
    ArtifactRepo,
    CallRepo,
    ContentRepo,
    RecordRepo,
    SessionRepo,
    StudyRepo,
)

from tinmen.config import db_url


class Store:
    """Where analysis rows live. ``Store.open(url)`` does the I/O; ``Store(engine)`` doesn't."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._factory = sessionmaker(engine, expire_on_commit=False)
        self._checkpointer: Any = None  # LangGraph's saver, made by checkpointer_for

    @classmethod
    def open(cls, url: str | None = None, *, migrate: bool = True) -> Store:
        """Open (and by default migrate to the newest schema) the store at ``url``."""
        url = db_url(url)
        engine = create_store_engine(url)
        try:
            if migrate:
                upgrade(engine)
        except (OperationalError, DatabaseError) as exc:
            raise store_error(exc, url) from exc
        return cls(engine)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self)

    def close(self) -> None:
        """Release the engine's connections and the checkpointer's own one (a PostgreSQL
        saver holds a server connection until it is closed, not until it is collected)."""
        saver, self._checkpointer = self._checkpointer, None
        conn = getattr(saver, "conn", None)
        if conn is not None:
            conn.close()
        self.engine.dispose()


class UnitOfWork:
    """One transaction with repositories bound to it; rolls back unless committed."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self) -> UnitOfWork:
        self.session = self.store._factory()
        self.content = ContentRepo(self.session)
        self.artifacts = ArtifactRepo(self.session)
        self.studies = StudyRepo(self.session)
        self.sessions = SessionRepo(self.session)
        self.calls = CallRepo(self.session, self.content, self.artifacts)
        self.records = RecordRepo(self.session)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # close() rolls back anything uncommitted but keeps loaded rows readable
        self.session.close()
        if isinstance(exc, (OperationalError, DatabaseError)):
            raise store_error(exc, self.store.url) from exc

    def commit(self) -> None:
        try:
            self.session.commit()
        except (OperationalError, DatabaseError) as exc:
            self.session.rollback()
            raise store_error(exc, self.store.url) from exc

    def rollback(self) -> None:
        self.session.rollback()
