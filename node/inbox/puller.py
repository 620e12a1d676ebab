"""The hub puller (shell): fetch what the hub holds for us, store it once, acknowledge it.

Each envelope goes: pull, open, judge, store, then acknowledge, in that order, so a
crash anywhere leaves the envelope at the hub and it is pulled again; storing is
idempotent (by the sender's message id, or by the hub's tracking number for plain
XML), so the second pull stores nothing twice and acknowledges.

Content arrives in one of three forms: our sealed envelope (canonical JSON, from
another node: verified and decrypted exactly as on the direct route, so a message that
arrives both ways is stored once), plain ePhyto XML (from GeNS or an NPPO's own
system), or plain XML in Base64 (as some systems send it). Plain XML is a certificate,
or an SPSAcknowledgement: an importer's answer to one of ours
(`DeliverCountryResponseEnvelope`).

The acknowledgement says what we made of it: Acknowledge (accepted), Advanced with the
warnings, or Failed with the reason (rejected, unreadable, or not authentic). Content
whose header (our sealed envelope's, or the hub's for plain XML) says other than the
document is failed like content that is not authentic, and nothing of it is stored.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from node.directory import Directory, DirectoryError
from node.envelope.acknowledgement import (
    MalformedAcknowledgementError,
    is_acknowledgement,
    parse_acknowledgement,
)
from node.envelope.binding import Claim, DocumentMismatchError
from node.envelope.errors import EnvelopeError
from node.envelope.header import RESPONSE
from node.envelope.receipt import MAX_FINDING_CHARS, Outcome
from node.envelope.response import MalformedResponseError, Response, UnansweredError
from node.ippc import Envelope, EnvelopeHeader
from node.runtime import NodeRuntime, ValidationThread
from node.store.store import NewMessage, ReplayError
from node.transport.hub_client import HubError
from node.web.exchange import (
    judge,
    open_sealed,
    receive_response,
    require_bound,
    store_and_answer,
    store_once,
    store_response,
)

log = logging.getLogger(__name__)


class HubInbox(Protocol):
    """What the puller needs of a hub (node.transport.hub_client.HubClient)."""

    async def import_headers(self) -> tuple[EnvelopeHeader, ...]: ...

    async def pull(self, tracking_number: str) -> Envelope: ...

    async def acknowledge(self, tracking_number: str) -> None: ...

    async def acknowledge_with_warnings(self, tracking_number: str, warnings: str) -> None: ...

    async def acknowledge_failed(self, tracking_number: str, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to tell the hub about one envelope."""

    outcome: Outcome | None  # None: not stored (not authentic, unreadable)
    detail: str


class HubPuller:
    """`run_once` per tick (and when the hub pushes a notice)."""

    def __init__(self, runtime: NodeRuntime, hub: HubInbox, validation: ValidationThread) -> None:
        """`validation` is the node's one validation thread (the exchange's too)."""
        self._runtime = runtime
        self._hub = hub
        self._validation = validation
        self._running = asyncio.Lock()

    async def run_once(self) -> int:
        """Pull and acknowledge everything waiting; returns how many were acknowledged.

        Raises only HubError from listing (the hub is down: the next tick tries again).
        """
        async with self._running:  # a tick and a push notice do not pull the same twice
            headers = await self._hub.import_headers()
            done = 0
            for header in headers:
                tracking = header.hub_delivery_number
                if not tracking:
                    continue
                try:
                    await self._take(tracking)
                except HubError as e:
                    log.warning("hub inbox: %s stays at the hub for now: %s", tracking, e)
                    continue
                except Exception:
                    # A bug on our side with one envelope must not hold up the others
                    # behind it on every tick; it stays at the hub and is tried again.
                    log.exception("hub inbox: %s stays at the hub: it could not be taken", tracking)
                    continue
                done += 1
            return done

    async def _take(self, tracking: str) -> None:
        envelope = await self._hub.pull(tracking)
        verdict = await self._store(envelope, tracking)
        if verdict.outcome is Outcome.ACCEPTED:
            await self._hub.acknowledge(tracking)
        elif verdict.outcome is Outcome.ACCEPTED_WITH_WARNINGS:
            await self._hub.acknowledge_with_warnings(tracking, verdict.detail)
        else:
            await self._hub.acknowledge_failed(tracking, verdict.detail)
        log.info("hub inbox: %s from %s: %s", tracking, envelope.from_, verdict.detail)

    async def _store(self, envelope: Envelope, tracking: str) -> Verdict:
        runtime = self._runtime
        now = runtime.clock.now()
        content = envelope.content or ""
        try:
            directory = runtime.directory()
        except DirectoryError as e:
            raise _Later(f"no usable directory: {e}") from e
        if content.lstrip().startswith("{"):
            return await self._sealed(envelope, content.encode("utf-8"), directory, now)
        xml = _plain_xml(content)
        if xml is None:
            return Verdict(None, "Content is neither a sealed envelope nor ePhyto XML")
        if is_acknowledgement(xml):  # DeliverCountryResponseEnvelope: an importer's answer
            return await self._answer(envelope, xml, tracking, now)
        return await self._plain(envelope, xml, tracking, now)

    async def _answer(
        self, envelope: Envelope, xml: bytes, tracking: str, now: datetime
    ) -> Verdict:
        """An SPSAcknowledgement from an NPPO outside the directory: recorded as its
        response to the certificate we sent it under that number, as a sealed response
        would be (node.envelope.acknowledgement says how the two correspond)."""
        runtime = self._runtime
        try:
            answer = parse_acknowledgement(xml)
        except MalformedAcknowledgementError as e:
            return _refused(e)
        answered = await runtime.store.sent_certificate_numbered(
            certificate_number=answer.certificate_number, recipient=envelope.from_
        )
        if answered is None or answer.certificate_number != envelope.nppo_certificate_number:
            return _refused(
                UnansweredError(
                    f"the answer names certificate {answer.certificate_number[:128]!r} (the hub"
                    f" says {envelope.nppo_certificate_number[:128]!r}), which"
                    f" {runtime.country} did not send to {envelope.from_}"
                )
            )
        if answer.certificate_type not in ("", answered.certificate_type):
            return _refused(
                UnansweredError(
                    f"the answer says certificate {answer.certificate_number} is of type"
                    f" {answer.certificate_type[:8]!r}; it is {answered.certificate_type}"
                )
            )
        try:
            response = Response(
                certificate_number=answered.certificate_number,
                certificate_message_id=answered.message_id,
                decision=answer.decision,
                responded_at=answer.issued_at.replace(microsecond=0),
                text=answer.text,
            )
        except MalformedResponseError as e:
            return _refused(e)
        message_id = f"hub:{tracking}"
        new = NewMessage(
            message_id=message_id,
            sender=envelope.from_,
            recipient=runtime.country,
            certificate_number=answered.certificate_number,
            certificate_type=answered.certificate_type,
            certificate_status=answered.certificate_status,
            # The digest of what arrived; the payload is the answer in our own words, so
            # the API reads every response, sealed or not, the same way.
            content_digest="sha256:" + hashlib.sha256(xml).hexdigest(),
            payload=response.to_bytes(),
            kind=RESPONSE,
            answers=answered.id,
        )
        try:
            await store_response(
                runtime,
                new,
                response,
                now,
                receipt_id=str(uuid.uuid5(uuid.NAMESPACE_URL, message_id)),
                route="hub",
            )
        except ReplayError as e:
            return Verdict(None, str(e))
        return Verdict(Outcome.ACCEPTED, str(Outcome.ACCEPTED))

    async def _sealed(
        self, envelope: Envelope, data: bytes, directory: Directory, now: datetime
    ) -> Verdict:
        runtime = self._runtime
        try:
            opened = open_sealed(runtime, directory, data, now)
        except (EnvelopeError, DirectoryError) as e:
            return _refused(e)
        if opened.header.from_country != envelope.from_:
            return Verdict(
                None,
                f"the sealed envelope is from {opened.header.from_country}, "
                f"the hub says {envelope.from_}",
            )
        if opened.header.kind == RESPONSE:  # an importer's answer, as on the direct route
            try:
                await receive_response(runtime, opened, now, route="hub")
            except (EnvelopeError, ReplayError) as e:
                return _refused(e)
            return Verdict(Outcome.ACCEPTED, str(Outcome.ACCEPTED))
        report = await self._validation.validate(opened.payload)
        try:
            require_bound(Claim.of(opened.header), report)
        except DocumentMismatchError as e:
            return _refused(e)
        outcome, findings = judge(report)
        try:
            await store_and_answer(runtime, opened, outcome, findings, now, route="hub")
        except ReplayError as e:
            return Verdict(None, str(e))
        return Verdict(outcome, _detail(outcome, findings))

    async def _plain(self, envelope: Envelope, xml: bytes, tracking: str, now: datetime) -> Verdict:
        runtime = self._runtime
        report = await self._validation.validate(xml)
        # Plain XML has no signed header: the hub's (From authenticated by the hub) is
        # what the sender said of it, and is held to the document the same way.
        claim = Claim(
            sender=envelope.from_,
            certificate_number=envelope.nppo_certificate_number,
            certificate_type=str(envelope.certificate_type),
            certificate_status=str(envelope.certificate_status),
        )
        try:
            require_bound(claim, report)
        except DocumentMismatchError as e:
            return _refused(e)
        outcome, findings = judge(report)
        routing = report.routing
        digest = "sha256:" + hashlib.sha256(xml).hexdigest()
        message_id = f"hub:{tracking}"
        await store_once(
            runtime,
            NewMessage(
                # The hub's tracking number is this message's only stable id: a second
                # pull of the same envelope is the same message.
                message_id=message_id,
                sender=envelope.from_,
                recipient=runtime.country,
                certificate_number=routing.number if routing else envelope.nppo_certificate_number,
                certificate_type=str(envelope.certificate_type),
                certificate_status=str(envelope.certificate_status),
                content_digest=digest,
                payload=xml,
            ),
            outcome,
            findings,
            now,
            # A receipt names its message by a UUID, which `hub:<tracking>` is not: one
            # derived from the stored id, reproducibly.
            receipt_id=str(uuid.uuid5(uuid.NAMESPACE_URL, message_id)),
            route="hub",
        )
        return Verdict(outcome, _detail(outcome, findings))


class _Later(HubError):
    """Not now (our side cannot judge it yet): leave the envelope at the hub."""


def _plain_xml(content: str) -> bytes | None:
    if content.lstrip().startswith("<"):
        return content.encode("utf-8")  # as sent, whitespace and all
    try:
        decoded = base64.b64decode(content.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if decoded.lstrip().startswith(b"<") else None


def _refused(error: Exception) -> Verdict:
    """Not stored, and failed at the hub with the reason: the sender's message fails."""
    return Verdict(None, f"not accepted: {error}"[:MAX_FINDING_CHARS])


def _detail(outcome: Outcome, findings: tuple[str, ...]) -> str:
    if not findings:
        return str(outcome)
    return f"{outcome}: " + "; ".join(findings)[: MAX_FINDING_CHARS * 4]
