"""The receiving side of the exchange over mutual TLS (docs/protocol.md, Part E).

`POST /ephyto/v1/envelopes`: who the TLS client is (pin -> directory), that the envelope
is from it, open the envelope (Part D), judge the ePhyto (Part A), store it once and
answer with the signed receipt. Every refusal raises, and `problem_middleware` answers
it; a refusal stores nothing. That includes a header that says other than its document
(`require_bound`): the node lists and acts on a certificate by its header.

A rejected ePhyto is still stored, with outcome `rejected`: the NPPO keeps a record of
what a partner sent and why it was refused, and a repeated delivery of the same message
gets the same rejected receipt back instead of being judged again.

A response (header `kind` `response`, docs/protocol.md Part D, "The response message")
is the importing NPPO's answer to a certificate this node sent: it is read, held to the
certificate it answers (`receive_response`), stored once beside it with a `responded`
event on it, and answered with a receipt like a certificate.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime

from aiohttp import web
from cryptography import x509

from node.certificate import safe_xml
from node.certificate.findings import Level
from node.certificate.lifecycle import WITHDRAWN, supersession_of
from node.certificate.validate import Report
from node.certificate.xml_parse import certificate_from_tree
from node.directory import Directory
from node.envelope._codec import shown
from node.envelope.binding import Claim, DocumentFields, check_binding
from node.envelope.envelope import OpenedEnvelope, open_envelope, peek_header
from node.envelope.errors import TooLargeError
from node.envelope.header import RESPONSE
from node.envelope.receipt import MAX_FINDING_CHARS, MAX_FINDINGS, Outcome, Receipt, make_receipt
from node.envelope.response import Response, UnansweredError
from node.errors import InputError
from node.runtime import NodeRuntime, ValidationThread
from node.store.store import NewMessage, Supersedes
from node.web.problems import UnsupportedMediaTypeError, problem_middleware
from node.web.tls import peer_certificate, require_sender, tls_caller

ENVELOPES_PATH = "/ephyto/v1/envelopes"
HEALTH_PATH = "/ephyto/v1/health"
ENVELOPE_MEDIA_TYPE = "application/ephyto-envelope+json"
RECEIPT_MEDIA_TYPE = "application/ephyto-receipt+json"
XML_MEDIA_TYPE = "application/xml"

RUNTIME = web.AppKey("runtime", NodeRuntime)
_VALIDATION = web.AppKey("validation", ValidationThread)
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def create_exchange_app(
    runtime: NodeRuntime, validation: ValidationThread | None = None
) -> web.Application:
    """The exchange endpoint; serve it with `node.web.tls.server_ssl_context`.

    `validation` is the node's validation thread, shared with the hub puller; without
    one the app runs its own for its lifetime.
    """
    app = web.Application(
        client_max_size=runtime.max_envelope_bytes, middlewares=[problem_middleware]
    )
    app[RUNTIME] = runtime
    if validation is None:
        app.cleanup_ctx.append(_own_validation_thread)
    else:
        app[_VALIDATION] = validation
    app.router.add_post(ENVELOPES_PATH, post_envelope)
    app.router.add_get(HEALTH_PATH, get_health)
    return app


async def post_envelope(request: web.Request) -> web.Response:
    """Receive one envelope; 200 with the signed receipt, or a problem+json refusal."""
    runtime = request.app[RUNTIME]
    now = runtime.clock.now()
    directory = runtime.directory()
    # Who is calling comes first: an unknown client learns nothing and sends nothing.
    certificate = _client_certificate(request)
    # The hub pushes what it relays: envelopes from others, whose own signatures (checked
    # by open_sealed, as for any envelope) say who sent them.
    sender = tls_caller(directory, certificate, now)
    data = await _read_envelope(request, runtime.max_envelope_bytes)
    if sender is not None:
        require_sender(sender, peek_header(data, max_bytes=runtime.max_envelope_bytes).from_country)
    opened = open_sealed(runtime, directory, data, now)
    if opened.header.kind == RESPONSE:
        receipt = await receive_response(runtime, opened, now)
        return web.Response(body=receipt, content_type=RECEIPT_MEDIA_TYPE)
    outcome, findings = await _judge_payload(request.app, opened)
    receipt = await store_and_answer(runtime, opened, outcome, findings, now)
    return web.Response(body=receipt, content_type=RECEIPT_MEDIA_TYPE)


async def get_health(request: web.Request) -> web.Response:
    """Liveness, for operators and partners' probes: no pin is checked here."""
    return web.json_response({"country": request.app[RUNTIME].country, "status": "ok"})


def open_sealed(
    runtime: NodeRuntime, directory: Directory, data: bytes, now: datetime
) -> OpenedEnvelope:
    """`open_envelope` with our keys and the sender's key from `directory` at `now`.

    During a key rotation the node holds two encryption keys: the (unverified) header
    names the one the envelope is sealed to, which open_envelope then checks."""
    named = None
    if runtime.rotating:
        # Only then: reading the header again costs as much as verifying the signature.
        named = peek_header(data, max_bytes=runtime.max_envelope_bytes).recipient_key_id
    private_key, private_key_id = runtime.decryption_key(named)
    return open_envelope(
        data,
        max_bytes=runtime.max_envelope_bytes,
        recipient_country=runtime.country,
        recipient_private_key=private_key,
        recipient_key_id=private_key_id,
        resolve_sender_key=lambda country, key: directory.signing_key(country, key, now),
    )


async def store_and_answer(
    runtime: NodeRuntime,
    opened: OpenedEnvelope,
    outcome: Outcome,
    findings: tuple[str, ...],
    now: datetime,
    *,
    route: str = "direct",
) -> bytes:
    """Store an opened envelope's message once and return its receipt (the original one
    for a repeat). Raises ReplayError when the message id was received before with other
    content. `route`: how it came, "direct" or "hub" (the puller), kept with it."""
    return await store_once(runtime, received_message(opened), outcome, findings, now, route=route)


def received_message(
    opened: OpenedEnvelope, *, kind: str = "certificate", answers: int | None = None
) -> NewMessage:
    """The message to store for an opened envelope: what its signed header says."""
    header = opened.header
    return NewMessage(
        message_id=header.message_id,
        sender=header.from_country,
        recipient=header.to_country,
        certificate_number=header.certificate_number,
        certificate_type=header.certificate_type,
        certificate_status=header.certificate_status,
        content_digest=header.content_digest,
        payload=opened.payload,
        kind=kind,
        answers=answers,
    )


async def store_once(
    runtime: NodeRuntime,
    new: NewMessage,
    outcome: Outcome,
    findings: tuple[str, ...],
    now: datetime,
    *,
    receipt_id: str | None = None,
    route: str = "direct",
) -> bytes:
    """Store an inbound message once, with the receipt that answers it; that receipt, or
    the original one for a repeat. `receipt_id` names the message in the receipt when its
    stored id is not the UUID a receipt needs (plain XML from a hub). `route`: how the
    message came ("direct", or "hub" from the puller), kept with it for people to see."""
    receipt = make_receipt(
        Receipt(
            message_id=receipt_id or new.message_id,
            content_digest=new.content_digest,
            from_country=runtime.country,
            to_country=new.sender,
            received=now.replace(microsecond=0),
            outcome=outcome,
            findings=findings,
        ),
        receiver_signing_key=runtime.current_signing_key(now),
    )
    received = await runtime.store.receive(
        new,
        now=now,
        make_receipt=lambda: (str(outcome), receipt),
        supersedes=None if outcome is Outcome.REJECTED else supersedes(new),
        route=route,
    )
    return received.receipt


async def receive_response(
    runtime: NodeRuntime, opened: OpenedEnvelope, now: datetime, *, route: str = "direct"
) -> bytes:
    """Store an opened response once, linked to the certificate it answers, and return
    its receipt. Raises MalformedResponseError (400) for a document that is not one, and
    DocumentMismatchError (422) unless it answers a certificate this node sent to its
    sender, under the number, type and status its header repeats; both store nothing."""
    header = opened.header
    response = Response.from_bytes(opened.payload)
    answered = await runtime.store.sent_certificate(
        message_id=response.certificate_message_id, recipient=header.from_country
    )
    if answered is None:
        raise UnansweredError(
            f"response {header.message_id} answers message {response.certificate_message_id},"
            f" which {runtime.country} did not send to {header.from_country}"
        )
    said = (
        (response.certificate_number, answered.certificate_number),
        (header.certificate_number, answered.certificate_number),
        (header.certificate_type, answered.certificate_type),
        (header.certificate_status, answered.certificate_status),
    )
    if any(given != stored for given, stored in said):
        raise UnansweredError(
            f"response {header.message_id} names certificate"
            f" {shown(response.certificate_number)} (header: {shown(header.certificate_number)},"
            f" {header.certificate_type}, status {header.certificate_status}), but message"
            f" {response.certificate_message_id} is {shown(answered.certificate_number)}"
            f" ({answered.certificate_type}, status {answered.certificate_status})"
        )
    new = received_message(opened, kind=RESPONSE, answers=answered.id)
    return await store_response(runtime, new, response, now, route=route)


async def store_response(
    runtime: NodeRuntime,
    new: NewMessage,
    response: Response,
    now: datetime,
    *,
    receipt_id: str | None = None,
    route: str = "direct",
) -> bytes:
    """Store a received response once (`new`, its certificate found and checked by the
    caller), with a `responded` event on that certificate; its receipt, or the first one
    for a repeat. `receipt_id` and `route` as for store_once."""
    receipt = make_receipt(
        Receipt(
            message_id=receipt_id or new.message_id,
            content_digest=new.content_digest,
            from_country=runtime.country,
            to_country=new.sender,
            received=now.replace(microsecond=0),
            outcome=Outcome.ACCEPTED,
            findings=(),
        ),
        receiver_signing_key=runtime.current_signing_key(now),
    )
    detail: dict[str, str] = {"decision": response.decision.value}
    if response.text is not None:
        detail["reason" if response.decision == "rejected" else "text"] = response.text
    received = await runtime.store.receive(
        new,
        now=now,
        make_receipt=lambda: (str(Outcome.ACCEPTED), receipt),
        responded=detail,
        route=route,
    )
    return received.receipt


def supersedes(new: NewMessage) -> Supersedes | None:
    """What an accepted inbound certificate withdraws or replaces, read from its XML."""
    # Most messages are neither: skip reading the document again for them.
    if new.certificate_status != WITHDRAWN and b"ADRPN" not in new.payload:
        return None
    try:
        said = supersession_of(certificate_from_tree(safe_xml.parse(new.payload)))
    except InputError:
        return None  # judged valid, so it reads; if not, there is nothing to link
    if said is None:
        return None
    return Supersedes(said.kind, said.certificate_number, said.reason, said.at)


def require_bound(claim: Claim, report: Report) -> None:
    """Raise DocumentMismatchError unless the document says what `claim` says of it.

    Checked on whatever document can be read into its number, type, status and
    exporting country, valid or not: an invalid one that matches is then stored as
    rejected. One that cannot be read that far has nothing to compare with; it is judged
    (rejected) and stored as before.
    """
    routing = report.routing
    if routing is not None:
        check_binding(claim, DocumentFields.of(routing))


def judge(report: Report) -> tuple[Outcome, tuple[str, ...]]:
    """The receipt's outcome and findings for an ePhyto's validation report."""
    levels = {f.level for f in report.findings}
    if not report.valid:
        outcome = Outcome.REJECTED
    elif Level.WARNING in levels:
        outcome = Outcome.ACCEPTED_WITH_WARNINGS
    else:
        outcome = Outcome.ACCEPTED
    # A rejection needs a reason even if the validator gave none (an unreadable root).
    texts = [str(f) for f in report.findings] or (
        ["SEVERE Schema: the document is not an ePhyto"] if outcome is Outcome.REJECTED else []
    )
    return outcome, receipt_findings(texts)


def receipt_findings(texts: list[str]) -> tuple[str, ...]:
    """Findings as a receipt carries them: one line each, bounded in length and number."""
    lines = [_one_line(t) for t in texts]
    if len(lines) > MAX_FINDINGS:
        rest = len(lines) - (MAX_FINDINGS - 1)
        lines = [*lines[: MAX_FINDINGS - 1], f"... and {rest} more findings"]
    return tuple(lines)


def _one_line(text: str) -> str:
    line = _UNPRINTABLE.sub(" ", text).strip() or "(no message)"
    return line if len(line) <= MAX_FINDING_CHARS else line[: MAX_FINDING_CHARS - 3] + "..."


async def _judge_payload(
    app: web.Application, opened: OpenedEnvelope
) -> tuple[Outcome, tuple[str, ...]]:
    media_type = opened.header.media_type
    if media_type != XML_MEDIA_TYPE:
        # Authentic but not an ePhyto: a receipt tells the sender, a 4xx would look like
        # a transport problem worth retrying elsewhere.
        return Outcome.REJECTED, (f"SEVERE Mapping: media type {media_type} is not supported",)
    report = await app[_VALIDATION].validate(opened.payload)
    require_bound(Claim.of(opened.header), report)
    return judge(report)


async def _read_envelope(request: web.Request, limit: int) -> bytes:
    if request.content_type != ENVELOPE_MEDIA_TYPE:
        raise UnsupportedMediaTypeError(
            f"the body must be {ENVELOPE_MEDIA_TYPE}, not {request.content_type or 'untyped'}"
        )
    # Refused from the announced length, unread; a chunked body is cut off by aiohttp at
    # client_max_size (the same limit), which problem_middleware answers with 413 too.
    if (request.content_length or 0) > limit:
        raise TooLargeError(
            f"envelope is {request.content_length} bytes, more than the {limit} accepted"
        )
    return await request.read()


def _client_certificate(request: web.Request) -> x509.Certificate:
    transport = request.transport
    return peer_certificate(None if transport is None else transport.get_extra_info("ssl_object"))


async def _own_validation_thread(app: web.Application) -> AsyncIterator[None]:
    validation = ValidationThread(app[RUNTIME].validator)
    app[_VALIDATION] = validation
    yield
    validation.close()
