"""The import side of the console: certificates received, their authenticity, and the
importing country's answer.

The answer goes through the same call as the API's response route
(node.api.respond.answer_certificate), so it is sealed, sent and retried like any
message, by whichever route reaches the exporter.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from node.api.context import stored_certificate
from node.api.respond import answer_certificate
from node.api.views import lifecycle as lifecycle_view
from node.api.views import standing, stored_response
from node.certificate import safe_xml
from node.certificate.ispm12 import ispm12_view, sections
from node.certificate.xml_parse import certificate_from_tree
from node.console import i18n
from node.console.context import (
    PAGE_SIZE,
    context_of,
    file_response,
    flash,
    page,
    redirect,
    take_flash,
    user_of,
)
from node.console.listing import csv_response, filters_of, page_number, without_page
from node.console.users import may
from node.envelope.response import Decision
from node.errors import InputError
from node.store.store import INBOX_STATES, Store, StoredMessage

log = logging.getLogger(__name__)
_ = i18n._

ANSWER_STATES = INBOX_STATES
ANSWER_NAMES = {
    "unanswered": i18n.N_("Not answered"),
    "accepted": i18n.N_("Accepted"),
    "rejected": i18n.N_("Rejected"),
    "correction-requested": i18n.N_("Correction requested"),
    "withdrawn": i18n.N_("Withdrawn by the exporter"),
    "replaced": i18n.N_("Replaced by the exporter"),
}
DECISIONS = {
    "accepted": Decision.ACCEPTED,
    "rejected": Decision.REJECTED,
    "correction-requested": Decision.CORRECTION_REQUESTED,
}
_TEXT_MAX = 500


async def inbox(request: web.Request) -> web.StreamResponse:
    context = context_of(request)
    store = context.api.store
    filters = filters_of(request.query, states=ANSWER_STATES)
    number = page_number(request.query)
    as_csv = request.query.get("format") == "csv"
    await index_commodities(store)
    found = await store.console_inbox(
        sender=filters.country,
        number_contains=filters.number,
        commodity_contains=filters.commodity,
        states=filters.states or None,
        since=filters.since,
        until=filters.until,
        limit=10_000 if as_csv else PAGE_SIZE + 1,
        offset=0 if as_csv else number * PAGE_SIZE,
    )
    if as_csv:
        header = ("id", "number", "from", "type", "status", "commodity", "received_at", "route",
                  "answer")  # fmt: skip
        rows = [
            (e.message.id, e.message.certificate_number, e.message.sender,
             e.message.certificate_type, e.message.certificate_status, e.commodity or "",
             e.message.created_at.isoformat(), e.message.route or "", e.state)
            for e in found
        ]  # fmt: skip
        return csv_response("received.csv", header, rows)
    counts = await store.console_inbox_counts()
    return await page(
        request,
        "inbox.html",
        {
            "entries": found[:PAGE_SIZE],
            "more": len(found) > PAGE_SIZE,
            "page": number,
            "filters": filters,
            "states": [(s, ANSWER_NAMES[s], counts.get(s, 0)) for s in ANSWER_STATES],
            "state_names": ANSWER_NAMES,
            "query_nopage": without_page(request.rel_url.raw_query_string),
            "flash": await take_flash(request),
        },
    )


async def received(request: web.Request) -> web.Response:
    context, user = context_of(request), user_of(request)
    store = context.api.store
    message = await _received(request)
    cert = stored_certificate(message)
    answered = await store.response_to(message.id)
    found = await store.lifecycle(message.id)
    await store.console_audit_append(
        message=message.id, user=user.name, action="viewed", now=context.api.clock.now()
    )
    return await page(
        request,
        "received.html",
        {
            "message": message,
            "boxes": sections(ispm12_view(cert, context.codelists)),
            "authenticity": authenticity(message),
            "answer": None if answered is None else stored_response(answered),
            "lifecycle": lifecycle_view(found),
            "may_answer": may(user.role, "answer-received") and answered is None,
            "audit": await store.console_audit(message=message.id),
            "flash": await take_flash(request),
        },
    )


async def answer(request: web.Request) -> web.StreamResponse:
    """The importing country's answer: accepted, rejected (reason) or correction
    requested (what to correct), sent back to the exporter."""
    context, user = context_of(request), user_of(request)
    if not may(user.role, "answer-received"):
        raise web.HTTPForbidden()
    message = await _received(request)
    posted = await request.post()
    decision = DECISIONS.get(str(posted.get("decision", "")))
    text = str(posted.get("text", "")).strip()
    if decision is None:
        await flash(request, _("Choose accept, reject or request a correction."))
        raise redirect(f"/inbox/{message.id}")
    if decision is not Decision.ACCEPTED and not text:
        await flash(request, _("Say why: a reason is needed."))
        raise redirect(f"/inbox/{message.id}")
    if len(text) > _TEXT_MAX:
        await flash(request, _("The reason is too long (500 characters at most)."))
        raise redirect(f"/inbox/{message.id}")
    await answer_certificate(
        context.api, message, decision, text or None, client=f"console:{user.name}"
    )
    await context.api.store.console_audit_append(
        message=message.id, user=user.name, action=f"answered-{decision.value}",
        now=context.api.clock.now(), detail={"text": text} if text else None,
    )  # fmt: skip
    log.info("console: %s answered %s from %s: %s", user.name, message.certificate_number,
             message.sender, decision.value)  # fmt: skip
    await flash(
        request, _("Your answer is on its way to {country}.").format(country=message.sender)
    )
    raise redirect(f"/inbox/{message.id}")


async def received_pdf(request: web.Request) -> web.Response:
    from node.render.pdf import render_pdf  # fonts are heavy: load on first use

    context = context_of(request)
    message = await _received(request)
    cert = stored_certificate(message)
    stamp = standing(await context.api.store.lifecycle(message.id))
    body = await asyncio.get_running_loop().run_in_executor(
        None, render_pdf, cert, stamp, context.codelists
    )
    return file_response(body, "application/pdf", message.certificate_number, "pdf", inline=True)


async def received_xml(request: web.Request) -> web.Response:
    message = await _received(request)
    return file_response(
        message.payload, "application/xml", message.certificate_number, "xml", inline=False
    )


def authenticity(message: StoredMessage) -> dict[str, object]:
    """What the node knows of where a received certificate came from. A sealed envelope,
    by either route, was opened only after its Ed25519 signature verified against the
    exporting NPPO's key in the signed directory; plain XML from a hub (GeNS or a
    national system behind the IPPC Hub) carries no NPPO signature: the hub vouches for
    its sender."""
    sealed = not message.message_id.startswith("hub:")
    return {
        "signed": sealed,
        "nppo": message.sender,
        # Kept since the console was added; None for what arrived before that.
        "route": message.route or ("hub" if not sealed else None),
        "received_at": message.created_at,
        "digest": message.content_digest,
    }


async def index_commodities(store: Store) -> None:
    """Index the commodity of certificates received since the inbox was last looked at
    (parsing payloads takes a few milliseconds each: off the event loop)."""
    loop = asyncio.get_running_loop()
    for _round in range(50):  # at most 10,000 a look; the next look goes on
        found = await store.console_unindexed(limit=200)
        if not found:
            return
        indexed = await loop.run_in_executor(None, _commodities, found)
        await store.console_index(indexed)


def _commodities(found: list[tuple[int, bytes]]) -> list[tuple[int, str | None]]:
    return [(pk, commodity_of(payload)) for pk, payload in found]


def commodity_of(payload: bytes) -> str | None:
    """The first item's description of a received certificate, for the inbox's filter."""
    try:
        cert = certificate_from_tree(safe_xml.parse(payload))
    except InputError:  # stored only once it parsed; a list never fails for one certificate
        return None
    for item in cert.consignment.items:
        for text in item.descriptions:
            value = getattr(text, "value", text)
            if isinstance(value, str) and value.strip():
                return value.strip()[:256]
    return None


async def _received(request: web.Request) -> StoredMessage:
    text = request.match_info["id"]
    if not text.isdigit() or len(text) > 18:
        raise web.HTTPNotFound()
    message = await context_of(request).api.store.message(int(text))
    if message.direction != "in" or message.kind != "certificate":
        raise web.HTTPNotFound()
    return message
