"""The node's HTTP API for the national certification system (token-authenticated).

Submit a certificate (ePhyto XML or the JSON model) to its importing country; list and
get sent and received certificates with their delivery state and event history;
download XML and PDF; withdraw (status 40) and replace. Refusals are problem+json
(RFC 9457), and a refused submission stores nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

from aiohttp import web

from node.certificate import safe_xml
from node.certificate.findings import Level
from node.certificate.jsonmodel import certificate_from_json
from node.certificate.lifecycle import WITHDRAWN, replacement_of, withdrawal_of
from node.certificate.model import Certificate
from node.certificate.validate import Report, Validator
from node.certificate.xml_build import to_xml_bytes
from node.certificate.xml_parse import Routing, certificate_from_tree
from node.clock import Clock
from node.errors import InputError
from node.store.store import (
    MessageSummary,
    NewMessage,
    NotFoundError,
    Store,
    StoredMessage,
    queued,
)

MAX_BODY = 12 * 1024 * 1024
XML_TYPES = ("application/xml", "text/xml")


@dataclass(frozen=True, slots=True)
class ApiContext:
    """What the API needs from the node: who it is, its store, and how to wake the outbox."""

    country: str
    api_token: str
    store: Store
    validator: Validator
    clock: Clock
    kick: Callable[[], None] = lambda: None


class ProblemError(Exception):
    """A refusal to answer as problem+json."""

    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CONTEXT = web.AppKey("context", ApiContext)


def create_api_app(context: ApiContext) -> web.Application:
    """The API as an aiohttp application, mounted by the node under /api/v1."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[_problems, _auth])
    app[CONTEXT] = context
    app.router.add_get("/openapi.yaml", _openapi)
    app.router.add_post("/certificates", _submit)
    app.router.add_get("/certificates", _list)
    app.router.add_get("/certificates/{id:\\d+}", _get)
    app.router.add_get("/certificates/{id:\\d+}/xml", _xml)
    app.router.add_get("/certificates/{id:\\d+}/pdf", _pdf)
    app.router.add_post("/certificates/{id:\\d+}/withdraw", _withdraw)
    app.router.add_post("/certificates/{id:\\d+}/replace", _replace)
    return app


@web.middleware
async def _problems(request: web.Request, handler: _Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ProblemError as e:
        return _problem(e.status, e.title, e.detail, **e.extra)
    except NotFoundError as e:
        return _problem(404, "Not found", str(e))
    except InputError as e:
        return _problem(422, "Unprocessable certificate", str(e))
    except web.HTTPRequestEntityTooLarge:
        return _problem(413, "Too large", f"the body is over {MAX_BODY} bytes")


@web.middleware
async def _auth(request: web.Request, handler: _Handler) -> web.StreamResponse:
    if request.path.endswith("/openapi.yaml"):
        return await handler(request)
    context: ApiContext = request.app[CONTEXT]
    header = request.headers.get("Authorization", "")
    token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
    # Constant-time comparison: the token is the national system's only credential.
    if not token or not hmac.compare_digest(token.encode(), context.api_token.encode()):
        raise ProblemError(401, "Unauthorized", "a valid 'Authorization: Bearer <token>' is needed")
    return await handler(request)


async def _openapi(request: web.Request) -> web.Response:
    spec = (resources.files("node.api") / "openapi.yaml").read_bytes()
    return web.Response(body=spec, content_type="application/yaml")


async def _submit(request: web.Request) -> web.Response:
    context: ApiContext = request.app[CONTEXT]
    body = await request.read()
    if request.content_type in XML_TYPES:
        # Submitted XML goes out byte for byte as the national system wrote it (after
        # validation): what the importing NPPO receives is what the exporter signed off.
        report = context.validator.validate(body)
        _refuse_invalid(report, number=None)
        routing = report.routing
        assert routing is not None  # a valid document always reads (Report.certificate)
        return await _queue_checked(context, routing, body, report, event_detail={})
    return await _queue(context, _certificate_from_body(body, request.content_type), {})


async def _withdraw(request: web.Request) -> web.Response:
    context: ApiContext = request.app[CONTEXT]
    sent = await _sent(context, request)
    history = await context.store.history("out", sent.certificate_number)
    done = [m for m in history if m.certificate_status == WITHDRAWN and m.state != "failed"]
    if done:
        raise ProblemError(
            409,
            "Already withdrawn",
            f"certificate {sent.certificate_number} was withdrawn by message {done[0].id}",
        )
    cert = withdrawal_of(_stored_certificate(sent))
    return await _queue(context, cert, {"withdraws": sent.id})


async def _replace(request: web.Request) -> web.Response:
    context: ApiContext = request.app[CONTEXT]
    sent = await _sent(context, request)
    reason = request.query.get("reason", "")
    new = _certificate_from_body(await request.read(), request.content_type)
    cert = replacement_of(
        new, replaced_number=sent.certificate_number, reason=reason, at=_seconds(context)
    )
    return await _queue(context, cert, {"replaces": sent.id})


async def _list(request: web.Request) -> web.Response:
    context: ApiContext = request.app[CONTEXT]
    direction = {"sent": "out", "received": "in"}.get(request.query.get("direction", "sent"))
    if direction is None:
        raise ProblemError(400, "Bad request", "direction must be 'sent' or 'received'")
    limit = _int_query(request, "limit", 100, 1, 1000)
    offset = _int_query(request, "offset", 0, 0, 10**9)
    found = await context.store.summaries(direction, limit=limit, offset=offset)  # type: ignore[arg-type]
    return web.json_response({"certificates": [_summary(m) for m in found]})


async def _get(request: web.Request) -> web.Response:
    context: ApiContext = request.app[CONTEXT]
    message = await context.store.message(int(request.match_info["id"]))
    events = await context.store.events(message.id)
    body = _summary(message) | {
        "events": [{"at": e.at.isoformat(), "kind": e.kind, "detail": e.detail} for e in events]
    }
    return web.json_response(body)


async def _xml(request: web.Request) -> web.Response:
    context: ApiContext = request.app[CONTEXT]
    message = await context.store.message(int(request.match_info["id"]))
    return web.Response(body=message.payload, content_type="application/xml")


async def _pdf(request: web.Request) -> web.Response:
    from node.render.pdf import render_pdf  # fonts are heavy: load on first use

    context: ApiContext = request.app[CONTEXT]
    message = await context.store.message(int(request.match_info["id"]))
    cert = _stored_certificate(message)
    # Rendering takes a second or more: keep the event loop (and the exchange) moving.
    pdf = await asyncio.get_running_loop().run_in_executor(None, render_pdf, cert)
    return web.Response(body=pdf, content_type="application/pdf")


async def _queue(
    context: ApiContext, cert: Certificate, event_detail: dict[str, Any]
) -> web.Response:
    """Build the XML of a model, validate it, then store and queue it."""
    xml = to_xml_bytes(cert)
    report = context.validator.validate(xml)
    _refuse_invalid(report, number=cert.number)
    return await _queue_checked(context, Routing.of(cert), xml, report, event_detail=event_detail)


def _refuse_invalid(report: Report, *, number: str | None) -> None:
    if report.valid:
        return
    which = "the certificate" if number is None else f"certificate {number}"
    severe = [f.message for f in report.findings if f.level is Level.SEVERE]
    why = f" ({severe[0]})" if severe else ""
    raise ProblemError(
        422,
        "Invalid certificate",
        f"{which} is not valid{why}; nothing was stored",
        findings=[f.to_dict() for f in report.findings],
    )


async def _queue_checked(
    context: ApiContext,
    routing: Routing,
    xml: bytes,
    report: Report,
    *,
    event_detail: dict[str, Any],
) -> web.Response:
    """Store a validated certificate and its outbox row in one transaction."""
    exporter = routing.export_country
    if exporter != context.country:
        raise ProblemError(
            422,
            "Not our certificate",
            f"the exporting country is {exporter}; this node sends for {context.country}",
        )
    now = context.clock.now()  # full precision: the event history measures latency
    new = NewMessage(
        message_id=str(uuid.uuid4()),
        sender=context.country,
        recipient=routing.import_country,
        certificate_number=routing.number,
        certificate_type=routing.type_code,
        certificate_status=routing.status_code,
        content_digest="sha256:" + hashlib.sha256(xml).hexdigest(),
        payload=xml,
    )
    pk = await context.store.submit(new, now=now, lifecycle=event_detail or None)
    context.kick()
    findings = [f.to_dict() for f in report.findings]
    return web.json_response(_summary(queued(pk, new, now)) | {"findings": findings}, status=202)


async def _sent(context: ApiContext, request: web.Request) -> StoredMessage:
    message = await context.store.message(int(request.match_info["id"]))
    if message.direction != "out":
        raise ProblemError(409, "Not ours", f"certificate {message.id} was received, not sent")
    return message


def _certificate_from_body(body: bytes, content_type: str) -> Certificate:
    if content_type == "application/json":
        return certificate_from_json(body)
    if content_type in XML_TYPES:
        return certificate_from_tree(safe_xml.parse(body))
    raise ProblemError(
        415, "Unsupported media type", "send application/xml (ePhyto) or application/json (model)"
    )


def _stored_certificate(message: StoredMessage) -> Certificate:
    return certificate_from_tree(safe_xml.parse(message.payload))


def _summary(message: StoredMessage | MessageSummary) -> dict[str, Any]:
    return {
        "id": message.id,
        "direction": "sent" if message.direction == "out" else "received",
        "message_id": message.message_id,
        "from": message.sender,
        "to": message.recipient,
        "number": message.certificate_number,
        "type": message.certificate_type,
        "status": message.certificate_status,
        "state": message.state,
        "route": message.route,
        "outcome": message.outcome,
        "created_at": message.created_at.isoformat(),
        "settled_at": None if message.settled_at is None else message.settled_at.isoformat(),
    }


def _seconds(context: ApiContext) -> datetime:
    return context.clock.now().replace(microsecond=0)


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ProblemError(400, "Bad request", f"{name} must be a whole number {low}..{high}")
    return int(raw)


def _problem(status: int, title: str, detail: str, **extra: Any) -> web.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return web.json_response(body, status=status, content_type="application/problem+json")
