"""The API's routes that send a certificate: submit, withdraw (status 40) and replace.

Each builds or takes the XML, validates it, and stores it with its outbox row (and its
Idempotency-Key) in one transaction; a refused submission stores nothing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from aiohttp import web

from node.api import views
from node.api.context import (
    CONTEXT,
    JSON_TYPE,
    XML_TYPES,
    ApiContext,
    caller_name,
    certificate_message,
    json_answer,
    location_of,
    read_body,
    stored_certificate,
)
from node.api.door import check_deliverable
from node.api.idempotency import Keyed, key_of, reuse
from node.api.params import reason_query
from node.api.problems import ProblemError
from node.certificate import safe_xml
from node.certificate.findings import Finding, Level
from node.certificate.json_paths import json_path
from node.certificate.jsonmodel import certificate_from_json
from node.certificate.lifecycle import WITHDRAWN, replacement_of, withdrawal_of
from node.certificate.model import Certificate
from node.certificate.validate import Report
from node.certificate.xml_build import to_xml_bytes
from node.certificate.xml_parse import Routing, certificate_from_tree
from node.store.store import (
    Answer,
    DuplicateError,
    Existing,
    KeyReuseError,
    NewMessage,
    Remember,
    StoredMessage,
    queued,
)


async def submit(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    body = await read_body(request, context.max_body_bytes)
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


async def withdraw(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    sent = await _sent(context, request)
    cert = await withdrawal_for(context, sent)
    return await _queue(context, cert, {"withdraws": sent.id}, from_json=False, key=key_of(request))


async def replace(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    reason = reason_query(request)
    sent = await _sent(context, request)
    body = await read_body(request, context.max_body_bytes)
    new = _certificate_from_body(body, request.content_type)
    cert = replacement_for(context, sent, new, reason)
    return await _queue(
        context,
        cert,
        {"replaces": sent.id, "reason": reason},
        from_json=request.content_type == JSON_TYPE,
        key=key_of(request),
    )


async def withdrawal_for(context: ApiContext, sent: StoredMessage) -> Certificate:
    """The withdrawal (status 40) of certificate message `sent`; 409 if it was withdrawn
    already (a withdrawal that has not failed)."""
    history = await context.store.history("out", sent.certificate_number)
    done = [m for m in history if m.certificate_status == WITHDRAWN and m.state != "failed"]
    if done:
        raise ProblemError(
            409,
            "Already withdrawn",
            f"certificate {sent.certificate_number} was withdrawn by message {done[0].id}",
        )
    return withdrawal_of(stored_certificate(sent))


def replacement_for(
    context: ApiContext, sent: StoredMessage, new: Certificate, reason: str
) -> Certificate:
    """`new` as the replacement of certificate message `sent`, saying `reason`."""
    return replacement_of(
        new, replaced_number=sent.certificate_number, reason=reason, at=_seconds(context)
    )


async def send_model(
    context: ApiContext, cert: Certificate, event_detail: dict[str, Any], *, client: str
) -> int:
    """Validate, store and queue `cert` as the API's submit does, for a caller that is not
    an HTTP client of the API (the officer console, node.console): the message's id, or
    the id of the same certificate stored before. ProblemError as the API refuses it
    (413, 422 invalid or not ours, 409 a different certificate under the same number,
    and the door's refusals); nothing is stored then."""
    xml, _ = _checked_xml(context, cert, from_json=True)
    new = _new_message(context, Routing.of(cert), xml)
    now = context.clock.now()
    await check_deliverable(context.door, new, now)
    try:
        result = await context.store.submit_once(
            new, now=now, lifecycle=event_detail or None, client=client
        )
    except DuplicateError as e:
        raise ProblemError(409, "Duplicate certificate", str(e), existing=e.existing) from e
    if isinstance(result, Existing):
        return result.message
    assert isinstance(result, int)  # no Idempotency-Key, so never a kept Answer
    context.kick()
    return result


async def _queue(
    context: ApiContext,
    cert: Certificate,
    event_detail: dict[str, Any],
    *,
    from_json: bool,
    key: Keyed | None,
) -> web.Response:
    """Build the XML of a model, validate it, then store and queue it."""
    xml, report = _checked_xml(context, cert, from_json=from_json)
    return await _queue_checked(
        context, Routing.of(cert), xml, report, event_detail, from_json=from_json, key=key
    )


def _checked_xml(
    context: ApiContext, cert: Certificate, *, from_json: bool
) -> tuple[bytes, Report]:
    """The XML of a model and its validation report; 413 past the size limit, 422 invalid."""
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
    return xml, report


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
    now = context.clock.now()  # full precision: the event history measures latency
    new = _new_message(context, routing, xml)
    await check_deliverable(context.door, new, now)
    findings = _findings(report.findings, from_json=from_json)

    def accepted(pk: int) -> tuple[str, str | None]:
        body = views.summary(queued(pk, new, now)) | {"findings": findings}
        return json.dumps(body), location_of(pk)

    remember = (
        None if key is None else Remember(key.client, key.key, key.fingerprint, 202, accepted)
    )
    try:
        result = await context.store.submit_once(
            new, now=now, lifecycle=event_detail or None, remember=remember, client=caller_name()
        )
    except KeyReuseError as e:
        raise reuse(e) from e
    except DuplicateError as e:
        raise ProblemError(409, "Duplicate certificate", str(e), existing=e.existing) from e
    if isinstance(result, Answer):
        return json_answer(result)
    if isinstance(result, Existing):
        return await _existing(context, result.message, key, now)
    context.kick()
    body, location = accepted(result)
    return json_answer(Answer(202, body, location, result))


def _new_message(context: ApiContext, routing: Routing, xml: bytes) -> NewMessage:
    """The outbound message of a validated certificate; 422 unless this node exports it."""
    exporter = routing.export_country
    if exporter != context.country:
        raise ProblemError(
            422,
            "Not our certificate",
            f"the exporting country is {exporter}; this node sends for {context.country}",
        )
    return NewMessage(
        message_id=str(uuid.uuid4()),
        sender=context.country,
        recipient=routing.import_country,
        certificate_number=routing.number,
        certificate_type=routing.type_code,
        certificate_status=routing.status_code,
        content_digest="sha256:" + hashlib.sha256(xml).hexdigest(),
        payload=xml,
    )


async def _existing(context: ApiContext, pk: int, key: Keyed | None, now: datetime) -> web.Response:
    """200: the same certificate was submitted before; its message, not a new one."""
    message = await context.store.message(pk)

    def same(pk: int) -> tuple[str, str | None]:
        return json.dumps(views.summary(message) | {"findings": []}), location_of(pk)

    if key is None:
        body, location = same(pk)
        return json_answer(Answer(200, body, location, pk))
    try:
        kept = await context.store.remember(
            Remember(key.client, key.key, key.fingerprint, 200, same), message=pk, now=now
        )
    except KeyReuseError as e:
        raise reuse(e) from e
    return json_answer(kept)


async def _sent(context: ApiContext, request: web.Request) -> StoredMessage:
    message = await certificate_message(context, request)
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


def _seconds(context: ApiContext) -> datetime:
    return context.clock.now().replace(microsecond=0)
