"""What else an office needs: search across sent and received, the monthly report, and
the audit trail of everything done in the console.

The monthly report counts the month's certificates by partner, commodity and state, on
both sides, from the same lists the pages show (at most REPORT_MAX of each a month,
which is more than any NPPO issues; a month past that says so rather than counting
short in silence).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

from aiohttp import web

from node.console import i18n
from node.console.context import context_of, page, user_of
from node.console.export import STATE_NAMES
from node.console.inbox import ANSWER_NAMES, index_commodities
from node.console.listing import csv_response
from node.console.users import may

REPORT_MAX = 100_000
_SEARCH_MAX = 50


async def search(request: web.Request) -> web.Response:
    """One box for a certificate number or a commodity, across sent and received."""
    store = context_of(request).api.store
    text = "".join(c for c in request.query.get("q", "") if c.isprintable()).strip()[:100]
    sent: list[object] = []
    received: list[object] = []
    if text:
        await index_commodities(store)
        sent = list(await store.console_list(number_contains=text, limit=_SEARCH_MAX))
        sent += [
            c
            for c in await store.console_list(commodity_contains=text, limit=_SEARCH_MAX)
            if c not in sent
        ]
        received = list(await store.console_inbox(number_contains=text, limit=_SEARCH_MAX))
        received += [
            e
            for e in await store.console_inbox(commodity_contains=text, limit=_SEARCH_MAX)
            if e not in received
        ]
    return await page(
        request,
        "search.html",
        {"q": text, "sent": sent, "received": received, "state_names": STATE_NAMES,
         "answer_names": ANSWER_NAMES},
    )  # fmt: skip


async def report(request: web.Request) -> web.StreamResponse:
    """The month's counts by partner, commodity and state; `format=csv` for a file."""
    store = context_of(request).api.store
    month = _month(request.query.get("month"), context_of(request).api.clock.now())
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
    await index_commodities(store)
    sent = await store.console_list(since=start, until=end, limit=REPORT_MAX + 1)
    received = await store.console_inbox(since=start, until=end, limit=REPORT_MAX + 1)
    rows: Counter[tuple[str, str, str, str]] = Counter()
    for c in sent[:REPORT_MAX]:
        rows["sent", c.import_country or "", c.commodity or "", c.state] += 1
    for e in received[:REPORT_MAX]:
        rows["received", e.message.sender, e.commodity or "", e.state] += 1
    table = sorted((*key, n) for key, n in rows.items())
    if request.query.get("format") == "csv":
        return csv_response(
            f"report-{month:%Y-%m}.csv",
            ("direction", "partner", "commodity", "state", "certificates"),
            table,
        )
    return await page(
        request,
        "report.html",
        {
            "month": f"{month:%Y-%m}",
            "table": table,
            "truncated": len(sent) > REPORT_MAX or len(received) > REPORT_MAX,
            "sent_total": min(len(sent), REPORT_MAX),
            "received_total": min(len(received), REPORT_MAX),
            "state_names": STATE_NAMES | ANSWER_NAMES,
        },
    )


async def audit(request: web.Request) -> web.StreamResponse:
    """The whole trail, newest last; for the auditor and the admin (`format=csv`)."""
    user = user_of(request)
    if user.role not in ("auditor", "admin") or not may(user.role, "read"):
        raise web.HTTPForbidden()
    store = context_of(request).api.store
    entries = await store.console_audit_all(limit=10_000)
    if request.query.get("format") == "csv":
        return csv_response(
            "audit.csv",
            ("at", "user", "action", "certificate", "message", "detail"),
            [(e.at.isoformat(), e.user, e.action, e.certificate or "", e.message or "",
              "" if e.detail is None else str(e.detail)) for e in entries],
        )  # fmt: skip
    return await page(request, "audit.html", {"entries": entries[-500:], "total": len(entries)})


def _month(text: str | None, now: datetime) -> date:
    """The month `text` (YYYY-MM) names; this month for anything else."""
    if text and len(text) == 7 and text[4] == "-" and text[:4].isdigit() and text[5:].isdigit():
        year, month = int(text[:4]), int(text[5:])
        if 2000 <= year <= 2999 and 1 <= month <= 12:
            return date(year, month, 1)
    return date(now.year, now.month, 1)


_ = i18n._
