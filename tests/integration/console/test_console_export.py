"""The export side of the console over real HTTP: a clerk drafts, an officer approves
and issues, through the same send path as the API (the outbox gets the message)."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from node.certificate.validate import Validator
from tests.integration.console.console_app import Console, console
from tests.integration.console.forms import FORM as BASE_FORM

pytestmark = pytest.mark.asyncio

FORM = BASE_FORM | {
    "declaration-0-text": "The consignment was inspected and found free from Stromatinia gladioli.",
}
_ID = re.compile(r"/console/export/(\d+)/edit")
_VERSION = re.compile(r'name="version" value="(\d+)"')


@pytest_asyncio.fixture
async def app(tmp_path: Path, validator: Validator) -> AsyncIterator[Console]:
    async with console(tmp_path, validator) as running:
        yield running


async def _new_draft(app: Console) -> int:
    response = await app.post("/console/export/new", {})
    assert response.status == 303
    found = _ID.search(response.headers["Location"])
    assert found is not None
    return int(found.group(1))


async def _version(app: Console, path: str) -> str:
    found = _VERSION.search(await (await app.client.get(path)).text())
    assert found is not None, path
    return found.group(1)


async def _fill_and_submit(app: Console, pk: int, values: dict[str, str]) -> None:
    version = await _version(app, f"/console/export/{pk}/edit")
    response = await app.post(
        f"/console/export/{pk}/edit", {"version": version, "op": "submit", **values}
    )
    assert response.status == 303, await response.text()


async def _move(app: Console, pk: int, move: str, reason: str = "") -> str:
    version = await _version(app, f"/console/export/{pk}")
    data = {"version": version, "move": move} | ({"reason": reason} if reason else {})
    response = await app.post(f"/console/export/{pk}/move", data)
    assert response.status == 303
    return await (await app.client.get(f"/console/export/{pk}")).text()


async def test_draft_approve_issue_sends_through_the_outbox(app: Console) -> None:
    await app.login("clerk")
    pk = await _new_draft(app)
    # the empty draft says what is missing, beside the fields
    page = await (await app.client.get(f"/console/export/{pk}/edit")).text()
    assert 'id="find-item-0-botanical_name"' in page
    await _fill_and_submit(app, pk, FORM)
    view = await (await app.client.get(f"/console/export/{pk}")).text()
    assert "Submitted" in view
    assert 'id="move-approve"' not in view  # a clerk approves nothing
    await app.logout()

    await app.login("officer")
    view = await _move(app, pk, "approve")
    assert "Approved" in view
    assert app.kicks == []  # nothing sent yet
    view = await _move(app, pk, "issue")
    assert "Issued and sent" in view
    assert app.kicks  # the outbox was woken, as the API's submit wakes it
    sent = await app.store.messages("out")
    assert len(sent) == 1 and sent[0].recipient == "KE"
    cert = await app.store.console_get(pk)
    assert cert.message == sent[0].id and cert.state == "issued"
    # issued data is fixed: the form is gone, a save is refused
    edit = await app.client.get(f"/console/export/{pk}/edit", allow_redirects=False)
    assert edit.status == 303
    # the PDF is the sent certificate's, the XML the sent bytes
    pdf = await app.client.get(f"/console/export/{pk}/pdf")
    assert pdf.status == 200 and (await pdf.read()).startswith(b"%PDF")
    xml = await (await app.client.get(f"/console/export/{pk}/xml")).read()
    assert xml == sent[0].payload
    actions = [e.action for e in await app.store.console_audit(certificate=pk)]
    assert actions[0] == "created" and "approve" in actions and actions[-1] == "issue"


async def test_the_drafter_cannot_approve_or_issue_own_draft(app: Console) -> None:
    # the clerk who drafted is refused whatever officer's move they post
    await app.login("clerk")
    pk = await _new_draft(app)
    await _fill_and_submit(app, pk, FORM)
    version = str((await app.store.console_get(pk)).version)
    for move in ("approve", "issue", "reject"):
        response = await app.post(f"/console/export/{pk}/move",
                                  {"version": version, "move": move, "reason": "x"})  # fmt: skip
        assert response.status == 303
    assert (await app.store.console_get(pk)).state == "submitted"


async def test_query_sends_it_back_with_the_reason(app: Console) -> None:
    await app.login("clerk")
    pk = await _new_draft(app)
    await _fill_and_submit(app, pk, FORM)
    await app.logout()
    await app.login("officer")
    view = await _move(app, pk, "query", "Check the botanical name")
    assert "Queried" in view and "Check the botanical name" in view
    await app.logout()
    await app.login("clerk2")  # any clerk may correct it
    await _fill_and_submit(app, pk, FORM | {"item-0-botanical_name": "Tulipa"})
    assert (await app.store.console_get(pk)).state == "submitted"


async def test_a_reason_is_needed_to_reject(app: Console) -> None:
    await app.login("clerk")
    pk = await _new_draft(app)
    await _fill_and_submit(app, pk, FORM)
    await app.logout()
    await app.login("officer")
    await _move(app, pk, "reject")
    assert (await app.store.console_get(pk)).state == "submitted"
    await _move(app, pk, "reject", "Wrong commodity")
    cert = await app.store.console_get(pk)
    assert cert.state == "rejected" and cert.reason == "Wrong commodity"


async def test_an_invalid_draft_cannot_be_submitted_and_says_where(app: Console) -> None:
    await app.login("clerk")
    pk = await _new_draft(app)
    version = await _version(app, f"/console/export/{pk}/edit")
    values = FORM | {"item-0-botanical_name": "", "item-0-quantity_unit": "BOGUS"}
    response = await app.post(f"/console/export/{pk}/edit",
                              {"version": version, "op": "submit", **values})  # fmt: skip
    assert response.status == 422
    page = await response.text()
    slot = page.index('id="find-item-0-quantity_unit"')
    assert "finding" in page[slot : slot + 400]
    assert (await app.store.console_get(pk)).state == "draft"
    # as the officer types (htmx), the findings come as out-of-band slots
    token = await app.csrf("/console/")
    fragment = await app.client.post(f"/console/export/{pk}/check",
                                     data={"csrf": token, **values})  # fmt: skip
    text = await fragment.text()
    assert 'hx-swap-oob="true"' in text and 'id="find-item-0-botanical_name"' in text


async def test_rows_are_added_and_removed_without_javascript(app: Console) -> None:
    await app.login("clerk")
    pk = await _new_draft(app)
    version = await _version(app, f"/console/export/{pk}/edit")
    added = await app.post(f"/console/export/{pk}/edit",
                           {"version": version, "op": "add-item", **FORM})  # fmt: skip
    assert 'name="item-1-description"' in await added.text()


async def test_draft_preview_is_stamped_draft(app: Console) -> None:
    await app.login("clerk")
    pk = await _new_draft(app)
    version = await _version(app, f"/console/export/{pk}/edit")
    await app.post(f"/console/export/{pk}/edit", {"version": version, "op": "save", **FORM})
    pdf = await app.client.get(f"/console/export/{pk}/pdf")
    assert pdf.status == 200
    assert (await pdf.read()).startswith(b"%PDF")


async def test_a_stale_version_is_refused(app: Console) -> None:
    await app.login("clerk")
    pk = await _new_draft(app)
    version = await _version(app, f"/console/export/{pk}/edit")
    first = await app.post(f"/console/export/{pk}/edit", {"version": version, "op": "save", **FORM})
    assert first.status == 303
    second = await app.post(f"/console/export/{pk}/edit",
                            {"version": version, "op": "save", **FORM})  # fmt: skip
    assert second.status == 409


@pytest.mark.parametrize(
    "data",
    [{"version": "x", "op": "save"}, {"op": "save"}, {"version": "1" * 30, "op": "save"},
     {"version": "1", "op": "remove-item-99999999999"}, {"version": "1", "op": "add-nothing"},
     {"version": "1", "op": "save", "item-999999999-description": "x"},
     {"version": "1", "op": "save", "number": "\x00" * 10}],
)  # fmt: skip
async def test_hostile_forms_get_a_clear_answer(app: Console, data: dict[str, str]) -> None:
    await app.login("clerk")
    pk = await _new_draft(app)
    response = await app.post(f"/console/export/{pk}/edit", data)
    assert response.status in (200, 303, 400, 409, 422), response.status
    assert "Traceback" not in await response.text()


async def test_roles_that_may_not_draft(app: Console) -> None:
    for role in ("inspector", "auditor", "admin", "officer"):
        await app.login(role)
        response = await app.post("/console/export/new", {})
        assert response.status == 403, role
        await app.logout()


async def test_import_an_ephyto_xml_as_a_draft(app: Console, phyto_xml: bytes) -> None:
    import aiohttp

    await app.login("clerk")
    token = await app.csrf("/console/")
    data = aiohttp.FormData()
    data.add_field("csrf", token)
    data.add_field("file", phyto_xml, filename="c.xml", content_type="application/xml")
    response = await app.client.post("/console/export/new", data=data, allow_redirects=False)
    assert response.status == 303
    found = _ID.search(response.headers["Location"])
    assert found is not None
    page = await (await app.client.get(response.headers["Location"])).text()
    assert "Tulipa gesneriana" in page
    bad = aiohttp.FormData()
    bad.add_field("csrf", token)
    bad.add_field("file", b"<not xml", filename="c.xml", content_type="application/xml")
    refused = await app.client.post("/console/export/new", data=bad, allow_redirects=False)
    assert refused.status == 400


async def test_lists_filters_and_csv(app: Console) -> None:
    await app.login("clerk")
    pk = await _new_draft(app)
    await _fill_and_submit(app, pk, FORM)
    listing = await (await app.client.get("/console/export?state=submitted&country=KE")).text()
    assert f"/console/export/{pk}" in listing
    none = await (await app.client.get("/console/export?state=issued")).text()
    assert f"/console/export/{pk}" not in none
    csv = await app.client.get("/console/export?format=csv")
    assert csv.headers["Content-Type"].startswith("text/csv")
    assert "Tulip bulbs for planting" in (await csv.read()).decode("utf-8-sig")
    for query in ("country=ke", "country=" + "K" * 500, "from=2026-13-45", "number=%00",
                  "commodity=" + "x" * 5000, "page=-1", "state=nonsense"):  # fmt: skip
        response = await app.client.get("/console/export?" + query)
        assert response.status == 200, query


async def _attach(app: Console, pk: int, data: bytes, name: str = "permit.pdf") -> int:
    import aiohttp

    token = await app.csrf("/console/")
    version = await _version(app, f"/console/export/{pk}/edit")
    form = aiohttp.FormData()
    form.add_field("csrf", token)
    form.add_field("version", version)
    form.add_field("file", io.BytesIO(data), filename=name, content_type="application/pdf")
    response = await app.client.post(f"/console/export/{pk}/attach", data=form,
                                     allow_redirects=False)  # fmt: skip
    return response.status


async def test_a_pdf_attachment_travels_in_the_certificate(app: Console) -> None:
    await app.login("clerk")
    pk = await _new_draft(app)
    version = await _version(app, f"/console/export/{pk}/edit")
    await app.post(f"/console/export/{pk}/edit", {"version": version, "op": "save", **FORM})
    pdf = b"%PDF-1.4\n" + b"x" * 5000 + b"\n%%EOF\n"
    assert await _attach(app, pk, pdf, "lab-report.pdf") == 303
    page = await (await app.client.get(f"/console/export/{pk}/edit")).text()
    assert "lab-report.pdf" in page
    # not a PDF, too large: refused, nothing attached
    assert await _attach(app, pk, b"MZ\x90\x00 not a pdf") == 303
    assert await _attach(app, pk, b"%PDF-" + b"0" * (2 * 1024 * 1024)) == 303
    model = (await app.store.console_get(pk)).model
    assert model.count('"mime_code": "application/pdf"') == 1
    await _fill_and_submit(app, pk, FORM)
    await app.logout()
    await app.login("officer")
    await _move(app, pk, "approve")
    await _move(app, pk, "issue")
    sent = await app.store.messages("out")
    assert b"lab-report.pdf" in sent[0].payload


async def test_copy_into_a_new_draft(app: Console) -> None:
    await app.login("clerk")
    pk = await _new_draft(app)
    await _fill_and_submit(app, pk, FORM)
    response = await app.post("/console/export/new", {"copy": str(pk)})
    found = _ID.search(response.headers["Location"])
    assert found is not None and int(found.group(1)) != pk
    copy = await app.store.console_get(int(found.group(1)))
    assert copy.state == "draft" and "Tulipa gesneriana" in copy.model
    assert copy.number != (await app.store.console_get(pk)).number
