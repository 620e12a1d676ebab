"""No request to the console answers 500: every route, signed in as each role, with
hostile paths, queries and forms (the console's promise to its users: a clear page)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from node.certificate.validate import Validator
from tests.integration.console.console_app import Console, console

pytestmark = pytest.mark.asyncio

IDS = ("1", "0", "-1", "99999999999999999999", "abc", "%00", "1%2F..%2F..", "\u0661")
QUERIES = ("", "?q=" + "x" * 5000, "?q=%00%ff", "?state=issued&state=" + "s" * 300,
           "?country=\u00c9\u00c9&from=9999-99-99&to=x&page=99999999",
           "?month=0000-00&format=csv", "?format=csv&commodity=%25_%5C")  # fmt: skip
FORMS = (
    {},
    {"version": "1", "op": "submit"},
    {"version": "1", "move": "issue", "reason": "x" * 10_000},
    {"version": "99", "move": "nonsense"},
    {"decision": "accepted"},
    {"decision": "\x00", "text": "\uffff\ufffe" * 3},
    {"name": "\u202e", "role": "admin", "password": "x", "password2": "y"},
    {"lang": "ar", "next": "javascript:alert(1)"},
    {"copy": "99999999999"},
    {"version": "1", "index": "5"},
)
GETS = ("/console/", "/console/export", "/console/inbox", "/console/search", "/console/report",
        "/console/audit", "/console/users", "/console/export/{id}", "/console/export/{id}/edit",
        "/console/export/{id}/pdf", "/console/export/{id}/xml", "/console/export/{id}/json",
        "/console/inbox/{id}", "/console/inbox/{id}/pdf", "/console/inbox/{id}/xml",
        "/console/lookup/{id}", "/console/lookup/locations", "/console/lookup/units")  # fmt: skip
# A port search takes a few tenths of a second (UN/LOCODE's 116,000 places), a PDF a
# second to draw: these get a few queries each, not every one.
SLOW_QUERIES = ("", "?q=rotter", "?q=" + "x" * 5000, "?q=%00%ff&q=2")
POSTS = ("/console/export/new", "/console/export/{id}/edit", "/console/export/{id}/check",
         "/console/export/{id}/move", "/console/export/{id}/attach",
         "/console/export/{id}/detach", "/console/inbox/{id}/answer", "/console/users",
         "/console/users/{id}/disable", "/console/lang", "/console/logout")  # fmt: skip


@pytest_asyncio.fixture
async def app(tmp_path: Path, validator: Validator) -> AsyncIterator[Console]:
    async with console(tmp_path, validator) as running:
        yield running


# Three roles between them reach every page and every refusal (officer and auditor
# see nothing the clerk, the inspector or the admin do not).
@pytest.mark.parametrize("role", ["clerk", "inspector", "admin"])
async def test_no_route_answers_500(app: Console, role: str) -> None:
    await app.login("clerk")
    await app.post("/console/export/new", {})  # one draft, id 1
    await app.logout()
    await app.login(role)
    for template in GETS:
        for pk in IDS:
            if template.endswith("pdf"):
                queries: tuple[str, ...] = ("",)
            elif "lookup" in template:
                queries = SLOW_QUERIES if pk == "1" else ("",)
            else:
                queries = QUERIES[:3] if "{id}" in template else QUERIES
            for query in queries:
                path = template.replace("{id}", pk) + query
                response = await app.client.get(path, allow_redirects=False)
                assert response.status < 500, path
    for template in POSTS:
        for pk in IDS[:4]:
            for form in FORMS:
                path = template.replace("{id}", pk)
                response = await app.post(path, form)
                assert response.status < 500, (path, form)
                if template == "/console/logout":
                    await app.login(role)
