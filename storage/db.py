"""Opening the store: engine creation, SQLite pragmas, migrations, readable errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from tinmen.models.registry import missing_dependency

from tinmen.errors import StoreError

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 5000


def busy_timeout_default() -> int:
    """How long a writer waits for a locked SQLite store (``TINMEN_BUSY_TIMEOUT_MS``)."""
    return int(os.environ.get("TINMEN_BUSY_TIMEOUT_MS", BUSY_TIMEOUT_MS))


def create_store_engine(url: str, *, busy_timeout_ms: int | None = None) -> Engine:
    """An engine for ``url``; SQLite gets WAL, busy_timeout and foreign keys per connection."""
    if busy_timeout_ms is None:
        busy_timeout_ms = busy_timeout_default()
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"bad database URL '{url}': use a SQLAlchemy URL such as "
                         "sqlite:///tinmen.db or postgresql+psycopg://user@host/db, or a path "
                         "ending in .db") from exc
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(url, parsed.database, busy_timeout_ms)
        return create_engine(url, pool_pre_ping=True)
    except NoSuchModuleError as exc:
        raise StoreError(f"bad database URL '{url}': unknown database dialect "
                         f"'{parsed.drivername}'") from exc
    except ModuleNotFoundError as exc:
        raise missing_dependency(exc.name or "psycopg", f"the database URL '{url}'") from exc


def _sqlite_engine(url: str, database: str | None, busy_timeout_ms: int) -> Engine:
    if database and database != ":memory:":
        folder = Path(database).expanduser().resolve().parent
        if not folder.is_dir():
            raise StoreError(f"cannot open store '{url}': folder {folder} does not exist")
    engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000,
                                              "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        if database and database != ":memory:":
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return engine


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply Alembic migrations up to ``revision`` on ``engine``."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except OperationalError as exc:
        raise store_error(exc, str(engine.url)) from exc


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def table_names(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())


def store_error(exc: Exception, url: str) -> StoreError:
    """Translate a driver error into one line that says what to do."""
    text = str(getattr(exc, "orig", exc))
    if "locked" in text or "busy" in text:
        return StoreError(f"the store {url} is locked by another process; wait for it to "
                          "finish, or pass another --db")
    if "unable to open" in text:
        return StoreError(f"cannot open store {url}: {text}; check the path and permissions")
    if "file is not a database" in text:
        return StoreError(f"{url} is not a SQLite database; pass another --db")
    return StoreError(f"store error on {url}: {text.splitlines()[0]}")
