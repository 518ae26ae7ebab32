"""Who may talk to the viewer, and what may reach the store or the filesystem.

* Bound to a loopback address the viewer needs no token, but only answers requests whose
  ``Host`` is a loopback name (a DNS-rebinding page cannot read it). Bound elsewhere every
  request needs the access token printed at start: ``?token=`` once (it then lives in an
  HttpOnly cookie), the cookie, or an ``X-Tinmen-Token`` header.
* Every POST needs the per-process CSRF token embedded in the pages (``X-CSRF-Token``),
  and a browser's ``Origin`` (else ``Referer``) must be this server's own.
* Ids and hashes are checked against strict patterns before any query (``ID``, ``SHA``).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

SESSION_ID = r"^[0-9a-f]{4,32}$"  # a session id (uuid4 hex) or a unique prefix of one
SHA256 = r"^[0-9a-f]{64}$"
COOKIE = "tinmen_token"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


@dataclass
class Guard:
    """The tokens of one app instance."""

    require_token: bool
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    allowed_hosts: frozenset[str] = LOOPBACK

    def token_ok(self, request: Request) -> bool:
        given = (request.headers.get("x-tinmen-token") or request.cookies.get(COOKIE)
                 or request.query_params.get("token") or "")
        return secrets.compare_digest(given.encode(), self.token.encode())

    def host_ok(self, request: Request) -> bool:
        if self.require_token:  # a token-guarded server answers any name it is reached by
            return True
        return hostname(request.headers.get("host") or "") in self.allowed_hosts

    def same_origin(self, request: Request) -> bool:
        """No Origin/Referer (curl, scripts) passes here; the CSRF token still applies."""
        source = request.headers.get("origin") or request.headers.get("referer")
        if not source:
            return True
        if source == "null":
            return False
        parts = urlsplit(source)
        return parts.netloc == request.headers.get("host") and parts.scheme in ("http",
                                                                                  "https")

    def csrf_ok(self, request: Request) -> bool:
        given = request.headers.get("x-csrf-token") or ""
        return secrets.compare_digest(given.encode(), self.csrf.encode())


def hostname(host_header: str) -> str:
    """``127.0.0.1:8000`` -> ``127.0.0.1``; ``[::1]:8000`` -> ``[::1]``."""
    if host_header.startswith("["):
        return host_header.split("]", 1)[0] + "]"
    return host_header.rsplit(":", 1)[0]


def _deny(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def middleware(guard: Guard) -> Callable[[Request, Callable[[Request], Awaitable[Response]]],
                                         Awaitable[Response]]:
    """The checks above, in order: host, token, then (for POSTs) origin and CSRF token."""

    async def check(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                    ) -> Response:
        if not guard.host_ok(request):
            return _deny(400, "unexpected Host header; open the viewer at 127.0.0.1")
        if guard.require_token and not guard.token_ok(request):
            return _deny(401, "this viewer needs its access token: open the URL printed at "
                         "start (…?token=…) or send X-Tinmen-Token")
        if request.method in UNSAFE:
            if not guard.same_origin(request):
                return _deny(403, "cross-site request refused")
            if not guard.csrf_ok(request):
                return _deny(403, "missing or wrong X-CSRF-Token; reload the page")
        if guard.require_token and request.query_params.get("token") and \
                request.method == "GET" and request.cookies.get(COOKIE) != guard.token:
            return _with_cookie(request, guard)
        return await call_next(request)
    return check


def _with_cookie(request: Request, guard: Guard) -> Response:
    """First visit with ``?token=``: set the cookie and drop the token from the address bar
    (so it is not left in history or sent on as a Referer)."""
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
    target = request.url.path + (f"?{query}" if query else "")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, guard.token, httponly=True, samesite="strict")
    return response
