"""`tinmen view`: the store in a browser (see docs/viewer.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from tinmen.cli import DbOpt, open_store
from tinmen.errors import ConfigError


def view(db: DbOpt = None,
         host: Annotated[str, typer.Option(help="Address to bind; beyond 127.0.0.1 every "
                                           "request needs the token printed at start.")]
         = "127.0.0.1",
         port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
         token: Annotated[str | None, typer.Option(
             help="Use this access token instead of a random one (env TINMEN_VIEW_TOKEN).",
             envvar="TINMEN_VIEW_TOKEN")] = None) -> None:
    """Browse studies, sessions, belief graphs, decisions and model calls; replay, fork and
    diff from the page; run the T2I agent live (needs pip install 'tinmen[web]')."""
    try:
        from tinmen.viewer.app import ViewerConfig, serve
    except ModuleNotFoundError as exc:
        if exc.name in ("fastapi", "uvicorn", "jinja2", "starlette"):
            raise ConfigError(f"tinmen view needs {exc.name}: pip install 'tinmen[web]'") from exc
        raise
    if token is not None and len(token) < 16:
        raise ConfigError("--token must be at least 16 characters")
    open_store(db, create=False).close()  # a bad --db (or env) is one line before serving
    serve(ViewerConfig(db=db, host=host, port=port, token=token))
