"""`GET /api/v1/events`: what happened to every message, in commit order, resumable.

Each event has an opaque cursor as its `id`; `?after=` that cursor gives what came
after it, and the answer's `next` is where to resume, so a national system that keeps
its last `next` misses nothing and reads nothing twice (node.store.feed says why no
event can commit behind one already read).

Kinds are the issue's vocabulary where one applies; the store's own names differ:

| store            | feed        |
| ---------------- | ----------- |
| submitted        | sent        |
| delivered        | delivered   |
| failed           | failed      |
| received         | received    |
| withdrawn        | withdrawn   |
| replaced         | replaced    |
| lifecycle        | withdraws or replaces (a sent withdrawal or replacement) |

Everything else appears under its own name (withdraws, replaces, relayed, retry,
schema-version, no-direct-endpoint): progress a client may ignore, listed rather than
hidden so the feed holds every event a certificate's history shows.
"""

from __future__ import annotations

import re

from aiohttp import web

from node.api import views
from node.api.params import int_query
from node.api.problems import bad_request
from node.store.store import Event, FeedEvent, Store

KINDS = {"submitted": "sent"}
# "e" and 16 hex digits: exactly the ids 0..2**63-1, one spelling each, so that what
# the OpenAPI pattern allows is what the API takes. Opaque to clients all the same.
_CURSOR = re.compile(r"e([0-7][0-9a-f]{15})")


async def feed(store: Store, request: web.Request) -> web.Response:
    """The events after `after` (from the start without it), at most `limit`."""
    after = cursor_query(request)
    limit = int_query(request, "limit", 100, 1, 1000)
    found = await store.feed(after=after, limit=limit)
    last = found[-1].id if found else after
    return web.json_response({"events": [item(e) for e in found], "next": cursor(last)})


def item(event: FeedEvent) -> dict[str, object]:
    """The FeedEvent schema."""
    shown = views.event(Event(event.at, event.kind, event.detail, event.client))
    return {
        "id": cursor(event.id),
        "certificate": event.message,
        "direction": "sent" if event.direction == "out" else "received",
        "number": event.certificate_number,
        "kind": kind(event.kind, event.detail),
        "at": shown["at"],
        "detail": shown["detail"],
        "client": event.client,
    }


def kind(stored: str, detail: dict[str, object]) -> str:
    """A stored kind in the feed's words."""
    if stored == "lifecycle":
        return "withdraws" if "withdraws" in detail else "replaces"
    return KINDS.get(stored, stored)


def cursor(event_id: int) -> str:
    """The opaque cursor of an event id."""
    return f"e{event_id:016x}"


def cursor_query(request: web.Request) -> int:
    """The event id `after` names (0 without it); 400 for anything but a cursor this
    node gave."""
    raw = request.query.get("after")
    if raw is None:
        return 0
    found = _CURSOR.fullmatch(raw)
    if found is None:
        raise bad_request("after must be a cursor this API gave (an event's id or a next)")
    return int(found[1], 16)
