"""The API's response route: the importing country answers a received certificate
(accepted, rejected or correction requested), sent to its exporter (docs/protocol.md)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime

from aiohttp import web

from node.api import views
from node.api.context import (
    CONTEXT,
    JSON_TYPE,
    ApiContext,
    caller_name,
    json_answer,
    location_of,
    read_body,
)
from node.api.door import check_deliverable
from node.api.idempotency import key_of, reuse
from node.api.params import message_id
from node.api.problems import ProblemError, bad_request
from node.envelope.response import Decision, MalformedResponseError, Response
from node.store.store import Answer, KeyReuseError, NewMessage, Remember, StoredMessage


async def respond(request: web.Request) -> web.Response:
    """Answer a received certificate: accepted, rejected (reason) or correction
    requested (text), sent to its exporter as a response message (docs/protocol.md)."""
    context = request.app[CONTEXT]
    certificate = await context.store.message(message_id(request))
    _check_received(certificate)
    body = await read_body(request, context.max_body_bytes)
    if request.content_type != JSON_TYPE:
        raise ProblemError(415, "Unsupported media type", "send application/json")
    now = context.clock.now()
    response = _response_of(body, certificate, now)
    shown = views.response(response, state="queued")

    def accepted(pk: int) -> tuple[str, str | None]:
        return json.dumps({"certificate": certificate.id, "response": shown}), location_of(
            certificate.id
        )

    key = key_of(request)
    remember = (
        None if key is None else Remember(key.client, key.key, key.fingerprint, 202, accepted)
    )
    result = await _store_response(context, certificate, response, remember, caller_name())
    if isinstance(result, Answer):
        return json_answer(result)
    text, location = accepted(result)
    return json_answer(Answer(202, text, location, result))


async def answer_certificate(
    context: ApiContext, certificate: StoredMessage, decision: Decision, text: str | None,
    *, client: str,
) -> int:  # fmt: skip
    """Answer received certificate message `certificate` as the API's response route
    does, for a caller that is not an HTTP client of the API (the officer console): the
    response message's id. ProblemError as the API refuses it (409 not received or
    answered already, 422 a decision without the text it needs, the door's refusals);
    nothing is stored then."""
    _check_received(certificate)
    needed = {Decision.REJECTED: "reason", Decision.CORRECTION_REQUESTED: "text"}.get(decision)
    if needed is not None and not text:
        raise ProblemError(422, "Invalid response", f"a {decision.value} response needs a {needed}")
    response = _response(
        certificate, decision, None if needed is None else text, context.clock.now()
    )
    result = await _store_response(context, certificate, response, None, client)
    assert isinstance(result, int)  # no Idempotency-Key, so never a kept Answer
    return result


async def _store_response(
    context: ApiContext, certificate: StoredMessage, response: Response,
    remember: Remember | None, client: str | None,
) -> int | Answer:  # fmt: skip
    """Store and queue `response` to `certificate` unless it was answered already."""
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
    now = context.clock.now()
    await check_deliverable(context.door, new, now)
    try:
        result = await context.store.submit_response(
            new,
            now=now,
            responded=views.response_event(response),
            remember=remember,
            client=client,
        )
    except KeyReuseError as e:
        raise reuse(e) from e
    if not isinstance(result, Answer):
        context.kick()
    return result


def _check_received(certificate: StoredMessage) -> None:
    """409 unless `certificate` is a certificate this node received (what may be answered)."""
    if certificate.direction != "in" or certificate.kind != "certificate":
        raise ProblemError(
            409, "Not received", f"certificate {certificate.id} was sent, not received"
        )


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
    # Plain XML from a hub has no envelope message id, only `hub:<tracking number>`: the
    # response names it by the UUID its receipt named it by (node.inbox.puller); through
    # the hub it travels as an SPSAcknowledgement, which names the certificate's number.
    return _response(certificate, decision, text, now)


def _response(
    certificate: StoredMessage, decision: Decision, text: str | None, now: datetime
) -> Response:
    """The response message answering `certificate`; 422 for text it cannot carry."""
    answered_id = (
        certificate.message_id
        if _is_uuid(certificate.message_id)
        else str(uuid.uuid5(uuid.NAMESPACE_URL, certificate.message_id))
    )
    try:
        return Response(
            certificate_number=certificate.certificate_number,
            certificate_message_id=answered_id,
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
