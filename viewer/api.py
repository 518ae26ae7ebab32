"""The JSON API under ``/api/`` — everything the pages show, and the actions (POST, CSRF
token required). FastAPI publishes its schema at ``/openapi.json``; every parameter is
typed and bounded, so a malformed request is a 4xx with ``{"error": ...}``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from tinmen.viewer import beliefs, queries, reports
from tinmen.viewer.detail import session_detail
from tinmen.viewer.diffview import side_by_side
from tinmen.viewer.live import LiveAnswer, LiveStart, live_state, safe_spec
from tinmen.viewer.security import SESSION_ID, SHA256

router = APIRouter(prefix="/api")
SessionId = Annotated[str, Path(pattern=SESSION_ID, description="id or unique prefix")]
StudyId = Annotated[int, Path(ge=1, le=2**31 - 1)]
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"  # no control characters (PostgreSQL refuses NUL)
Text = Annotated[str | None, Query(min_length=1, max_length=300, pattern=PRINTABLE)]
MAX_STEP = 1_000_000


def _state(request: Request) -> Any:
    return request.app.state


class ForkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at_step: int = Field(ge=0, le=MAX_STEP)
    models: dict[str, str] = Field(default_factory=dict, description="role -> model spec")
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    options: dict[str, Any] = Field(default_factory=dict)


@router.get("/studies")
def studies(request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 100
            ) -> list[dict[str, Any]]:
    from tinmen.api import list_studies

    return list_studies(_state(request).stores.read, limit=limit)


@router.get("/studies/{study_id}")
def study(request: Request, study_id: StudyId) -> dict[str, Any]:
    return queries.study_detail(_state(request).stores.read, study_id)


@router.get("/studies/{study_id}/report")
def study_report(request: Request, study_id: StudyId,
                 refresh: bool = False) -> dict[str, Any]:
    st = _state(request)
    return reports.study_report(st.stores.read, st.cache, study_id, refresh=refresh)


@router.get("/studies/{study_id}/plots/{name}", response_class=Response)
def study_plot(request: Request, study_id: StudyId,
               name: Annotated[str, Path(pattern=reports.PLOT_NAME)]) -> Response:
    path = reports.plot_path(_state(request).cache, study_id, name)
    return Response(path.read_bytes(), media_type="image/png")


@router.get("/sessions")
def sessions(request: Request, study: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
             graph: Text = None, agent: Text = None, status: Text = None, mode: Text = None,
             condition: Text = None,
             after: Annotated[str | None, Query(pattern=SESSION_ID)] = None,
             limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    filters = queries.Filters(study=study, graph=graph, agent=agent, status=status,
                              mode=mode, condition=condition)
    return queries.session_page(_state(request).stores.read, filters, after=after,
                                limit=limit)


@router.get("/filters")
def filters(request: Request) -> dict[str, Any]:
    return queries.filter_choices(_state(request).stores.read)


@router.get("/sessions/{session_id}")
def session(request: Request, session_id: SessionId) -> dict[str, Any]:
    return session_detail(_state(request).stores.read, session_id)


@router.get("/sessions/{session_id}/belief.svg", response_class=Response)
def belief_picture(request: Request, session_id: SessionId,
                   step: Annotated[int, Query(ge=0, le=MAX_STEP)] = MAX_STEP) -> Response:
    detail = session_detail(_state(request).stores.read, session_id)
    pic = beliefs.picture(detail, step)
    if pic is None:
        return JSONResponse({"error": f"session {detail['id'][:12]} has no belief graph at "
                             f"or before step {step}"}, status_code=404)
    return Response(pic["svg"], media_type="image/svg+xml")


@router.get("/artifacts/{sha}", response_class=Response)
def artifact(request: Request, sha: Annotated[str, Path(pattern=SHA256)]) -> Response:
    with _state(request).stores.read.unit_of_work() as uow:
        row = uow.artifacts.get(sha)
        data, mime = row.data, row.mime
    if not mime.startswith("image/"):  # only pictures are shown inline; the rest downloads
        return Response(data, media_type="application/octet-stream", headers={
            "Content-Disposition": f'attachment; filename="{sha}.bin"'})
    return Response(data, media_type=mime, headers={"Cache-Control": "max-age=86400"})


@router.get("/diff")
def diff(request: Request, a: Annotated[str, Query(pattern=SESSION_ID)],
         b: Annotated[str, Query(pattern=SESSION_ID)]) -> dict[str, Any]:
    return side_by_side(_state(request).stores.read, a, b)


@router.post("/sessions/{session_id}/replay")
def replay(request: Request, session_id: SessionId) -> dict[str, Any]:
    from tinmen.graphs.replay import replay_session

    return replay_session(_state(request).stores.write(), session_id).to_json()


@router.post("/sessions/{session_id}/fork")
def fork(request: Request, session_id: SessionId, body: ForkRequest) -> dict[str, Any]:
    from tinmen.graphs.replay import fork_session

    st = _state(request)
    bindings = {role: safe_spec(spec) for role, spec in body.models.items() if spec.strip()}
    result = fork_session(st.stores.write(), session_id, body.at_step, bindings,
                          pool=st.live.pool(), seed=body.seed, options=body.options)
    parent = session_detail(st.stores.read, session_id)["id"]
    return {"fork": result.session_id, "parent": parent, "status": str(result.status),
            "diff_url": f"/diff?a={parent}&b={result.session_id}"}


@router.get("/agents/t2i")
def t2i_defaults() -> dict[str, Any]:
    from tinmen.agents.t2i.policies import POLICIES
    from tinmen.graphs.t2i import AGENT

    return {"roles": dict(AGENT.roles), "policies": list(POLICIES)}


@router.post("/live")
def live_start(request: Request, body: LiveStart) -> dict[str, Any]:
    session_id = _state(request).live.start(body)
    return {"session_id": session_id, "url": f"/live/{session_id}"}


@router.get("/live/{session_id}")
def live_get(request: Request, session_id: SessionId) -> dict[str, Any]:
    st = _state(request)
    return live_state(st.stores.read, st.live, session_id)


@router.post("/live/{session_id}/answer")
def live_answer(request: Request, session_id: SessionId,
                body: Annotated[LiveAnswer, Body()]) -> dict[str, Any]:
    st = _state(request)
    full = live_state(st.stores.read, st.live, session_id)["id"]  # a t2i session, or 4xx
    st.live.answer(full, body.text)
    return live_state(st.stores.read, st.live, full)
