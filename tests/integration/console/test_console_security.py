"""The console's guards over real HTTP: sign-in, lockout, CSRF, headers, languages."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from node.certificate.validate import Validator
from node.console import totp, users
from node.console.security import CSP
from tests.integration.console.console_app import NOW, PASSWORD, Console, console

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def app(tmp_path: Path, validator: Validator) -> AsyncIterator[Console]:
    async with console(tmp_path, validator) as running:
        yield running


async def test_every_page_needs_a_signed_in_user(app: Console) -> None:
    for path in ("/console/", "/console/export", "/console/inbox", "/console/report",
                 "/console/export/1", "/console/inbox/1/pdf"):  # fmt: skip
        response = await app.client.get(path, allow_redirects=False)
        assert response.status == 303, path
        assert response.headers["Location"].startswith("/console/login")
    # /console itself leads to the console's home
    response = await app.client.get("/console", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "/console/"


async def test_the_api_still_needs_its_token(app: Console) -> None:
    response = await app.client.get("/api/v1/certificates")
    assert response.status == 401


async def test_sign_in_and_out(app: Console) -> None:
    response = await app.login("clerk")
    assert response.status == 303
    assert response.headers["Location"] == "/console/"
    home = await app.client.get("/console/")
    assert home.status == 200
    assert "clerk" in await home.text()
    await app.logout()
    again = await app.client.get("/console/", allow_redirects=False)
    assert again.status == 303


async def test_after_sign_in_the_page_asked_for(app: Console) -> None:
    token = await app.csrf("/console/login?next=/console/inbox")
    response = await app.client.post(
        "/console/login",
        data={"csrf": token, "user": "clerk", "password": PASSWORD, "next": "/console/inbox"},
        allow_redirects=False,
    )
    assert response.headers["Location"] == "/console/inbox"


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/api/v1/certificates",
               "/console/\\evil", "/console/\r\nSet-Cookie: x=1", "x" * 5000],
)  # fmt: skip
async def test_no_open_redirect_after_sign_in(app: Console, target: str) -> None:
    token = await app.csrf()
    response = await app.client.post(
        "/console/login",
        data={"csrf": token, "user": "clerk", "password": PASSWORD, "next": target},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/console/"


async def test_wrong_password_and_unknown_user_read_the_same(app: Console) -> None:
    wrong = await app.login("clerk", "not the password at all")
    unknown = await app.login("nobody", "not the password at all")
    assert wrong.status == unknown.status == 401
    assert "Wrong user name, password or code." in await wrong.text()
    assert "Wrong user name, password or code." in await unknown.text()


async def test_lockout_after_five_failures_then_it_expires(app: Console) -> None:
    for _ in range(4):
        assert (await app.login("officer", "wrong password!!")).status == 401
    locked = await app.login("officer", "wrong password!!")
    assert locked.status == 429
    assert "locked until" in await locked.text()
    # the right password does not pass while locked
    assert (await app.login("officer")).status == 429
    app.clock.advance(minutes=16)
    assert (await app.login("officer")).status == 303


async def test_a_disabled_user_is_signed_out_at_the_next_request(app: Console) -> None:
    await app.login("auditor")
    assert (await app.client.get("/console/")).status == 200
    users.disable_user(users.users_path(app.node_dir), "auditor", now=NOW)
    response = await app.client.get("/console/", allow_redirects=False)
    assert response.status == 303


async def test_an_idle_session_ends(app: Console) -> None:
    await app.login("auditor")
    app.clock.advance(minutes=31)
    response = await app.client.get("/console/", allow_redirects=False)
    assert response.status == 303


async def test_csrf_refusals_change_nothing(app: Console) -> None:
    await app.login("clerk")
    before = await app.store.console_counts()
    no_token = await app.client.post("/console/export/new", data={}, allow_redirects=False)
    assert no_token.status == 403
    assert "expired" in await no_token.text()
    wrong = await app.client.post("/console/export/new", data={"csrf": "x" * 43},
                                  allow_redirects=False)  # fmt: skip
    assert wrong.status == 403
    token = await app.csrf("/console/")
    other_site = await app.client.post(
        "/console/export/new", data={"csrf": token},
        headers={"Origin": "https://evil.example"}, allow_redirects=False,
    )  # fmt: skip
    assert other_site.status == 403
    as_json = await app.client.post("/console/export/new", json={"csrf": token},
                                    allow_redirects=False)  # fmt: skip
    assert as_json.status == 403
    assert await app.store.console_counts() == before
    # and with the token, from this console, it works
    ok = await app.client.post("/console/export/new", data={"csrf": token},
                               allow_redirects=False)  # fmt: skip
    assert ok.status == 303


async def test_login_itself_needs_the_token(app: Console) -> None:
    response = await app.client.post(
        "/console/login", data={"user": "clerk", "password": PASSWORD}, allow_redirects=False
    )
    assert response.status == 403


async def test_security_headers_on_pages_and_errors(app: Console) -> None:
    first = await app.client.get("/console/login")
    cookie = first.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    for path in ("/console/login", "/console/nothing-here"):
        response = await app.client.get(path, allow_redirects=False)
        assert response.headers["Content-Security-Policy"] == CSP, path
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    page = await app.client.get("/console/login")
    assert page.headers["Cache-Control"] == "no-store"
    text = await page.text()
    assert "<script>" not in text and " style=" not in text  # nothing inline for the CSP


async def test_the_login_page_is_small_and_htmx_is_served(app: Console) -> None:
    page = await app.client.get("/console/login")
    assert len(await page.read()) < 100 * 1024
    css = await app.client.get("/console/static/console.css")
    js = await app.client.get("/console/static/htmx.min.js")
    assert css.status == js.status == 200
    total = len(await page.read()) + len(await css.read()) + len(await js.read())
    assert total < 100 * 1024  # the first page with everything it loads


async def test_language_from_the_browser_then_chosen(app: Console) -> None:
    french = await app.client.get("/console/login", headers={"Accept-Language": "fr-CA,en;q=0.5"})
    assert '<html lang="fr"' in await french.text()
    token = await app.csrf()
    await app.client.post(
        "/console/lang", data={"csrf": token, "lang": "ar", "next": "/console/login"}
    )
    arabic = await (await app.client.get("/console/login")).text()
    assert '<html lang="ar" dir="rtl"' in arabic
    # the choice survives signing in
    await app.login("clerk")
    home = await (await app.client.get("/console/")).text()
    assert 'dir="rtl"' in home


@pytest.mark.parametrize("value", ["xx", "", "../../etc", "ar\x00", "e" * 10000])
async def test_a_language_that_is_not_ours_changes_nothing(app: Console, value: str) -> None:
    token = await app.csrf()
    response = await app.client.post("/console/lang", data={"csrf": token, "lang": value},
                                     allow_redirects=False)  # fmt: skip
    assert response.status == 303
    assert '<html lang="en"' in await (await app.client.get("/console/login")).text()


@pytest.mark.parametrize(
    "name,password",
    [("", ""), ("a" * 100, "x"), ("clerk", "p" * 5000), ("\x00", "\x00"), ("cl\u0000erk", PASSWORD),
     ("CLERK ", "wrong"), ("' OR 1=1 --", "x")],
)  # fmt: skip
async def test_hostile_logins_are_refused_plainly(app: Console, name: str, password: str) -> None:
    response = await app.login(name, password)
    assert response.status in (401, 429)
    assert "Traceback" not in await response.text()


async def test_unknown_pages_and_bad_ids(app: Console) -> None:
    await app.login("auditor")
    for path in ("/console/export/99999", "/console/export/abc", "/console/inbox/99999",
                 "/console/export/" + "9" * 40, "/console/nothing"):  # fmt: skip
        response = await app.client.get(path)
        assert response.status == 404, path
        assert "text/html" in response.headers["Content-Type"]


async def test_a_second_factor_once_set_is_asked_and_good_once(app: Console) -> None:
    secret = totp.new_secret()
    users.set_totp(users.users_path(app.node_dir), "officer", secret)
    assert (await app.login("officer")).status == 401  # the password alone is not enough
    code = totp.code_at(secret, NOW)
    token = await app.csrf()
    data = {"csrf": token, "user": "officer", "password": PASSWORD, "code": code}
    ok = await app.client.post("/console/login", data=data, allow_redirects=False)
    assert ok.status == 303
    await app.logout()
    token = await app.csrf()
    replayed = await app.client.post(
        "/console/login", data=data | {"csrf": token}, allow_redirects=False
    )
    assert replayed.status == 401  # the same code twice: refused
    for bad in ("", "12345", "abcdef", "١٢٣٤٥٦", "9" * 40):
        token = await app.csrf()
        response = await app.client.post(
            "/console/login", data=data | {"csrf": token, "code": bad}, allow_redirects=False
        )
        assert response.status in (401, 429)


async def test_sign_ins_and_refusals_are_counted(app: Console) -> None:
    await app.login("clerk", "not the password at all")
    await app.login("clerk")
    await app.client.post("/console/export/new", data={}, allow_redirects=False)
    text = app.counted()
    assert 'ephyto_console_sign_ins_total{outcome="failed"} 1.0' in text
    assert 'ephyto_console_sign_ins_total{outcome="signed-in"} 1.0' in text
    assert 'ephyto_console_refusals_total{reason="csrf"} 1.0' in text


async def test_the_chosen_language_follows_the_user(app: Console) -> None:
    await app.login("inspector")
    await app.post("/console/lang", {"lang": "ru", "next": "/console/"})
    await app.logout()
    app.client.session.cookie_jar.clear()  # another browser
    await app.login("inspector")
    assert '<html lang="ru"' in await (await app.client.get("/console/")).text()


async def test_static_files_go_compressed_and_are_kept_an_hour(app: Console) -> None:
    for name in ("htmx.min.js", "console.css"):
        plain = await (await app.client.get(f"/console/static/{name}")).read()
        response = await app.client.get(
            f"/console/static/{name}", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
        )
        assert response.headers["Content-Encoding"] == "gzip"
        # the .gz beside each file is that file, compressed (not a stale copy)
        assert gzip.decompress(await response.read()) == plain
        assert response.headers["Cache-Control"] == "private, max-age=3600"
