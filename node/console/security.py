"""The console's guards, as middlewares: security headers on every answer, the user's
language, sign-in on every page, CSRF protection on every form, and errors shown as
pages rather than tracebacks.

Order matters (outermost first): headers wrap everything, including error pages; the
error page needs the language; sign-in comes before CSRF so that a signed-out user is
sent to the login page rather than told that a form expired.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit

from aiohttp import web
from aiohttp_session import get_session

from node.api.problems import ProblemError
from node.console import i18n
from node.console.context import (
    PREFIX,
    SESSION_IDLE,
    SESSION_LIFETIME,
    USER,
    context_of,
    count,
    csrf_token,
    find_user,
    page,
)
from node.errors import ConfigError, InputError
from node.observe import names
from node.store.store import NotFoundError, StoreError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# No inline script or style anywhere: htmx and the stylesheet are files of the console's
# own; forms post only to the console; no page may be framed (clickjacking).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
# Pages anyone may see: the login page and the static files it needs.
_OPEN = (f"{PREFIX}/login", f"{PREFIX}/static/", f"{PREFIX}/lang")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as e:
        _headers(e, static=False)
        raise
    _headers(response, static=request.path.startswith(f"{PREFIX}/static/"))
    return response


def _headers(response: web.StreamResponse, *, static: bool) -> None:
    response.headers.update(HEADERS)
    # Pages show certificates: never kept by a shared cache or the browser's history. The
    # stylesheet and htmx are kept an hour: on a slow link they are most of the bytes.
    response.headers["Cache-Control"] = "private, max-age=3600" if static else "no-store"


@web.middleware
async def language(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer in the session's language, or the browser's first choice among ours."""
    session = await get_session(request)
    code = session.get("lang")
    if code not in i18n.CODES:
        code = i18n.preferred(request.headers.get("Accept-Language"))
        session["lang"] = code
    i18n.use(context_of(request).catalogues[code])
    return await handler(request)


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refusals as pages in the user's language; never a traceback."""
    _ = i18n._
    try:
        return await handler(request)
    except web.HTTPRedirection:
        raise
    except web.HTTPException as e:
        if e.status < 400:
            raise
        if e.status == 403:
            count(request, names.CONSOLE_REFUSALS, reason="forbidden")
            log.warning("console: %s %s refused: not allowed for this user", request.method,
                        request.path)  # fmt: skip
        text = {
            403: _("You may not do that."),
            404: _("There is nothing at this address."),
            405: _("This page does not take that request."),
            413: _("What you sent is too large."),
        }.get(e.status, _("The request could not be understood."))
        return await page(request, "error.html", {"message": text}, status=e.status)
    except NotFoundError:
        return await page(
            request, "error.html", {"message": _("There is no such certificate.")}, status=404
        )
    except ProblemError as e:
        if e.status == 409:
            count(request, names.CONSOLE_REFUSALS, reason="conflict")
        log.warning("console: %s %s refused (%d): %s", request.method, request.path, e.status,
                    e.detail)  # fmt: skip
        return await page(request, "error.html", {"message": e.detail}, status=e.status)
    except InputError as e:
        return await page(request, "error.html", {"message": str(e)}, status=400)
    except (StoreError, ConfigError) as e:
        log.error("console: %s %s: %s", request.method, request.path, e)
        response = await page(
            request,
            "error.html",
            {"message": _("The node cannot answer now. Try again in a minute.")},
            status=503,
        )
        response.headers["Retry-After"] = "60"
        return response


@web.middleware
async def signed_in(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every page but the login page needs a user signed in, still enabled, whose session
    is neither too old nor idle too long."""
    if request.path.startswith(_OPEN):
        return await handler(request)
    session = await get_session(request)
    name = session.get("user")
    now = context_of(request).api.clock.now().timestamp()
    started, seen = session.get("started", 0), session.get("seen", 0)
    user = find_user(context_of(request), name) if isinstance(name, str) else None
    fresh = (
        isinstance(started, int | float)
        and isinstance(seen, int | float)
        and now - started < SESSION_LIFETIME.total_seconds()
        and now - seen < SESSION_IDLE.total_seconds()
    )
    if user is None or not fresh or session.get("role") != user.role:
        if name is not None:
            session.invalidate()
        target = f"{PREFIX}/login"
        if request.method == "GET" and request.path != PREFIX + "/":
            target += "?next=" + quote(request.path_qs, safe="")
        if request.headers.get("HX-Request") == "true":
            return web.Response(status=204, headers={"HX-Redirect": target})
        raise web.HTTPSeeOther(target)
    session["seen"] = int(now)
    request[USER] = user
    return await handler(request)


@web.middleware
async def csrf(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every POST carries the session's token in its `csrf` field, and comes from this
    console (its Origin, when the browser sends one, is this host)."""
    if request.method in _SAFE_METHODS:
        return await handler(request)
    session = await get_session(request)
    expected = csrf_token(session)
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        return await _refused(request, "another site")
    if request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return await _refused(request, "not a form")
    form = await request.post()
    sent = form.get("csrf")
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        return await _refused(request, "token missing or wrong")
    return await handler(request)


async def _refused(request: web.Request, why: str) -> web.Response:
    count(request, names.CONSOLE_REFUSALS, reason="csrf")
    log.warning("console: CSRF refusal of %s %s (%s)", request.method, request.path, why)
    message = i18n._(
        "This form has expired or did not come from this console. Go back, reload the page"
        " and try again."
    )
    return await page(request, "error.html", {"message": message}, status=403)
