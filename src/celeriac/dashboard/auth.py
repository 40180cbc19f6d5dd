"""Who may use the dashboard: loopback-or-login, basic auth, same-origin POSTs.

The rule (DESIGN.md principle 6): a dashboard bound to a loopback address may
run without a login; any other address needs ``--basic-auth user:password``.
Without a login the dashboard answers only requests whose ``Host`` is a
loopback name, so a web page cannot reach it by DNS rebinding. Every POST
(revoke, terminate, rate limit) must come from the dashboard's own origin
(``Origin``/``Referer``/``Sec-Fetch-Site``), so another site cannot make a
logged-in browser press the buttons.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "AuthError",
    "GuardMiddleware",
    "is_loopback",
    "parse_basic_auth",
    "same_origin",
]

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Sent with every answer: no script, style or frame from elsewhere, no framing
#: (the buttons cannot be clickjacked), no content sniffing.
_SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
     b"form-action 'self'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class AuthError(ValueError):
    """A ``--basic-auth`` value or an address that the login rule refuses."""


def is_loopback(host: str) -> bool:
    """True for ``127.0.0.0/8``, ``::1`` and ``localhost``; every other address or name
    (``0.0.0.0``, ``::``, a host name) counts as reachable from outside."""
    host = host.strip().strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_basic_auth(spec: str | None) -> dict[str, str]:
    """``"user:pw,user2:pw2"`` (Flower's ``--basic-auth``) -> ``{user: password}``."""
    users: dict[str, str] = {}
    for pair in (spec or "").split(","):
        if not pair.strip():
            continue
        user, sep, password = pair.partition(":")
        if not sep or not user or not password:
            raise AuthError(f"--basic-auth wants user:password (comma-separated), got {pair!r}")
        users[user] = password
    return users


def _host_of(value: str) -> str:
    """The host part of a ``Host`` header (``[::1]:5555`` -> ``::1``)."""
    if value.startswith("["):
        return value[1:].partition("]")[0]
    return value.rpartition(":")[0] if value.count(":") == 1 else value


def same_origin(request: Request) -> bool:
    """Whether a request comes from a page of this dashboard (or from no browser at all:
    a client that sends neither ``Origin`` nor ``Referer``, such as curl)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    host = request.headers.get("host", "")
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True
    if source == "null":
        return False
    parts = urlsplit(source)
    return parts.netloc == host and parts.scheme in ("http", "https")


def _check_basic(header: str | None, users: Mapping[str, str]) -> bool:
    if not header or not header.lower().startswith("basic "):
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, _, password = decoded.partition(":")
    expected = users.get(user)
    # compare even for an unknown user, so the timing does not tell which users exist
    ok = hmac.compare_digest(password.encode(), (expected or "\0" + password).encode())
    return expected is not None and ok


class GuardMiddleware:
    """Basic auth when users are given, else loopback ``Host`` only; same-origin POSTs."""

    def __init__(self, app: ASGIApp, users: Mapping[str, str]) -> None:
        self.app = app
        self.users = dict(users)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
            await send(message)

        request = Request(scope)
        refusal = self._refusal(request)
        if refusal is not None:
            await refusal(scope, receive, send_secured)
            return
        await self.app(scope, receive, send_secured)

    def _refusal(self, request: Request) -> Response | None:
        if self.users:
            if not _check_basic(request.headers.get("authorization"), self.users):
                return PlainTextResponse("login required", status_code=401, headers={
                    "WWW-Authenticate": 'Basic realm="celeriac dashboard", charset="UTF-8"'})
        elif not is_loopback(_host_of(request.headers.get("host", ""))):
            return PlainTextResponse("this dashboard answers loopback host names only "
                                     "(start it with --basic-auth to serve others)",
                                     status_code=403)
        if request.method not in _SAFE_METHODS and not same_origin(request):
            return PlainTextResponse("cross-origin request refused", status_code=403)
        return None
