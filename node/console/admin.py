"""The admin's pages: the console's users, kept in console-users.json like the command
line keeps them (node.console.users), so that either may manage them.

An admin adds users (with a first password the admin hands over), and disables them;
a disabled user is signed out at their next request. The last enabled admin cannot be
disabled (users.disable_user refuses it). Passwords are hashed off the event loop.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from node.console import i18n, settings
from node.console.context import context_of, flash, page, redirect, take_flash, user_of
from node.console.users import ROLES, add_user, disable_user, list_users, may
from node.errors import InputError

log = logging.getLogger(__name__)
_ = i18n._


def _admin(request: web.Request) -> None:
    if not may(user_of(request).role, "manage-users"):
        raise web.HTTPForbidden()


async def users_page(request: web.Request) -> web.Response:
    _admin(request)
    context = context_of(request)
    return await page(
        request,
        "users.html",
        {
            "users": list_users(context.users_file),
            "roles": ROLES,
            "flash": await take_flash(request),
        },
    )


async def add(request: web.Request) -> web.StreamResponse:
    _admin(request)
    context, admin = context_of(request), user_of(request)
    form = await request.post()
    name = str(form.get("name", "")).strip()[:100]
    role = str(form.get("role", ""))
    password = str(form.get("password", ""))[:2000]
    if password != str(form.get("password2", ""))[:2000]:
        await flash(request, _("The two passwords differ."))
        raise redirect("/users")
    now = context.api.clock.now()
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(
            None, lambda: add_user(context.users_file, name, role, password, now=now)
        )
    except InputError as e:
        await flash(request, str(e))
        raise redirect("/users") from None
    log.info("console: %s added user %s (%s)", admin.name, name, role)
    await flash(request, _("User {name} added.").format(name=name))
    raise redirect("/users")


async def disable(request: web.Request) -> web.StreamResponse:
    _admin(request)
    context, admin = context_of(request), user_of(request)
    name = request.match_info["name"]
    try:
        disable_user(context.users_file, name, now=context.api.clock.now())
    except InputError as e:
        await flash(request, str(e))
        raise redirect("/users") from None
    log.info("console: %s disabled user %s", admin.name, name)
    await flash(request, _("User {name} disabled.").format(name=name))
    raise redirect("/users")


async def settings_page(request: web.Request) -> web.Response:
    _admin(request)
    current = await context_of(request).api.store.console_settings()
    return await _settings_page(request, current, {})


async def change_settings(request: web.Request) -> web.StreamResponse:
    _admin(request)
    context, admin = context_of(request), user_of(request)
    form = await request.post()
    values = {
        s.name: str(form.get(s.name, "")).strip().upper()
        if s.name != "statement"
        else str(form.get(s.name, "")).strip()
        for s in settings.SETTINGS
    }
    refused = settings.refusals(values)
    if refused:
        return await _settings_page(request, values, refused, status=422)
    await context.api.store.console_set_settings(values)
    log.info("console: %s changed the settings: %s", admin.name, values)
    await flash(request, _("Settings saved."))
    raise redirect("/settings")


async def _settings_page(
    request: web.Request, values: dict[str, str], refused: dict[str, str], *, status: int = 200
) -> web.Response:
    return await page(
        request,
        "settings.html",
        {
            "settings": settings.SETTINGS,
            "values": values,
            "refused": refused,
            "flash": await take_flash(request),
        },
        status=status,
    )
