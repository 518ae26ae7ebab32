"""The viewer's two handles on one store: a read-only one that every GET uses, and the
ordinary writable one, opened only when an action (replay, fork, a live session) needs it."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from tinmen.storage import Store
from tinmen.storage.db import create_store_engine

from tinmen.config import db_url


def read_only_engine(url: str) -> Engine:
    """An engine whose connections refuse writes: SQLite's ``query_only`` pragma (a URI
    ``mode=ro`` would fail where the WAL's -shm file does not exist yet) and PostgreSQL's
    read-only transactions. A bug in a GET handler then cannot change the store."""
    engine = create_store_engine(url)

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        if engine.dialect.name == "sqlite":
            cur.execute("PRAGMA query_only=ON")
        elif engine.dialect.name == "postgresql":
            cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        cur.close()
        if engine.dialect.name == "postgresql":
            dbapi_conn.commit()

    return engine


class Stores:
    """``read`` for pages and the JSON API; ``write()`` for actions."""

    def __init__(self, url: str | None) -> None:
        self.url = db_url(url)
        # migrates a new or old store once; a store at head is opened without a write lock
        self._write: Store | None = Store.open(self.url)
        self.read = Store(read_only_engine(self.url))
        self._lock = threading.Lock()

    def write(self) -> Store:
        with self._lock:
            if self._write is None:
                self._write = Store.open(self.url)
            return self._write

    def close(self) -> None:
        self.read.close()
        if self._write is not None:
            self._write.close()
