"""The list pages' queries: sessions (filtered, keyset-paged, steps counted in one grouped
query) and studies (conditions and progress). A page costs a fixed number of indexed
queries however many sessions the store holds."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from tinmen.storage import Store, orm

S, C, St, A = orm.Session, orm.Condition, orm.Step, orm.Agent


@dataclass(frozen=True)
class Filters:
    """The sessions page's filters (the analysis API's names and meanings)."""

    study: int | None = None
    graph: str | None = None
    agent: str | None = None
    status: str | None = None
    mode: str | None = None
    condition: str | None = None

    def where(self) -> list[Any]:
        clauses: list[Any] = []
        for column, value in ((S.study_id, self.study), (S.graph, self.graph),
                              (S.status, self.status), (S.mode, self.mode)):
            if value is not None:
                clauses.append(column == value)
        if self.condition is not None:
            clauses.append(S.condition_id.in_(select(C.id).where(C.key == self.condition)))
        if self.agent is not None:
            clauses.append(S.id.in_(select(A.session_id).where(A.name == self.agent)))
        return clauses

    def query(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _filtered(stmt: Select[Any], filters: Filters) -> Select[Any]:
    where = filters.where()
    return stmt.where(and_(*where)) if where else stmt


def _after(db: Any, cursor: str | None) -> Any:
    """Keyset paging, newest first: rows strictly after the cursor session."""
    if cursor is None:
        return None
    anchor = db.execute(select(S.created_at, S.id).where(S.id == cursor)).first()
    if anchor is None:
        return None
    return or_(S.created_at < anchor.created_at,
               and_(S.created_at == anchor.created_at, S.id < anchor.id))


def session_page(store: Store, filters: Filters, *, after: str | None = None,
                 limit: int = 50) -> dict[str, Any]:
    """One page of sessions, its step counts, the filtered total and the next cursor."""
    cols = (S.id, S.graph, S.mode, S.status, S.study_id, S.condition_id, S.rep, S.seed,
            S.parent_id, S.fork_step, S.created_at, C.key.label("condition"))
    with store.unit_of_work() as uow:
        db = uow.session
        stmt = _filtered(select(*cols).outerjoin(C, C.id == S.condition_id), filters)
        keyset = _after(db, after)
        if keyset is not None:
            stmt = stmt.where(keyset)
        rows = db.execute(stmt.order_by(S.created_at.desc(), S.id.desc())
                          .limit(limit + 1)).mappings().all()
        total = db.scalar(_filtered(select(func.count()).select_from(S), filters))
        page = [dict(r) for r in rows[:limit]]
        counts = _step_counts(db, [r["id"] for r in page])
    for r in page:
        r["steps"] = counts.get(r["id"], 0)
        r["created_at"] = r["created_at"].isoformat(timespec="seconds")
    return {"rows": page, "total": int(total or 0),
            "next": page[-1]["id"] if len(rows) > limit else None}


def _step_counts(db: Any, ids: list[str]) -> dict[str, int]:
    if not ids:
        return {}
    return dict(db.execute(select(St.session_id, func.count()).where(St.session_id.in_(ids))
                           .group_by(St.session_id)).all())


def filter_choices(store: Store) -> dict[str, list[Any]]:
    """What the filter menus offer: the values present in the store."""
    with store.unit_of_work() as uow:
        db = uow.session

        def distinct(col: Any) -> list[Any]:
            return [v for v in db.scalars(select(col).distinct().order_by(col)) if v is not None]
        studies = db.execute(select(orm.Study.id, orm.Study.name).order_by(orm.Study.id)).all()
        return {"graph": distinct(S.graph), "status": distinct(S.status),
                "mode": distinct(S.mode), "agent": distinct(A.name),
                "condition": distinct(C.key),
                "study": [{"id": i, "name": n} for i, n in studies]}


def study_detail(store: Store, study_id: int) -> dict[str, Any]:
    """A study's conditions, each with its sessions done (completed live ones) and its
    expected total (conditions × reps, reps from the study's grid or the highest rep)."""
    with store.unit_of_work() as uow:
        db = uow.session
        study = uow.studies.get(study_id)
        conds = db.scalars(select(C).where(C.study_id == study.id).order_by(C.id)).all()
        done = dict(db.execute(
            select(S.condition_id, func.count(func.distinct(S.rep)))
            .where(S.study_id == study.id, S.status == orm.Status.COMPLETED.value)
            .group_by(S.condition_id)).all())
        max_rep = db.scalar(select(func.max(S.rep)).where(S.study_id == study.id))
        claimed = db.scalar(select(func.count()).select_from(orm.TrialClaim)
                            .where(orm.TrialClaim.study_id == study.id))
    reps = _reps(study.config or {}, max_rep)
    rows = [{"id": c.id, "key": c.key, "params": c.params, "done": int(done.get(c.id, 0)),
             "total": reps} for c in conds]
    return {"id": study.id, "name": study.name, "graph": study.graph, "status": study.status,
            "seed": study.seed, "created": study.created_at.isoformat(timespec="seconds"),
            "conditions": rows, "done": sum(r["done"] for r in rows),
            "total": reps * len(rows), "claimed": int(claimed or 0)}


def _reps(config: dict[str, Any], max_rep: int | None) -> int:
    for where in (config, config.get("grid") or {}):
        if isinstance(where, dict) and isinstance(where.get("reps"), int) and where["reps"] > 0:
            return int(where["reps"])
    return (max_rep or 0) + 1
