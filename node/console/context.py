"""What every page of the officer console shares: its context, the signed-in user, and
rendering a page in the user's language.

Below the page modules (node.console.auth, .export, .inbox, .office) and node.console.app
alike, so that the pages reach the context through their application (CONSOLE) without
importing the app that routes them.
"""

from __future__ import annotations

import gettext
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import Session, get_session

from node.api.context import ApiContext
from node.codelists.lists import CodeLists
from node.console import i18n
from node.console.users import ConsoleUser, list_users
from node.observe.event_lines import Count
from node.observe.metrics import ProcessMetrics

PREFIX = "/console"
SESSION_COOKIE = "ephyto_console"
# Signed in for at most this long, and signed out after this long without a request.
SESSION_LIFETIME = timedelta(hours=12)
SESSION_IDLE = timedelta(minutes=30)
# Failed logins before a name is locked, and for how long (counted in the store, so that
# every process of a node counts the same failures).
LOCKOUT_LIMIT = 5
LOCKOUT_FOR = timedelta(minutes=15)
PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class ConsoleContext:
    """What the console needs from the node: the API's context (the one way to send and
    answer), its users file, the key of its session cookies, and its languages."""

    api: ApiContext
    users_file: Path
    session_key: bytes  # 32 bytes (Fernet): the cookie is encrypted and authenticated
    # The organisation that issues, as the certificate's issuer names it.
    issuer_name: str
    # Mark the cookie Secure: on unless the console is served on loopback without TLS.
    secure_cookie: bool = True
    catalogues: Mapping[str, gettext.NullTranslations] = field(default_factory=i18n.load_catalogues)
    lockout_limit: int = LOCKOUT_LIMIT
    lockout_for: timedelta = LOCKOUT_FOR
    # The node's metrics (node.observe): sign-ins and refusals are counted there.
    metrics: ProcessMetrics | None = None

    @property
    def codelists(self) -> CodeLists:
        return self.api.validator.codelists


CONSOLE = web.AppKey("console", ConsoleContext)
USER = web.RequestKey("console_user", ConsoleUser)  # the signed-in user


def count(request: web.Request, metric: str, **labels: str) -> None:
    """One more of `metric` (node.observe.names) in the node's metrics."""
    metrics = context_of(request).metrics
    if metrics is not None:
        metrics.count([Count(metric, labels)])


def context_of(request: web.Request) -> ConsoleContext:
    return request.config_dict[CONSOLE]


def user_of(request: web.Request) -> ConsoleUser:
    """The signed-in user (the sign-in middleware let the request through)."""
    user = request.get(USER)
    if not isinstance(user, ConsoleUser):
        raise web.HTTPSeeOther(f"{PREFIX}/login")
    return user


def find_user(context: ConsoleContext, name: str) -> ConsoleUser | None:
    """The enabled user `name`, read from the users file now (a user disabled by the
    command line is signed out at their next request)."""
    for user in list_users(context.users_file):
        if user.name == name and user.disabled is None:
            return user
    return None


def csrf_token(session: Session) -> str:
    """The session's CSRF token, made on first use (synchronizer token pattern)."""
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


async def page(
    request: web.Request, template: str, values: Mapping[str, Any], *, status: int = 200
) -> web.Response:
    """`template` rendered in the user's language, with what every page needs."""
    session = await get_session(request)
    lang = i18n.language(session.get("lang"))
    user = request.get(USER)
    shared: dict[str, Any] = {
        "lang": lang,
        "languages": i18n.LANGUAGES,
        "user": user if isinstance(user, ConsoleUser) else None,
        "csrf": csrf_token(session),
        "prefix": PREFIX,
        "path": request.path,
        "country": context_of(request).api.country,
        "flash": None,
        "error": None,
    }
    response = aiohttp_jinja2.render_template(template, request, shared | dict(values))
    response.set_status(status)
    return response


def redirect(path: str) -> web.HTTPSeeOther:
    """303 to a console page (after a POST: the browser GETs the result)."""
    return web.HTTPSeeOther(path if path.startswith(PREFIX) else PREFIX + path)


async def flash(request: web.Request, message: str) -> None:
    """A one-line notice shown on the next page (after the redirect of a POST)."""
    session = await get_session(request)
    session["flash"] = message[:300]


async def take_flash(request: web.Request) -> str | None:
    session = await get_session(request)
    message = session.pop("flash", None)
    return message if isinstance(message, str) else None


def file_response(
    body: bytes, content_type: str, number: str, ext: str, *, inline: bool
) -> web.Response:
    """A certificate as a file named after its number (made safe for a header)."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in number)[:100] or "certificate"
    disposition = "inline" if inline else "attachment"
    return web.Response(
        body=body,
        content_type=content_type,
        headers={"Content-Disposition": f'{disposition}; filename="{name}.{ext}"'},
    )
