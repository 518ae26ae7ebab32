"""Repositories: add and read rows in the caller's transaction. They never commit."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session as OrmSession
from tinmen.models.client import CallRecord
from tinmen.models.uncertainty import recompute
from tinmen.storage import orm

from tinmen.errors import NotFoundError, StoreError


def _insert_ignore(db: OrmSession, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows whose primary key may already exist (content-addressed tables)."""
    if not rows:
        return
    dialect = db.get_bind().dialect.name
    maker = pg_insert if dialect == "postgresql" else sqlite_insert
    db.execute(maker(table).values(rows).on_conflict_do_nothing())


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


class ContentRepo:
    """Text stored once by sha256 (prompts and outputs repeat across sessions)."""

    def __init__(self, db: OrmSession) -> None:
        self.db = db
        self._seen: set[str] = set()

    def put(self, text: str) -> str:
        sha = hashlib.sha256(text.encode()).hexdigest()
        if sha not in self._seen:
            _insert_ignore(self.db, orm.Content.__table__, [{"sha256": sha, "text": text}])
            self._seen.add(sha)
        return sha

    def get_many(self, shas: Sequence[str]) -> dict[str, str]:
        """Texts by sha256, each checked against its hash (an edited record is refused)."""
        rows = self.db.execute(select(orm.Content.sha256, orm.Content.text)
                               .where(orm.Content.sha256.in_(set(shas))))
        found = {sha: text for sha, text in rows}
        for sha, text in found.items():
            if hashlib.sha256(text.encode()).hexdigest() != sha:
                raise StoreError(f"the store's record {sha[:12]} is corrupt (its text no "
                                 "longer matches its hash); it cannot be replayed")
        return found


class ArtifactRepo:
    """Binary artifacts (PNG images, plots) stored once by sha256."""

    def __init__(self, db: OrmSession) -> None:
        self.db = db

    def put(self, data: bytes, mime: str = "image/png") -> str:
        sha = hashlib.sha256(data).hexdigest()
        _insert_ignore(self.db, orm.Artifact.__table__,
                       [{"sha256": sha, "mime": mime, "size": len(data), "data": data,
                         "created_at": orm.utcnow()}])
        return sha

    def get(self, sha: str) -> orm.Artifact:
        row = self.db.get(orm.Artifact, sha)
        if row is None:
            raise NotFoundError(f"no artifact {sha[:12]} in the store")
        return row

    def get_many(self, shas: Sequence[str]) -> dict[str, bytes]:
        rows = self.db.execute(select(orm.Artifact.sha256, orm.Artifact.data)
                               .where(orm.Artifact.sha256.in_(set(shas))))
        return {sha: data for sha, data in rows}


class StudyRepo:
    def __init__(self, db: OrmSession) -> None:
        self.db = db

    def add(self, study: orm.Study) -> orm.Study:
        self.db.add(study)
        self.db.flush()
        return study

    def get(self, study_id: int) -> orm.Study:
        row = self.db.get(orm.Study, study_id)
        if row is None:
            raise NotFoundError(f"no study {study_id} in the store; list them with "
                                "`tinmen studies`")
        return row

    def condition(self, study_id: int, key: str, params: dict[str, Any]) -> orm.Condition:
        row = self.db.scalar(select(orm.Condition).where(orm.Condition.study_id == study_id,
                                                         orm.Condition.key == key))
        if row is None:
            row = orm.Condition(study_id=study_id, key=key, params=params)
            self.db.add(row)
            self.db.flush()
        return row

    def list(self, graph: str | None = None) -> list[orm.Study]:
        query = select(orm.Study).order_by(orm.Study.id)
        if graph:
            query = query.where(orm.Study.graph == graph)
        return list(self.db.scalars(query))


class SessionRepo:
    def __init__(self, db: OrmSession) -> None:
        self.db = db

    def add(self, row: orm.Session) -> orm.Session:
        self.db.add(row)
        return row

    def get(self, session_id: str) -> orm.Session:
        """A session by id or unique id prefix (as printed by `tinmen sessions`)."""
        row = self.db.get(orm.Session, session_id)
        if row is None and len(session_id) >= 4:
            # autoescape: '%' and '_' typed by a user are characters, not LIKE wildcards
            prefixed = orm.Session.id.startswith(session_id, autoescape=True)
            matches = list(self.db.scalars(select(orm.Session).where(prefixed).limit(2)))
            row = matches[0] if len(matches) == 1 else None
        if row is None:
            raise NotFoundError(f"no session '{session_id}' in the store; list them with "
                                "`tinmen sessions`")
        return row

    def list(self, *, study_id: int | None = None, graph: str | None = None,
             agent: str | None = None, status: str | None = None,
             limit: int = 100) -> list[orm.Session]:
        query = select(orm.Session).order_by(orm.Session.created_at.desc()).limit(limit)
        if study_id is not None:
            query = query.where(orm.Session.study_id == study_id)
        if graph:
            query = query.where(orm.Session.graph == graph)
        if status:
            query = query.where(orm.Session.status == status)
        if agent:
            query = query.where(orm.Session.id.in_(
                select(orm.Agent.session_id).where(orm.Agent.name == agent)))
        return list(self.db.scalars(query))

    def delete(self, session_id: str) -> None:
        row = self.db.get(orm.Session, session_id)
        if row is not None:
            self.db.delete(row)

    def done_reps(self, study_id: int) -> set[tuple[int, int]]:
        """(condition id, rep) of the study's completed sessions (for resuming)."""
        rows = self.db.execute(select(orm.Session.condition_id, orm.Session.rep)
                               .where(orm.Session.study_id == study_id,
                                      orm.Session.status == orm.Status.COMPLETED))
        return {(c, r) for c, r in rows}

    def count(self) -> int:
        return int(self.db.scalar(select(func.count()).select_from(orm.Session)) or 0)


class CallRepo:
    """Model calls: written with deduplicated text, read back as servable records."""

    def __init__(self, db: OrmSession, content: ContentRepo, artifacts: ArtifactRepo) -> None:
        self.db, self.content, self.artifacts = db, content, artifacts

    def row(self, session_id: str, rec: CallRecord) -> orm.ModelCall:
        for sha, data in rec.blobs.items():
            self.artifacts.put(data, _mime(data))
            assert sha  # content-addressed: sha computed by the client/pool
        lps = rec.token_logprobs
        return orm.ModelCall(
            session_id=session_id, role=rec.role, call_index=rec.call_index, op=rec.op,
            model=str(rec.spec.get("name", "")), spec=rec.spec, params=_params_row(rec),
            seed=rec.seed, request_hash=rec.request_hash,
            request_sha=self.content.put(canonical(rec.inputs)),
            output_sha=self.content.put(canonical(rec.output)), token_logprobs=lps,
            nll=(-sum(lps) if lps else None), uncertainty=_signals(rec),
            latency_s=rec.latency_s,
            queue_wait_s=rec.queue_wait_s, batch_size=rec.batch_size, device=rec.device,
            seq=rec.seq)

    def for_session(self, session_id: str) -> list[CallRecord]:
        rows = list(self.db.scalars(select(orm.ModelCall)
                                    .where(orm.ModelCall.session_id == session_id)
                                    .order_by(orm.ModelCall.id)))
        texts = self.content.get_many([r.request_sha for r in rows] +
                                      [r.output_sha for r in rows])
        records = [self._record(r, texts) for r in rows]
        shas = [s for rec in records for s in _image_shas(rec)]
        blobs = self.artifacts.get_many(shas) if shas else {}
        for rec in records:
            rec.blobs = {s: blobs[s] for s in _image_shas(rec) if s in blobs}
        return records

    @staticmethod
    def _record(row: orm.ModelCall, texts: dict[str, str]) -> CallRecord:
        params = dict(row.params)
        stats = params.pop(CALL_STATS_KEY, {})
        return CallRecord(role=row.role, op=row.op, call_index=row.call_index, spec=row.spec,
                          params=params, inputs=json.loads(texts[row.request_sha]),
                          request_hash=row.request_hash, seed=row.seed,
                          output=json.loads(texts[row.output_sha]), latency_s=row.latency_s,
                          queue_wait_s=row.queue_wait_s, batch_size=row.batch_size,
                          device=row.device, retries=int(stats.get("retries", 0)))


# Serving stats without a column of their own (a served model's retries) ride in the
# call's params JSON under this key, only when non-zero: no migration, old rows unchanged,
# and the request hash (computed from the params without it) still matches on replay.
CALL_STATS_KEY = "_stats"


def _signals(rec: CallRecord) -> dict[str, Any] | None:
    return recompute(rec)


def _params_row(rec: CallRecord) -> dict[str, Any]:
    if not rec.retries:
        return rec.params
    return {**rec.params, CALL_STATS_KEY: {"retries": rec.retries}}


def _image_shas(rec: CallRecord) -> list[str]:
    """The blobs a call names: ``*_sha256`` keys of its output and inputs (an image, a
    hidden-state array, a trained checkpoint)."""
    return [value for part in (rec.output, rec.inputs) if isinstance(part, dict)
            for key, value in part.items() if key.endswith("_sha256") and isinstance(value, str)]


def _mime(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    return "application/x-npy" if data.startswith(b"\x93NUMPY") else "application/octet-stream"


class RecordRepo:
    """Ordered reads of a session's analysis rows (steps, beliefs, decisions, metrics)."""

    def __init__(self, db: OrmSession) -> None:
        self.db = db

    def _ordered(self, model: Any, session_id: str) -> list[Any]:
        return list(self.db.scalars(select(model).where(model.session_id == session_id)
                                    .order_by(model.id)))

    def steps(self, session_id: str) -> list[orm.Step]:
        return list(self.db.scalars(select(orm.Step).where(orm.Step.session_id == session_id)
                                    .order_by(orm.Step.index)))

    def beliefs(self, session_id: str) -> list[orm.Belief]:
        return self._ordered(orm.Belief, session_id)

    def decisions(self, session_id: str) -> list[orm.Decision]:
        return self._ordered(orm.Decision, session_id)

    def human_inputs(self, session_id: str) -> list[orm.HumanInput]:
        return self._ordered(orm.HumanInput, session_id)

    def metrics(self, session_id: str) -> list[orm.Metric]:
        return self._ordered(orm.Metric, session_id)

    def calls(self, session_id: str) -> list[orm.ModelCall]:
        return self._ordered(orm.ModelCall, session_id)

    def predictions(self, session_id: str) -> list[orm.Prediction]:
        return self._ordered(orm.Prediction, session_id)

    def agents(self, session_id: str) -> list[orm.Agent]:
        return self._ordered(orm.Agent, session_id)

    def next_seq(self, session_id: str) -> int:
        """One past the highest sequence number any of the session's rows holds."""
        from sqlalchemy import func

        tops = [self.db.scalar(select(func.max(m.seq)).where(m.session_id == session_id))
                for m in (orm.Belief, orm.Decision, orm.ModelCall, orm.HumanInput)]
        return max((t for t in tops if t is not None), default=-1) + 1
