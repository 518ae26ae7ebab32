"""The HTML pages, rendered on the server from the same functions as the JSON API (Jinja2
with autoescaping; the small script in static/viewer.js only posts actions and drives the
live page). Pages are left out of the OpenAPI schema: /api/ is the machine interface."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from tinmen.viewer import beliefs, queries
from tinmen.viewer.api import PRINTABLE
from tinmen.viewer.app import HERE
from tinmen.viewer.detail import session_detail
from tinmen.viewer.diffview import side_by_side
from tinmen.viewer.live import live_state
from tinmen.viewer.options import confidence_class
from tinmen.viewer.security import SESSION_ID

router = APIRouter(include_in_schema=False)
ENV = Environment(loader=FileSystemLoader(HERE / "templates"),
                  autoescape=select_autoescape(["html"]))
Text = Annotated[str | None, Query(min_length=1, max_length=300, pattern=PRINTABLE)]


def _short(value: Any, n: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= n else text[: n - 1] + "…"


def _num(value: Any, fmt: str = ".3f") -> str:
    return "—" if value is None else format(value, fmt) if isinstance(value, int | float) \
        else str(value)


ENV.filters.update(short=_short, num=_num, conf=confidence_class,
                   pretty=lambda v: json.dumps(v, indent=2, default=str))


def render(request: Request, name: str, **context: Any) -> HTMLResponse:
    html = ENV.get_template(name).render(csrf=request.app.state.guard.csrf, **context)
    return HTMLResponse(html, headers={"Content-Security-Policy": "default-src 'self'; "
                                       "img-src 'self' data:; style-src 'self' 'unsafe-inline'",
                                       "X-Frame-Options": "DENY"})


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/sessions", status_code=303)


@router.get("/favicon.ico")
def favicon() -> Response:
    return Response(status_code=204)


@router.get("/studies")
def studies_page(request: Request) -> HTMLResponse:
    from tinmen.api import list_studies

    return render(request, "studies.html", studies=list_studies(
        request.app.state.stores.read, limit=500))


@router.get("/studies/{study_id}")
def study_page(request: Request, study_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
               ) -> HTMLResponse:
    return render(request, "study.html",
                  study=queries.study_detail(request.app.state.stores.read, study_id))


@router.get("/sessions")
def sessions_page(request: Request,
                  study: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
                  graph: Text = None, agent: Text = None, status: Text = None,
                  mode: Text = None, condition: Text = None,
                  after: Annotated[str | None, Query(pattern=SESSION_ID)] = None,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50) -> HTMLResponse:
    store = request.app.state.stores.read
    filters = queries.Filters(study=study, graph=graph, agent=agent, status=status,
                              mode=mode, condition=condition)
    page = queries.session_page(store, filters, after=after, limit=limit)
    return render(request, "sessions.html", page=page, filters=filters.query(),
                  choices=queries.filter_choices(store), limit=limit, after=after)


@router.get("/sessions/{session_id}")
def session_page(request: Request, session_id: Annotated[str, Path(pattern=SESSION_ID)],
                 step: Annotated[int | None, Query(ge=0, le=1_000_000)] = None
                 ) -> HTMLResponse:
    detail = session_detail(request.app.state.stores.read, session_id)
    indices = [s["step"] for s in detail["steps"]]
    if step is None or step not in indices:
        step = indices[-1] if indices else 0
    current = next((s for s in detail["steps"] if s["step"] == step), None)
    graph_steps = {i for i, _ in beliefs.versions(detail)}
    return render(request, "session.html", s=detail, step=current, selected=step,
                  picture=beliefs.picture(detail, step), graph_steps=graph_steps)


@router.get("/diff")
def diff_page(request: Request, a: Annotated[str, Query(pattern=SESSION_ID)],
              b: Annotated[str, Query(pattern=SESSION_ID)]) -> HTMLResponse:
    return render(request, "diff.html", d=side_by_side(request.app.state.stores.read, a, b))


@router.get("/live")
def live_new(request: Request) -> HTMLResponse:
    from tinmen.agents.t2i.policies import POLICIES
    from tinmen.graphs.t2i import AGENT

    return render(request, "live_new.html", roles=AGENT.roles, policies=POLICIES)


@router.get("/live/{session_id}")
def live_page(request: Request, session_id: Annotated[str, Path(pattern=SESSION_ID)]
              ) -> HTMLResponse:
    st = request.app.state
    return render(request, "live.html", state=live_state(st.stores.read, st.live, session_id))
