"""Signing in and out, and choosing the language.

A failed login counts against the name tried, in the store, whether or not the name is a
user's (a guesser learns nothing from the answer, and every process of the node counts
the same failures); after LOCKOUT_LIMIT failures the name is locked for LOCKOUT_FOR.
The answer never says whether it was the name or the password that was wrong.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import UTC, datetime

from aiohttp import web
from aiohttp_session import get_session, new_session

from node.console import i18n
from node.console.context import PREFIX, context_of, count, find_user, page, redirect
from node.console.totp import matching_step
from node.console.users import (
    check_password,
    check_user_name,
    list_users,
    needs_rehash,
    set_password,
)
from node.errors import InputError
from node.observe import names
from node.store.store import Store

log = logging.getLogger(__name__)

_NAME_MAX = 64
_PASSWORD_MAX = 1024


async def login_form(request: web.Request) -> web.Response:
    return await page(request, "login.html", {"next": _next(request.query.get("next"))})


async def login(request: web.Request) -> web.StreamResponse:
    context = context_of(request)
    form = await request.post()
    name = str(form.get("user", "")).strip().lower()[: _NAME_MAX + 1]
    password = str(form.get("password", ""))
    target = _next(str(form.get("next", "")))
    _ = i18n._
    now = context.api.clock.now()

    async def again(message: str, status: int) -> web.Response:
        shown = name[:_NAME_MAX] if _possible_name(name[:_NAME_MAX]) else ""
        values = {"error": message, "next": target, "name": shown}
        return await page(request, "login.html", values, status=status)

    if not _possible_name(name) or len(password) > _PASSWORD_MAX:
        # No user can have this name (users.check_user_name): nothing to count or lock.
        count(request, names.CONSOLE_SIGN_INS, outcome="failed")
        log.warning("console: login failed for a name no user can have, from %s", request.remote)
        return await again(_("Wrong user name, password or code."), 401)
    store = context.api.store
    locked = await store.console_locked_until(name, now=now)
    if locked is not None:
        count(request, names.CONSOLE_SIGN_INS, outcome="locked")
        log.warning("console: login refused for %s: locked until %s", name, locked.isoformat())
        return await again(_locked(locked), 429)
    user = next((u for u in list_users(context.users_file) if u.name == name), None)
    # Argon2 takes a tenth of a second and 64 MiB by design: off the event loop.
    loop = asyncio.get_running_loop()
    ok = user is not None and await loop.run_in_executor(None, check_password, user, password)
    if ok and user is not None and user.totp_secret is not None:
        ok = await _second_factor(
            store, user.name, user.totp_secret, str(form.get("code", "")), now
        )
    if user is None or not ok:
        locked = await store.console_login_failed(
            name, now=now, limit=context.lockout_limit, lock_for=context.lockout_for
        )
        log.warning(
            "console: login failed for %s from %s%s",
            name,
            request.remote,
            "" if locked is None else f"; locked until {locked.isoformat()}",
        )
        count(request, names.CONSOLE_SIGN_INS, outcome="failed" if locked is None else "locked")
        if locked is not None:
            return await again(_locked(locked), 429)
        return await again(_("Wrong user name, password or code."), 401)
    await store.console_login_succeeded(name)
    if needs_rehash(user):
        # The hasher's parameters were raised since this hash was made: renew it now,
        # while the password is at hand.
        await loop.run_in_executor(None, set_password, context.users_file, name, password)
    # The language the user chose last time, wherever that was; else this browser's.
    lang = await store.console_language(user.name) or (await get_session(request)).get("lang")
    session = await new_session(request)  # a new session id: no session fixation
    stamp = int(now.timestamp())
    session.update(
        {
            "user": user.name,
            "role": user.role,
            "started": stamp,
            "seen": stamp,
            "lang": lang if lang in i18n.CODES else i18n.DEFAULT,
            "csrf": secrets.token_urlsafe(32),
        }
    )
    count(request, names.CONSOLE_SIGN_INS, outcome="signed-in")
    log.info("console: %s (%s) signed in from %s", user.name, user.role, request.remote)
    raise redirect(target)


async def logout(request: web.Request) -> web.StreamResponse:
    session = await get_session(request)
    name = session.get("user")
    lang = session.get("lang")
    session.invalidate()
    if isinstance(name, str):
        log.info("console: %s signed out", name)
    fresh = await new_session(request)
    fresh["lang"] = lang if lang in i18n.CODES else i18n.DEFAULT
    raise redirect("/login")


async def choose_language(request: web.Request) -> web.StreamResponse:
    """The language chosen from the menu; it stays with the session (and across sign-in)."""
    form = await request.post()
    code = str(form.get("lang", ""))
    session = await get_session(request)
    if code in i18n.CODES:
        session["lang"] = code
        name = session.get("user")
        if isinstance(name, str) and find_user(context_of(request), name) is not None:
            await context_of(request).api.store.console_set_language(name, code)
    raise redirect(_next(str(form.get("next", ""))))


async def _second_factor(store: Store, name: str, secret: str, code: str, now: datetime) -> bool:
    """The TOTP code is right for now (a step either side) and its step was not used
    before: a code seen over a shoulder or in a log is good for nothing afterwards."""
    step = matching_step(secret, code[:32], now)
    return step is not None and await store.console_use_totp_step(name, step)


def _possible_name(name: str) -> bool:
    try:
        check_user_name(name)
    except InputError:
        return False
    return True


def _locked(until: datetime) -> str:
    return i18n._("Too many failed attempts: this name is locked until {time} UTC.").format(
        time=until.astimezone(UTC).strftime("%H:%M")
    )


def _next(target: str | None) -> str:
    """Where to go after signing in: a console page, never another site (an open redirect
    would let a link on a phishing page land a signed-in officer wherever it likes)."""
    if (
        not target
        or not target.startswith(PREFIX + "/")
        or target.startswith("//")
        or "\\" in target
        or len(target) > 2000
        or any(ord(c) < 32 for c in target)
    ):
        return PREFIX + "/"
    return target
