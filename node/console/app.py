"""The officer console: server-rendered pages under /console, in the node's own aiohttp
application (docs/console.md).

Mounted on the API's listener (`mount_console`), beside /api/v1 and under its own
guards (node.console.security): sessions in encrypted cookies (aiohttp-session, Fernet),
a CSRF token on every form, sign-in on every page, a Content-Security-Policy with no
inline script, frames denied. Every page works without JavaScript; htmx (shipped in
static/, 0BSD) only spares a round trip (findings as the officer types, type-ahead).
"""

from __future__ import annotations

import os
import secrets
import warnings
from importlib import resources
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import session_middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from node.console import admin, auth, export, i18n, inbox, office
from node.console.context import (
    CONSOLE,
    PREFIX,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    ConsoleContext,
)
from node.console.security import csrf, error_pages, language, security_headers, signed_in
from node.errors import ConfigError

SESSION_KEY_FILE = "console-session.key"
# aiohttp-session keeps the session under a string key in the request, which aiohttp
# warns about (once per key, on the first request); the warning is the library's.
warnings.filterwarnings(
    "ignore", "It is recommended to use web.RequestKey", web.NotAppKeyWarning, "aiohttp_session"
)
_KEY_BYTES = 32


def create_console_app(context: ConsoleContext) -> web.Application:
    """The console as an application to mount at PREFIX."""
    storage = EncryptedCookieStorage(
        context.session_key,
        cookie_name=SESSION_COOKIE,
        path=PREFIX,
        httponly=True,
        secure=context.secure_cookie,
        samesite="Strict",
        max_age=int(SESSION_LIFETIME.total_seconds()),
    )
    app = web.Application(
        middlewares=[
            security_headers,
            session_middleware(storage),
            language,
            error_pages,
            signed_in,
            csrf,
        ]
    )
    app[CONSOLE] = context
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("node.console", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
    )
    env.install_gettext_callables(i18n._, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    static = Path(str(resources.files("node.console") / "static"))
    r = app.router
    r.add_static("/static/", static, append_version=False)
    r.add_get("/login", auth.login_form)
    r.add_post("/login", auth.login)
    r.add_post("/logout", auth.logout)
    r.add_post("/lang", auth.choose_language)
    r.add_get("/", export.home)
    r.add_get("/export", export.export_list)
    r.add_post("/export/new", export.create)
    r.add_get("/export/{id}", export.view)
    r.add_get("/export/{id}/edit", export.edit_form)
    r.add_post("/export/{id}/edit", export.edit)
    r.add_post("/export/{id}/check", export.check_fragment)
    r.add_post("/export/{id}/move", export.move)
    r.add_get("/export/{id}/pdf", export.pdf)
    r.add_get("/export/{id}/{kind:xml|json}", export.download)
    r.add_get("/lookup/{list}", export.lookup)
    r.add_get("/inbox", inbox.inbox)
    r.add_get("/inbox/{id}", inbox.received)
    r.add_post("/inbox/{id}/answer", inbox.answer)
    r.add_get("/inbox/{id}/pdf", inbox.received_pdf)
    r.add_get("/inbox/{id}/xml", inbox.received_xml)
    r.add_get("/search", office.search)
    r.add_get("/report", office.report)
    r.add_get("/audit", office.audit)
    r.add_get("/users", admin.users_page)
    r.add_post("/users", admin.add)
    r.add_post("/users/{name}/disable", admin.disable)
    r.add_get("/settings", admin.settings_page)
    r.add_post("/settings", admin.change_settings)
    r.add_post("/export/{id}/attach", export.attach)
    r.add_post("/export/{id}/detach", export.detach)
    return app


def mount_console(api_app: web.Application, context: ConsoleContext) -> None:
    """Serve the console under PREFIX on the API's listener (its root application)."""

    async def to_console(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(PREFIX + "/")

    api_app.router.add_get(PREFIX, to_console)
    api_app.add_subapp(PREFIX, create_console_app(context))


def session_key(node_dir: Path) -> bytes:
    """The key of the console's session cookies, made on first use: 32 random bytes in
    console-session.key beside node.toml (mode 0600). Every process of a node reads the
    same file, so a session survives a restart and works on each of them; deleting the
    file signs everybody out."""
    path = node_dir / SESSION_KEY_FILE
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        return _new_session_key(path)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the console's session key: {e.strerror}") from e
    if len(key) != _KEY_BYTES:
        raise ConfigError(
            f"{path}: not a console session key ({len(key)} bytes, not {_KEY_BYTES});"
            " delete it to make a new one (everybody is signed out)"
        )
    return key


def _new_session_key(path: Path) -> bytes:
    """Write a new key whole, then link it into place: a process starting beside this
    one either finds no file or the whole key, and if it linked first, its key wins."""
    key = secrets.token_bytes(_KEY_BYTES)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    try:
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(key)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(draft, path)
        except FileExistsError:
            return path.read_bytes()
        return key
    except OSError as e:
        raise ConfigError(f"{path}: cannot write the console's session key: {e.strerror}") from e
    finally:
        draft.unlink(missing_ok=True)
