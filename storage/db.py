"""Opening the store: engine creation, SQLite pragmas, migrations, readable errors."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError
from sqlalchemy.pool import NullPool
from tinmen.models.registry import missing_dependency

from tinmen.errors import ConfigError, StoreError

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 5000
MIGRATION_WAIT_S = 120.0  # openers wait this long for another process's migration
PG_MIGRATION_LOCK = 0x74696E6D656E  # pg_advisory_xact_lock key: "tinmen" in ASCII


def busy_timeout_default() -> int:
    """How long a writer waits for a locked SQLite store (``TINMEN_BUSY_TIMEOUT_MS``)."""
    raw = os.environ.get("TINMEN_BUSY_TIMEOUT_MS", "").strip()
    if not raw:
        return BUSY_TIMEOUT_MS
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value < 2**31:  # SQLite's busy_timeout is a C int of milliseconds
        raise ConfigError(f"TINMEN_BUSY_TIMEOUT_MS must be a whole number of milliseconds "
                          f"(0 … 2147483647), not '{raw[:40]}'; unset it for the default "
                          f"{BUSY_TIMEOUT_MS}")
    return value


def create_store_engine(url: str, *, busy_timeout_ms: int | None = None) -> Engine:
    """An engine for ``url``; SQLite gets WAL, busy_timeout and foreign keys per connection."""
    if busy_timeout_ms is None:
        busy_timeout_ms = busy_timeout_default()
    bad_url = StoreError(f"bad database URL '{url[:200]}': use a SQLAlchemy URL such as "
                         "sqlite:///tinmen.db or postgresql+psycopg://user@host/db, or a path "
                         "ending in .db")
    if "\x00" in url:
        raise bad_url
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise bad_url from exc
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(url, parsed.database, busy_timeout_ms)
        return create_engine(url, pool_pre_ping=True)
    except NoSuchModuleError as exc:
        raise StoreError(f"bad database URL '{url}': unknown database dialect "
                         f"'{parsed.drivername}'") from exc
    except ModuleNotFoundError as exc:
        raise missing_dependency(exc.name or "psycopg", f"the database URL '{url}'") from exc
    except ArgumentError as exc:  # e.g. sqlite://0: parsed, but not a URL SQLAlchemy opens
        raise bad_url from exc


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
    """Apply Alembic migrations up to ``revision`` on ``engine``, all in one transaction and
    under a store-wide lock: processes that open one new store at once must not race each
    other's CREATE TABLEs, and a migration that fails half-way must leave nothing behind
    (not even an empty ``alembic_version``)."""
    from alembic import command

    if revision == "head" and _at_head(engine):
        return  # the common case takes no write lock (read-only stores open too)
    check_known_revision(engine)
    cfg = _alembic_config()
    try:
        with _migration_transaction(engine) as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except DatabaseError as exc:
        raise store_error(exc, str(engine.url)) from exc


def _alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@functools.cache
def head_revision() -> str | None:
    """The newest revision this tinmen's migrations know (read once: loading the migration
    scripts costs ~40 ms, on every command)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


@functools.cache
def known_revisions() -> frozenset[str]:
    from alembic.script import ScriptDirectory

    return frozenset(s.revision for s in ScriptDirectory(str(MIGRATIONS)).walk_revisions())


def check_known_revision(engine: Engine) -> None:
    """A store at a schema revision this tinmen has never heard of was written by a newer
    one: say so, rather than let Alembic fail half-way through a migration."""
    try:
        have = current_revision(engine)
    except DatabaseError:
        return  # not a readable store: the migration reports what is wrong
    if have is not None and have not in known_revisions():
        raise StoreError(f"the store {engine.url.render_as_string(hide_password=True)} is at "
                         f"schema revision {have}, which this tinmen does not know (its newest "
                         f"is {head_revision()}): it was written by a newer tinmen; upgrade "
                         "tinmen, or pass another --db")


def _at_head(engine: Engine) -> bool:
    try:
        return current_revision(engine) == head_revision()
    except DatabaseError:
        return False  # let the migration itself report what is wrong


@contextmanager
def _migration_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside the transaction that holds the migration lock."""
    if _is_sqlite_file(engine):
        with _sqlite_migration_transaction(engine) as conn:
            yield conn
        return
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # held until the transaction ends
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
        yield conn


def _is_sqlite_file(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:")


@contextmanager
def _sqlite_migration_transaction(engine: Engine) -> Iterator[Connection]:
    """``BEGIN IMMEDIATE`` on a connection of its own: it takes SQLite's write lock before
    reading the schema version (so a second opener waits, then finds the store at head), and
    unlike pysqlite's default it keeps DDL inside the transaction, so a failure rolls every
    table back. Foreign keys are off while tables are rebuilt, as Alembic's batch mode
    requires (with them on, dropping a parent table cascades into its children)."""
    wait_s = max(busy_timeout_default() / 1000, MIGRATION_WAIT_S)
    migrator = create_engine(engine.url, poolclass=NullPool,
                             connect_args={"timeout": wait_s, "check_same_thread": False})

    @event.listens_for(migrator, "connect")
    def _manual_transactions(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # pysqlite: no implicit BEGIN/COMMIT around DDL
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(wait_s * 1000)}")
        cur.execute("PRAGMA foreign_keys=OFF")
        cur.close()

    @event.listens_for(migrator, "begin")
    def _begin_immediate(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        with migrator.begin() as conn:
            yield conn
    finally:
        migrator.dispose()


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
