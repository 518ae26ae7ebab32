"""``tinmen db check``: find damage in a store, and repair the little that can be repaired.

Each check returns :class:`Problem` rows rather than raising, so one damaged table does not
hide the state of the others. What is checked:

* the file itself (SQLite ``PRAGMA integrity_check``) and every foreign key
  (``PRAGMA foreign_key_check``; on other databases one query per foreign key);
* every session's steps are numbered 0..n-1;
* every belief, decision and model call names a step *of its own session*, and every human
  input and metric a step index its session has;
* every content and artifact row still matches its sha256;
* no study or session is left ``running`` by a process that is gone (same host: its pid is
  not alive; elsewhere, or rows written before pids were stored: older than a threshold).

Repair marks stale rows ``abandoned``; only with ``delete=True`` (``--yes``) does it touch
other data: dangling references are cleared where the column may be empty, and rows that
cannot exist without their parent are deleted. Hash mismatches, step gaps and a damaged file
are reported, never "fixed": the remedy is a backup.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, exists, func, inspect, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DatabaseError
from tinmen.storage import orm
from tinmen.storage.db import (
    create_store_engine,
    current_revision,
    head_revision,
    known_revisions,
)

from tinmen.config import db_url
from tinmen.errors import StoreError

STALE_AFTER = timedelta(hours=24)  # a 'running' row we cannot probe is stale after this
ABANDONED = orm.Status.ABANDONED.value
STEP_LINKED = (orm.Belief, orm.Decision, orm.ModelCall)  # step_id -> step of the session
INDEX_LINKED = (orm.HumanInput, orm.Metric)  # step_index -> a step index of the session
GROUPS = {"file": "damaged file", "schema": "schema", "foreign_key": "broken foreign keys",
          "step_gap": "gaps in step numbering", "orphan": "rows linked to a missing step",
          "content_hash": "content rows that do not match their sha256",
          "artifact_hash": "artifact rows that do not match their sha256",
          "stale": "left running by a process that is gone"}


@dataclass(frozen=True)
class Problem:
    kind: str  # a key of GROUPS
    detail: str  # one line, names the row
    fix: str | None = None  # "mark" (by --repair) | "delete" (by --repair --yes) | None
    target: tuple[Any, ...] = ()  # what repair acts on


@dataclass
class CheckReport:
    url: str
    problems: list[Problem] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    remaining: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.remaining

    def lines(self) -> list[str]:
        """Problems grouped by kind, a count per group, one line per problem."""
        counts = Counter(p.kind for p in self.problems)
        out: list[str] = []
        for kind in GROUPS:
            if counts[kind]:
                out.append(f"{GROUPS[kind]} ({counts[kind]}):")
                out += [f"  {p.detail}" for p in self.problems if p.kind == kind]
        return out + [f"repaired: {line}" for line in self.repaired]

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "ok": self.ok, "counts": dict(Counter(p.kind for p in
                                                                      self.problems)),
                "problems": [{k: v for k, v in asdict(p).items() if k != "target"}
                             for p in self.problems],
                "repaired": self.repaired, "remaining": len(self.remaining)}


# --------------------------------------------------------------------------- entry points
def check_store(url: str | None = None, *, repair: bool = False, delete_rows: bool = False,
                stale_after: timedelta = STALE_AFTER) -> CheckReport:
    """Check the store at ``url`` (never creating or migrating it); see the module docstring."""
    engine = open_existing(url)
    try:
        report = CheckReport(url=engine.url.render_as_string(hide_password=True))
        report.problems = run_checks(engine, stale_after)
        report.remaining = list(report.problems)
        if repair:
            repair_problems(engine, report, delete_rows=delete_rows)
        return report
    finally:
        engine.dispose()


def open_existing(url: str | None) -> Engine:
    """An engine on an existing store: checking a path that has no store is a usage error,
    not a reason to create an empty one."""
    url = db_url(url)
    engine = create_store_engine(url)
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database not in (None, "", ":memory:"):
        path = Path(database).expanduser()
        if not path.is_file() or path.stat().st_size == 0:  # (opening an empty file writes)
            engine.dispose()
            what = "an empty file" if path.is_file() else "no store"
            raise StoreError(f"{what} at {database}; pass the --db of an existing store")
    return engine


def quick_check(store: Any) -> list[str]:
    """SQLite's fast structural check (``PRAGMA quick_check``) of ``store``: problem lines,
    empty when the file is sound (and always on other databases)."""
    engine = store.engine if hasattr(store, "engine") else store
    if engine.dialect.name != "sqlite":
        return []
    try:
        with engine.connect() as conn:
            rows = [str(r[0]) for r in conn.exec_driver_sql("PRAGMA quick_check(20)")]
    except DatabaseError as exc:
        return [_first_line(exc)]
    return [] if rows == ["ok"] else [_first_line(r) for r in rows]


def quick_check_warning(store: Any) -> str | None:
    """One line for commands that read a store (show, replay) to print before they start."""
    found = quick_check(store)
    if not found:
        return None
    return (f"warning: the store {getattr(store, 'url', '')} fails SQLite's quick check "
            f"({found[0]}); results may be wrong: run `tinmen db check` and restore a backup")


def run_checks(engine: Engine, stale_after: timedelta) -> list[Problem]:
    """Every check, in order; the row checks only when the schema has all its tables."""
    tables = _tables(engine)
    found = _guarded("file", _file_integrity, engine)
    found += _guarded("schema", _schema, engine, tables)
    if not {t.name for t in orm.Base.metadata.sorted_tables} <= tables:
        return found
    checks = [("foreign_key", _foreign_keys, ()), ("step_gap", _step_gaps, ()),
              ("orphan", _orphans, ()), ("content_hash", _content_hashes, ()),
              ("artifact_hash", _artifact_hashes, ()), ("stale", _stale_rows, (stale_after,))]
    for kind, check, extra in checks:
        found += _guarded(kind, check, engine, tables, *extra)
    return found


def _guarded(kind: str, check: Any, engine: Engine, *args: Any) -> list[Problem]:
    """Run one check; a database error while checking is itself a problem to report."""
    try:
        with engine.connect() as conn:
            return list(check(conn, *args))
    except DatabaseError as exc:
        return [Problem("file", f"could not check {GROUPS[kind]}: {_first_line(exc)}")]


# --------------------------------------------------------------------------- checks
def _file_integrity(conn: Connection) -> list[Problem]:
    if conn.dialect.name != "sqlite":
        return []  # PostgreSQL keeps its own checksums; amcheck is an operator's tool
    rows = [str(r[0]) for r in conn.exec_driver_sql("PRAGMA integrity_check(100)")]
    return [] if rows == ["ok"] else [Problem("file", _first_line(r)) for r in rows]


def _schema(conn: Connection, tables: set[str]) -> list[Problem]:
    have, want = current_revision(conn.engine), head_revision()
    missing = sorted(t.name for t in orm.Base.metadata.sorted_tables if t.name not in tables)
    if have == want and not missing:
        return []
    tail = f"; missing tables: {', '.join(missing)}" if missing else ""
    if have is not None and have not in known_revisions():
        return [Problem("schema", f"the store is at revision {have}, which this tinmen does "
                                  f"not know (its newest is {want}): it was written by a newer "
                                  f"tinmen; check it with that one{tail}")]
    return [Problem("schema", f"the store is at revision {have}, this tinmen's newest is "
                              f"{want}{tail}: run `tinmen db upgrade`")]


def _foreign_keys(conn: Connection, tables: set[str]) -> list[Problem]:
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        return [Problem("foreign_key", f"{table} row {rowid} refers to a missing {parent} row",
                        "delete", (table, parent)) for table, rowid, parent, _ in rows]
    found = []
    for table, fk, condition in _fk_conditions(tables):
        n = conn.scalar(select(func.count()).select_from(table).where(condition))
        if n:
            found.append(Problem("foreign_key", f"{n} {table.name} rows refer to a missing "
                                 f"{fk.referred_table.name} row", "delete",
                                 (table.name, fk.referred_table.name)))
    return found


def _fk_conditions(tables: set[str]) -> list[tuple[Any, Any, Any]]:
    """(table, foreign key, "this row's reference is dangling") for every foreign key."""
    out = []
    for table in orm.Base.metadata.sorted_tables:
        for fk in table.foreign_key_constraints:
            if table.name not in tables or fk.referred_table.name not in tables:
                continue
            parent = fk.referred_table.alias("parent")
            pairs = [(el.parent, parent.c[el.column.name]) for el in fk.elements]
            present = and_(*(col.is_not(None) for col, _ in pairs))
            found = exists().where(and_(*(p == col for col, p in pairs)))
            out.append((table, fk, and_(present, ~found)))
    return out


def _step_gaps(conn: Connection, tables: set[str]) -> list[Problem]:
    step = orm.Step
    rows = conn.execute(select(step.session_id, func.count(), func.min(step.index),
                               func.max(step.index)).group_by(step.session_id)
                        .having(or_(func.min(step.index) != 0,
                                    func.max(step.index) != func.count() - 1)))
    return [Problem("step_gap", f"session {sid}: {n} steps numbered {lo}..{hi}, not "
                                f"0..{n - 1} (steps are missing)") for sid, n, lo, hi in rows]


def _orphans(conn: Connection, tables: set[str]) -> list[Problem]:
    found = []
    for model in STEP_LINKED:
        step = orm.Step.__table__.alias("s")
        rows = conn.execute(select(model.id, model.session_id, model.step_id)
                            .outerjoin(step, step.c.id == model.step_id)
                            .where(model.step_id.is_not(None),
                                   or_(step.c.id.is_(None),
                                       step.c.session_id != model.session_id)))
        found += [Problem("orphan", f"{model.__tablename__} {rid} (session {sid}) names step "
                          f"id {step_id}, which is not a step of its session", "delete",
                          (model.__tablename__, rid)) for rid, sid, step_id in rows]
    for model in INDEX_LINKED:
        has_step = exists().where(orm.Step.session_id == model.session_id,
                                  orm.Step.index == model.step_index)
        rows = conn.execute(select(model.id, model.session_id, model.step_index)
                            .where(model.step_index.is_not(None),
                                   model.session_id.is_not(None), ~has_step))
        found += [Problem("orphan", f"{model.__tablename__} {rid} (session {sid}) names step "
                          f"{index}, which its session does not have", "delete",
                          (model.__tablename__, rid)) for rid, sid, index in rows]
    return found


def _content_hashes(conn: Connection, tables: set[str]) -> list[Problem]:
    rows = conn.execution_options(yield_per=500).execute(
        select(orm.Content.sha256, orm.Content.text))
    return [Problem("content_hash", f"content {sha[:12]}: its text no longer matches its "
                    "sha256 (edited or damaged); restore it from a backup")
            for sha, text in rows if hashlib.sha256(text.encode()).hexdigest() != sha]


def _artifact_hashes(conn: Connection, tables: set[str]) -> list[Problem]:
    rows = conn.execution_options(yield_per=50).execute(
        select(orm.Artifact.sha256, orm.Artifact.size, orm.Artifact.data))
    found = []
    for sha, size, data in rows:
        if hashlib.sha256(data).hexdigest() != sha or size != len(data):
            found.append(Problem("artifact_hash", f"artifact {sha[:12]}: its {len(data)} bytes "
                                 "no longer match its sha256 and size (edited or damaged); "
                                 "restore it from a backup"))
    return found


def _stale_rows(conn: Connection, tables: set[str], stale_after: timedelta) -> list[Problem]:
    found = []
    for model, noun in ((orm.Study, "study"), (orm.Session, "session")):
        owned = {c["name"] for c in inspect(conn).get_columns(model.__tablename__)} >= \
            {"pid", "host"}
        cols = [model.id, model.created_at] + ([model.pid, model.host] if owned else [])
        for row in conn.execute(select(*cols).where(model.status == "running")):
            pid, host = (row[2], row[3]) if owned else (None, None)
            why = stale_reason(pid, host, row.created_at, stale_after)
            if why:
                found.append(Problem("stale", f"{noun} {row.id} is 'running' but {why}",
                                     "mark", (noun, row.id)))
    return found


def stale_reason(pid: int | None, host: str | None, created: datetime | None,
                 stale_after: timedelta) -> str | None:
    """Why a 'running' row's process is gone, or None while it may still be alive."""
    created = _aware(created)
    if pid is not None and host == socket.gethostname():
        if not _alive(pid, created):
            return f"its process {pid} on this host is gone"
        return None
    age = datetime.now(UTC) - created if created else None
    if age is not None and age > stale_after:
        where = f"on host {host}" if host else "by an unknown process"
        return f"was started {where} {age.total_seconds() / 3600:.0f} h ago"
    return None


def _alive(pid: int, since: datetime | None) -> bool:
    """Is ``pid`` a live process that was started before ``since`` (a pid reused by a newer
    process does not keep an old row alive)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else
    started = _process_start(pid)
    return started is None or since is None or started <= since + timedelta(seconds=5)


def _process_start(pid: int) -> datetime | None:
    """When ``pid`` started (Linux /proc); None where that cannot be known."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text()
                    .splitlines() if line.startswith("btime"))
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return datetime.fromtimestamp(boot + int(fields[19]) / ticks, UTC)


# --------------------------------------------------------------------------- repair
def repair_problems(engine: Engine, report: CheckReport, *, delete_rows: bool) -> None:
    """Mark stale rows; with ``delete_rows`` also fix dangling references. One transaction."""
    remaining, repaired, done = [], [], set()
    with engine.begin() as conn:
        for problem in report.problems:
            if problem.fix == "mark":
                repaired.append(_mark_abandoned(conn, *problem.target))
            elif problem.fix == "delete" and delete_rows:
                if (problem.kind, problem.target) not in done:  # one fix per FK, not per row
                    repaired.append(_drop_dangling(conn, problem))
                    done.add((problem.kind, problem.target))
            else:
                remaining.append(problem)
    report.repaired = [line for line in dict.fromkeys(repaired) if line]
    report.remaining = remaining
    if any(p.fix == "delete" for p in remaining):
        report.repaired.append("rows with dangling references were left alone: pass --yes "
                               "to clear those references (or delete the rows that need them)")


def _mark_abandoned(conn: Connection, noun: str, row_id: Any) -> str:
    model = orm.Study if noun == "study" else orm.Session
    values: dict[str, Any] = {"status": ABANDONED}
    if model is orm.Session:
        values |= {"finished_at": datetime.now(UTC),
                   "error": "abandoned: its process was gone (tinmen db check --repair)"}
    conn.execute(update(model).where(model.id == row_id, model.status == "running")
                 .values(**values))
    return f"{noun} {row_id} marked {ABANDONED}"


def _drop_dangling(conn: Connection, problem: Problem) -> str:
    if problem.kind == "orphan":
        table, row_id = problem.target
        model = next(m for m in STEP_LINKED + INDEX_LINKED if m.__tablename__ == table)
        column = model.step_id if model in STEP_LINKED else model.step_index
        conn.execute(update(model).where(model.id == row_id).values({column.key: None}))
        return f"{table} {row_id}: its step link cleared"
    table_name, parent = problem.target
    return _clear_foreign_key(conn, table_name, parent)


def _clear_foreign_key(conn: Connection, table_name: str, parent: str) -> str:
    """Dangling references from ``table_name`` to ``parent``: set to NULL where the column
    may be empty (the row keeps its data), otherwise the row is deleted."""
    for table, fk, dangling in _fk_conditions(_tables_of(conn)):
        if table.name != table_name or fk.referred_table.name != parent:
            continue
        if all(col.nullable for col in fk.columns):
            conn.execute(update(table).where(dangling).values({c.key: None for c in fk.columns}))
            return f"{table_name}: references to missing {parent} rows cleared"
        n = conn.execute(delete(table).where(dangling)).rowcount
        return f"{table_name}: {n} rows that referred to missing {parent} rows deleted"
    return ""


# --------------------------------------------------------------------------- helpers
def _tables(engine: Engine) -> set[str]:
    try:
        with engine.connect() as conn:
            return _tables_of(conn)
    except DatabaseError:
        return set()


def _tables_of(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; tinmen writes UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _first_line(value: Any) -> str:
    text = str(getattr(value, "orig", value)).strip()
    return " ".join(text.splitlines()) if text else repr(value)

