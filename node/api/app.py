"""The node's HTTP API for the national certification system (token-authenticated).

Submit a certificate (ePhyto XML or the JSON model) to its importing country; list and
get sent and received certificates with their delivery state and event history;
download XML and PDF; withdraw (status 40) and replace. Exactly what node/api/openapi.yaml
describes: refusals are problem+json (RFC 9457, node.api.problems), parameters are read
strictly (node.api.params), and a refused submission stores nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from node.api import views
from node.api.clients import CALLER, Clients, authorise
from node.api.door import Door, check_deliverable
from node.api.feed import feed
from node.api.idempotency import Keyed, idempotent, key_of, reuse
from node.api.params import (
    ID_PATTERN,
    choice_query,
    int_query,
    message_id,
    reason_query,
)
from node.api.problems import (
    Handler,
    ProblemError,
    bad_request,
    not_found,
    problem_middleware,
    problem_response,
    too_large,
)
from node.certificate import safe_xml
from node.certificate.findings import Finding, Level
from node.certificate.json_paths import json_path
from node.certificate.jsonmodel import certificate_from_json
from node.certificate.lifecycle import WITHDRAWN, replacement_of, withdrawal_of
from node.certificate.model import Certificate
from node.certificate.validate import Report, Validator
from node.certificate.xml_build import to_xml_bytes
from node.certificate.xml_parse import Routing, certificate_from_tree
from node.clock import Clock
from node.directory import DirectoryError
from node.envelope.response import Decision, MalformedResponseError, Response
from node.errors import ConfigError
from node.store.store import (
    Answer,
    DuplicateError,
    Existing,
    KeyReuseError,
    NewMessage,
    Remember,
    Store,
    StoredMessage,
    queued,
)

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
CLIENTS = web.AppKey("clients", Clients)


def create_api_app(context: ApiContext) -> web.Application:
    """The API as the application a listener serves, every path under /api/v1.

    A root application of its own, never mounted in another: aiohttp takes the body
    limit (client_max_size) from the root application, whatever a sub-application says.
    """
    limit = context.max_body_bytes
    app = web.Application(client_max_size=limit, middlewares=[problem_middleware(limit), _auth])
    app[CONTEXT] = context
    app[CLIENTS] = Clients(context.api_token, context.clients_file)
    one = f"{PREFIX}/certificates/{{id:{ID_PATTERN}}}"
    app.router.add_get(f"{PREFIX}/openapi.yaml", _openapi)
    app.router.add_post(f"{PREFIX}/certificates", _idempotent(_submit))
    app.router.add_get(f"{PREFIX}/certificates", _list)
    app.router.add_get(one, _get)
    app.router.add_get(f"{one}/xml", _xml)
    app.router.add_get(f"{one}/pdf", _pdf)
    app.router.add_post(f"{one}/withdraw", _idempotent(_withdraw))
    app.router.add_post(f"{one}/replace", _idempotent(_replace))
    app.router.add_post(f"{one}/response", _idempotent(_respond))
    app.router.add_get(f"{PREFIX}/events", _events)
    return app


def _idempotent(handler: Handler) -> Handler:
    """A POST that creates a message takes an Idempotency-Key (node.api.idempotency)."""
    return idempotent(handler, lambda request: request.app[CONTEXT])


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path == f"{PREFIX}/openapi.yaml":
        return await handler(request)
    try:
        client = authorise(request.app[CLIENTS], request)
    except ConfigError as e:
        response = problem_response(503, "API clients unreadable", str(e))
        response.headers["Retry-After"] = "60"
        return response
    CALLER.set(client)
    return await handler(request)


async def _events(request: web.Request) -> web.Response:
    return await feed(request.app[CONTEXT].store, request)


async def _openapi(request: web.Request) -> web.Response:
    spec = (resources.files("node.api") / "openapi.yaml").read_bytes()
    return web.Response(body=spec, content_type="application/yaml")


async def _submit(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    body = await _body(request, context.max_body_bytes)
    if request.content_type in XML_TYPES:
        # Submitted XML goes out byte for byte as the national system wrote it (after
        # validation): what the importing NPPO receives is what the exporter signed off.
        report = context.validator.validate(body)
        _refuse_invalid(report, number=None, from_json=False)
        routing = report.routing
        assert routing is not None  # a valid document always reads (Report.certificate)
        return await _queue_checked(
            context, routing, body, report, {}, from_json=False, key=key_of(request)
        )
    cert = _certificate_from_body(body, request.content_type)
    return await _queue(
        context, cert, {}, from_json=request.content_type == JSON_TYPE, key=key_of(request)
    )


async def _withdraw(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
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
    return await _queue(context, cert, {"withdraws": sent.id}, from_json=False, key=key_of(request))


async def _replace(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    reason = reason_query(request)
    sent = await _sent(context, request)
    body = await _body(request, context.max_body_bytes)
    new = _certificate_from_body(body, request.content_type)
    cert = replacement_of(
        new, replaced_number=sent.certificate_number, reason=reason, at=_seconds(context)
    )
    return await _queue(
        context,
        cert,
        {"replaces": sent.id},
        from_json=request.content_type == JSON_TYPE,
        key=key_of(request),
    )


async def _respond(request: web.Request) -> web.Response:
    """Answer a received certificate: accepted, rejected (reason) or correction
    requested (text), sent to its exporter as a response message (docs/protocol.md)."""
    context = request.app[CONTEXT]
    certificate = await context.store.message(message_id(request))
    if certificate.direction != "in" or certificate.kind != "certificate":
        raise ProblemError(
            409, "Not received", f"certificate {certificate.id} was sent, not received"
        )
    body = await _body(request, context.max_body_bytes)
    if request.content_type != JSON_TYPE:
        raise ProblemError(415, "Unsupported media type", "send application/json")
    now = context.clock.now()
    response = _response_of(body, certificate, now)
    answered = await context.store.response_to(certificate.id)
    if answered is not None:
        raise ProblemError(
            409,
            "Already answered",
            f"certificate {certificate.id} was answered by response message {answered.id}",
        )
    payload = response.to_bytes()
    new = NewMessage(
        message_id=str(uuid.uuid4()),
        sender=context.country,
        recipient=certificate.sender,
        # The header repeats the certificate answered (docs/protocol.md, "The response
        # message"); the decision travels sealed.
        certificate_number=certificate.certificate_number,
        certificate_type=certificate.certificate_type,
        certificate_status=certificate.certificate_status,
        content_digest="sha256:" + hashlib.sha256(payload).hexdigest(),
        payload=payload,
        kind="response",
        answers=certificate.id,
    )
    await check_deliverable(context.door, new, now)
    _require_listed(context, certificate.sender)
    shown = views.response(response, state="queued")

    def accepted(pk: int) -> tuple[str, str | None]:
        return json.dumps({"certificate": certificate.id, "response": shown}), _location(
            certificate.id
        )

    key = key_of(request)
    remember = (
        None if key is None else Remember(key.client, key.key, key.fingerprint, 202, accepted)
    )
    try:
        result = await context.store.submit_response(
            new,
            now=now,
            responded=views.response_event(response),
            remember=remember,
            client=_caller(),
        )
    except KeyReuseError as e:
        raise reuse(e) from e
    if isinstance(result, Answer):
        return _answer(result)
    context.kick()
    text, location = accepted(result)
    return _answer(Answer(202, text, location, result))


def _response_of(body: bytes, certificate: StoredMessage, now: datetime) -> Response:
    """The response a request body asks for; 400 for JSON that is not the spec's, 422
    for a decision without the text it needs."""
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise bad_request("the body is not UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise bad_request("the body must be a JSON object")
    unknown = sorted(set(value) - {"decision", "reason", "text"})
    if unknown:
        raise bad_request(f"unknown member(s) {', '.join(map(repr, unknown))}")
    choices = ", ".join(d.value for d in Decision)
    try:
        decision = Decision(_text(value.get("decision")))
    except ValueError:
        raise bad_request(f"decision must be one of {choices}") from None
    needed = {Decision.REJECTED: "reason", Decision.CORRECTION_REQUESTED: "text"}.get(decision)
    for member in ("reason", "text"):
        if member != needed and member in value:
            raise ProblemError(
                422, "Invalid response", f"a {decision.value} response has no {member}"
            )
    text = None if needed is None else value.get(needed)
    if needed is not None and not isinstance(text, str):
        raise ProblemError(
            422, "Invalid response", f"a {decision.value} response needs a {needed} (a string)"
        )
    if not _is_uuid(certificate.message_id):
        # Plain XML from a hub carries no message id a response could name.
        raise ProblemError(
            422,
            "Cannot be answered",
            f"certificate {certificate.id} came without an envelope message id: a response"
            " to it would go through the hub, which does not carry responses yet",
        )
    try:
        return Response(
            certificate_number=certificate.certificate_number,
            certificate_message_id=certificate.message_id,
            decision=decision,
            responded_at=now.replace(microsecond=0),
            text=text,
        )
    except MalformedResponseError as e:
        raise ProblemError(422, "Invalid response", str(e)) from e


def _text(value: object) -> str:
    """A JSON string as itself; anything else as a string no enumeration holds."""
    return value if isinstance(value, str) else "\x00"


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def _require_listed(context: ApiContext, country: str) -> None:
    """A response goes direct only: 422 for a partner the directory does not list (that
    the door let through because a hub of our own carries plain XML to it)."""
    if context.door is None:
        return
    try:
        context.door.directory().nppo(country)
    except DirectoryError:
        raise ProblemError(
            422,
            "Cannot be answered",
            f"{country} is not in the directory: a response to it would go through the"
            " hub, which does not carry responses yet; nothing was stored",
        ) from None


async def _list(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    direction = choice_query(request, "direction", {"sent": "out", "received": "in"}, "sent")
    limit = int_query(request, "limit", 100, 1, 1000)
    offset = int_query(request, "offset", 0, 0, 10**9)
    found = await context.store.summaries(direction, limit=limit, offset=offset)  # type: ignore[arg-type]
    return web.json_response({"certificates": [views.summary(m) for m in found]})


async def _get(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    message = await context.store.message(message_id(request))
    events = await context.store.events(message.id)
    lifecycle = await context.store.lifecycle(message.id)
    answered = await context.store.response_to(message.id)
    return web.json_response(
        views.summary(message)
        | views.lifecycle(lifecycle)
        | {"response": None if answered is None else views.stored_response(answered)}
        | {"reason": views.failure_reason(message, events)}
        | {"events": [views.event(e) for e in events]}
    )


async def _xml(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    message = await _certificate(context, request)
    return web.Response(body=message.payload, content_type="application/xml")


async def _pdf(request: web.Request) -> web.Response:
    from node.render.pdf import render_pdf  # fonts are heavy: load on first use

    context = request.app[CONTEXT]
    message = await _certificate(context, request)
    cert = _stored_certificate(message)
    standing = views.standing(await context.store.lifecycle(message.id))
    # Rendering takes a second or more: keep the event loop (and the exchange) moving.
    pdf = await asyncio.get_running_loop().run_in_executor(None, render_pdf, cert, standing)
    return web.Response(body=pdf, content_type="application/pdf")


async def _body(request: web.Request, limit: int) -> bytes:
    """The request body, refused with 413 past `limit`: from the announced length,
    unread; without one, aiohttp stops reading at the application's client_max_size."""
    if (request.content_length or 0) > limit:
        raise too_large(limit)
    return await request.read()


async def _queue(
    context: ApiContext,
    cert: Certificate,
    event_detail: dict[str, Any],
    *,
    from_json: bool,
    key: Keyed | None,
) -> web.Response:
    """Build the XML of a model, validate it, then store and queue it."""
    xml = to_xml_bytes(cert)
    if len(xml) > context.max_body_bytes:
        raise ProblemError(
            413,
            "Too large",
            f"certificate {cert.number} is {len(xml)} bytes as XML, over the"
            f" {context.max_body_bytes}-byte limit",
        )
    report = context.validator.validate(xml)
    _refuse_invalid(report, number=cert.number, from_json=from_json)
    return await _queue_checked(
        context, Routing.of(cert), xml, report, event_detail, from_json=from_json, key=key
    )


def _refuse_invalid(report: Report, *, number: str | None, from_json: bool) -> None:
    if report.valid:
        return
    which = "the certificate" if number is None else f"certificate {number}"
    severe = [f.message for f in report.findings if f.level is Level.SEVERE]
    why = f" ({severe[0]})" if severe else ""
    raise ProblemError(
        422,
        "Invalid certificate",
        f"{which} is not valid{why}; nothing was stored",
        findings=_findings(report.findings, from_json=from_json),
    )


def _findings(findings: tuple[Finding, ...], *, from_json: bool) -> list[dict[str, Any]]:
    if from_json:
        return [views.json_finding(f, json_path(f.xpath)) for f in findings]
    return [views.xml_finding(f) for f in findings]


async def _queue_checked(
    context: ApiContext,
    routing: Routing,
    xml: bytes,
    report: Report,
    event_detail: dict[str, Any],
    *,
    from_json: bool,
    key: Keyed | None,
) -> web.Response:
    """Store a validated certificate and its outbox row (and its key) in one transaction,
    unless it repeats one already sent or could never be delivered."""
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
    await check_deliverable(context.door, new, now)
    findings = _findings(report.findings, from_json=from_json)

    def accepted(pk: int) -> tuple[str, str | None]:
        body = views.summary(queued(pk, new, now)) | {"findings": findings}
        return json.dumps(body), _location(pk)

    remember = (
        None if key is None else Remember(key.client, key.key, key.fingerprint, 202, accepted)
    )
    try:
        result = await context.store.submit_once(
            new, now=now, lifecycle=event_detail or None, remember=remember, client=_caller()
        )
    except KeyReuseError as e:
        raise reuse(e) from e
    except DuplicateError as e:
        raise ProblemError(409, "Duplicate certificate", str(e), existing=e.existing) from e
    if isinstance(result, Answer):
        return _answer(result)
    if isinstance(result, Existing):
        return await _existing(context, result.message, key, now)
    context.kick()
    body, location = accepted(result)
    return _answer(Answer(202, body, location, result))


async def _existing(context: ApiContext, pk: int, key: Keyed | None, now: datetime) -> web.Response:
    """200: the same certificate was submitted before; its message, not a new one."""
    message = await context.store.message(pk)

    def same(pk: int) -> tuple[str, str | None]:
        return json.dumps(views.summary(message) | {"findings": []}), _location(pk)

    if key is None:
        body, location = same(pk)
        return _answer(Answer(200, body, location, pk))
    try:
        kept = await context.store.remember(
            Remember(key.client, key.key, key.fingerprint, 200, same), message=pk, now=now
        )
    except KeyReuseError as e:
        raise reuse(e) from e
    return _answer(kept)


def _caller() -> str | None:
    """The name of the API client making this call (node.api.clients), for its events."""
    client = CALLER.get()
    return None if client is None else client.name


def _location(pk: int) -> str:
    return f"{PREFIX}/certificates/{pk}"


def _answer(answer: Answer) -> web.Response:
    response = web.Response(status=answer.status, text=answer.body, content_type=JSON_TYPE)
    if answer.location is not None:
        response.headers["Location"] = answer.location
    return response


async def _certificate(context: ApiContext, request: web.Request) -> StoredMessage:
    """The certificate message the path names; 404 for a response, which has no XML."""
    message = await context.store.message(message_id(request))
    if message.kind != "certificate":
        raise not_found(f"message {message.id} is a response to a certificate, not one")
    return message


async def _sent(context: ApiContext, request: web.Request) -> StoredMessage:
    message = await _certificate(context, request)
    if message.direction != "out":
        raise ProblemError(409, "Not ours", f"certificate {message.id} was received, not sent")
    return message


def _certificate_from_body(body: bytes, content_type: str) -> Certificate:
    if content_type == JSON_TYPE:
        return certificate_from_json(body)
    if content_type in XML_TYPES:
        return certificate_from_tree(safe_xml.parse(body))
    raise ProblemError(
        415, "Unsupported media type", "send application/xml (ePhyto) or application/json (model)"
    )


def _stored_certificate(message: StoredMessage) -> Certificate:
    return certificate_from_tree(safe_xml.parse(message.payload))


def _seconds(context: ApiContext) -> datetime:
    return context.clock.now().replace(microsecond=0)
