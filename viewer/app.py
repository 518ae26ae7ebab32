"""The viewer's FastAPI app: pages, the JSON API, static files, the access checks
(viewer/security.py) and error handlers that turn every failure into a one-line JSON error
with a 4xx status — a 500 only for a bug, still as JSON."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from tinmen.viewer.live import Busy, Live
from tinmen.viewer.security import LOOPBACK, Guard, is_loopback, middleware
from tinmen.viewer.stores import Stores

from tinmen.errors import ConfigError, NotFoundError, TinmenError

HERE = Path(__file__).parent
log = logging.getLogger("tinmen.viewer")


@dataclass
class ViewerConfig:
    db: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None  # the access token when bound beyond loopback (default random)
    cache: Path | None = None  # where study reports are made (default: a temp folder)


def _status(exc: TinmenError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, Busy):
        return 409
    return 400 if isinstance(exc, ConfigError) else 422


def _first_error(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "invalid request"
    err = errors[0]
    where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
    return f"{where}: {err.get('msg', 'invalid')}"


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(TinmenError)
    async def _tinmen(request: Request, exc: TinmenError) -> JSONResponse:
        return JSONResponse({"error": str(exc).splitlines()[0] if str(exc) else
                             type(exc).__name__}, status_code=_status(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _first_error(exc)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("viewer: %s %s failed", request.method, request.url.path)
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the "
                             "server log"}, status_code=500)


def create_app(config: ViewerConfig | None = None, **overrides: Any) -> FastAPI:
    """The app over ``config.db`` (opened now: a bad URL fails here, in one line)."""
    from tinmen.viewer import api, pages

    config = config or ViewerConfig(**overrides)
    guard = Guard(require_token=not is_loopback(config.host))
    if config.token:
        guard.token = config.token
    if is_loopback(config.host):
        guard.allowed_hosts = LOOPBACK | {config.host}
    app = FastAPI(title="tinmen viewer", version="1", docs_url="/api/docs", redoc_url=None)
    stores = Stores(config.db)
    app.state.stores, app.state.guard = stores, guard
    app.state.live = Live(stores)
    app.state.cache = config.cache or Path(tempfile.mkdtemp(prefix="tinmen-view-"))
    app.state.config = config
    app.middleware("http")(middleware(guard))
    install_handlers(app)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    return app


def serve(config: ViewerConfig) -> None:
    """Run the app with uvicorn until interrupted."""
    import uvicorn

    app = create_app(config)
    guard = app.state.guard
    shown = f"[{config.host}]" if ":" in config.host else config.host
    url = f"http://{shown}:{config.port}/"
    if guard.require_token:
        print(f"tinmen view: {app.state.stores.read.url} at {url}?token={guard.token}\n"
              "(bound beyond this machine: every request needs that token)", flush=True)
    else:
        print(f"tinmen view: {app.state.stores.read.url} at {url}", flush=True)
    try:
        uvicorn.run(app, host=config.host, port=config.port, log_level="warning")
    finally:
        app.state.stores.close()
