"""The import side of the console over real HTTP: the inbox, a received certificate
with its authenticity, and the answer sent back through the API's own path."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from node.certificate.validate import Validator
from node.store.store import NewMessage, Store
from tests.integration.console.console_app import NOW, Console, console

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def app(tmp_path: Path, validator: Validator) -> AsyncIterator[Console]:
    async with console(tmp_path, validator) as running:
        yield running


async def _received(store: Store, xml: bytes, *, sender: str = "KE", number: str = "KE-2026-1",
                    message_id: str | None = None, status: str = "70",
                    route: str = "direct") -> int:  # fmt: skip
    new = NewMessage(message_id or str(uuid.uuid4()), sender, "NL", number, "851", status,
                     "sha256:00", xml)  # fmt: skip
    received = await store.receive(
        new, now=NOW, make_receipt=lambda: ("accepted", b"r"), route=route
    )
    return received.message


async def test_inbox_answer_and_audit(app: Console, phyto_xml: bytes) -> None:
    pk = await _received(app.store, phyto_xml)
    await app.login("inspector")
    inbox = await (await app.client.get("/console/inbox")).text()
    assert f"/console/inbox/{pk}" in inbox and "Tulip bulbs for planting" in inbox
    page = await (await app.client.get(f"/console/inbox/{pk}")).text()
    assert "Signature verified" in page and "Tulipa gesneriana" in page
    pdf = await app.client.get(f"/console/inbox/{pk}/pdf")
    assert (await pdf.read()).startswith(b"%PDF")
    # a rejection needs its reason
    refused = await app.post(f"/console/inbox/{pk}/answer", {"decision": "rejected"})
    assert refused.status == 303
    assert await app.store.response_to(pk) is None
    sent = await app.post(f"/console/inbox/{pk}/answer",
                          {"decision": "rejected", "text": "Live thrips found"})  # fmt: skip
    assert sent.status == 303
    response = await app.store.response_to(pk)
    assert response is not None and response.recipient == "KE" and app.kicks
    page = await (await app.client.get(f"/console/inbox/{pk}")).text()
    assert "Live thrips found" in page and 'id="send-answer"' not in page
    # answered once only
    again = await app.post(f"/console/inbox/{pk}/answer", {"decision": "accepted"})
    assert again.status == 409
    rejected = await (await app.client.get("/console/inbox?state=rejected")).text()
    assert f"/console/inbox/{pk}" in rejected
    unanswered = await (await app.client.get("/console/inbox?state=unanswered")).text()
    assert f"/console/inbox/{pk}" not in unanswered
    actions = [e.action for e in await app.store.console_audit(message=pk)]
    assert "viewed" in actions and "answered-rejected" in actions


async def test_only_an_inspector_answers(app: Console, phyto_xml: bytes) -> None:
    pk = await _received(app.store, phyto_xml)
    for role in ("clerk", "officer", "auditor", "admin"):
        await app.login(role)
        page = await (await app.client.get(f"/console/inbox/{pk}")).text()
        assert 'id="send-answer"' not in page
        response = await app.post(f"/console/inbox/{pk}/answer", {"decision": "accepted"})
        assert response.status == 403, role
        await app.logout()
    assert await app.store.response_to(pk) is None


async def test_plain_xml_from_a_hub_says_it_is_not_signed(app: Console, phyto_xml: bytes) -> None:
    pk = await _received(app.store, phyto_xml, message_id="hub:12345", route="hub")
    sealed = await _received(app.store, phyto_xml, number="KE-2026-2", route="hub")
    await app.login("auditor")
    page = await (await app.client.get(f"/console/inbox/{pk}")).text()
    assert "Not signed by the NPPO" in page
    # a sealed envelope pulled from the hub: signed, and the route says hub
    page = await (await app.client.get(f"/console/inbox/{sealed}")).text()
    assert "Signature verified" in page and '<dd id="route">hub</dd>' in page


async def test_filters_counts_search_report_csv(app: Console, phyto_xml: bytes) -> None:
    one = await _received(app.store, phyto_xml)
    two = await _received(app.store, phyto_xml, sender="US", number="US-2026-9")
    await app.login("auditor")
    by_us = await (await app.client.get("/console/inbox?country=US")).text()
    assert f"/console/inbox/{two}" in by_us and f'/console/inbox/{one}"' not in by_us
    by_commodity = await (await app.client.get("/console/inbox?commodity=tulip")).text()
    assert f"/console/inbox/{one}" in by_commodity
    csv = (await (await app.client.get("/console/inbox?format=csv")).read()).decode("utf-8-sig")
    assert "US-2026-9" in csv and "KE-2026-1" in csv
    home = await (await app.client.get("/console/")).text()
    assert "Not answered" in home
    search = await (await app.client.get("/console/search?q=US-2026")).text()
    assert f"/console/inbox/{two}" in search
    report = await app.client.get("/console/report?month=2026-11&format=csv")
    text = (await report.read()).decode("utf-8-sig")
    assert "received,KE,Tulip bulbs for planting,unanswered,1" in text
    audit = await app.client.get("/console/audit?format=csv")
    assert audit.status == 200
    for query in ("month=2026-13", "month=x" * 100, "month=", "format=pdf"):
        assert (await app.client.get("/console/report?" + query)).status == 200


async def test_a_sent_certificate_is_not_in_the_inbox(app: Console, phyto_xml: bytes) -> None:
    pk = await _received(app.store, phyto_xml)
    await app.login("auditor")
    for path in (f"/console/inbox/{pk + 100}", "/console/inbox/x", "/console/inbox/0/pdf"):
        assert (await app.client.get(path)).status == 404


async def test_only_auditors_and_admins_read_the_whole_trail(app: Console) -> None:
    await app.login("clerk")
    assert (await app.client.get("/console/audit")).status == 403
    await app.logout()
    await app.login("admin")
    assert (await app.client.get("/console/audit")).status == 200


async def test_a_csv_cell_is_never_a_formula(app: Console, phyto_xml: bytes) -> None:
    await _received(app.store, phyto_xml, number='=HYPERLINK("http://x")')
    await app.login("auditor")
    csv = (await (await app.client.get("/console/inbox?format=csv")).read()).decode("utf-8-sig")
    assert "'=HYPERLINK" in csv
