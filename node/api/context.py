"""What every route of the node's API shares: its context, limits and small helpers.

Below the route modules and node.api.app alike, so the handlers reach the context
through the request's application (CONTEXT) without importing the app that routes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from node.api.clients import CALLER
from node.api.door import Door
from node.api.params import message_id
from node.api.problems import not_found, too_large
from node.certificate import safe_xml
from node.certificate.model import Certificate
from node.certificate.validate import Validator
from node.certificate.xml_parse import certificate_from_tree
from node.clock import Clock
from node.store.store import Answer, Store, StoredMessage

PREFIX = "/api/v1"
# The largest certificate (its XML) the node sends, and so the largest body the API
# takes: what both routes carry. Through a hub the sealed envelope travels as the
# DeliverEnvelope Content, base64 (4/3 of the XML, plus about 1 KiB); a hub takes a
# Content of up to 7 MiB by default (node.hub.config.DEFAULT_MAX_CONTENT_BYTES), and
# 4/3 of 5 MiB leaves a quarter MiB to spare. The direct route takes envelopes of up to
# 12 MiB (node.runtime.DEFAULT_MAX_ENVELOPE_BYTES).
MAX_CERTIFICATE_BYTES = 5 * 1024 * 1024
XML_TYPES = ("application/xml", "text/xml")
JSON_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class ApiContext:
    """What the API needs from the node: who it is, its store, and how to wake the outbox."""

    country: str
    api_token: str
    store: Store
    validator: Validator
    clock: Clock
    kick: Callable[[], None] = lambda: None
    max_body_bytes: int = MAX_CERTIFICATE_BYTES
    # The directory, to refuse at the door what could never be delivered
    # (node.api.door); None: only what sealing refuses is checked.
    door: Door | None = None
    # api-clients.json (node.identity.api_clients): the named clients beside api_token;
    # None: api_token alone.
    clients_file: Path | None = None


CONTEXT = web.AppKey("context", ApiContext)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refused with 413 past `limit`: from the announced length,
    unread; without one, aiohttp stops reading at the application's client_max_size."""
    if (request.content_length or 0) > limit:
        raise too_large(limit)
    return await request.read()


def caller_name() -> str | None:
    """The name of the API client making this call (node.api.clients), for its events."""
    client = CALLER.get()
    return None if client is None else client.name


def location_of(pk: int) -> str:
    return f"{PREFIX}/certificates/{pk}"


def json_answer(answer: Answer) -> web.Response:
    response = web.Response(status=answer.status, text=answer.body, content_type=JSON_TYPE)
    if answer.location is not None:
        response.headers["Location"] = answer.location
    return response


async def certificate_message(context: ApiContext, request: web.Request) -> StoredMessage:
    """The certificate message the path names; 404 for a response, which has no XML."""
    message = await context.store.message(message_id(request))
    if message.kind != "certificate":
        raise not_found(f"message {message.id} is a response to a certificate, not one")
    return message


def stored_certificate(message: StoredMessage) -> Certificate:
    return certificate_from_tree(safe_xml.parse(message.payload))
