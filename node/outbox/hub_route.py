"""The hub route of the outbox: hand a message to the hub, then follow it there.

Content through the hub: the sealed envelope when the partner is a node (the directory
lists its encryption key), so the hub cannot read it and the partner deduplicates it
with the direct route by message id; the plain ePhyto XML otherwise, so an NPPO on
GeNS or its own system can read it. The hub's tracking number is stored with the
message, and from then on the message is tracked, and handed over again only when the
hub says it knows no envelope by that number (`EnvelopeNotExists`): a hub in trouble
(a Server fault, no answer) is asked again later. The hub itself ignores a repeat of
the same content, so a crash between the hub's answer and our write costs nothing
either.

This module must not import aiohttp or SQLAlchemy (the core's import rule).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from node.clock import Clock
from node.envelope.acknowledgement import Acknowledgement, acknowledgement_text
from node.envelope.errors import EnvelopeError
from node.envelope.response import MalformedResponseError, Response
from node.ippc import CountryResponseEnvelope, Envelope, EnvelopeHeader, TrackingState, XmlTree
from node.outbox.sealing import seal_message
from node.store.store import OutboxItem, Store
from node.transport.hub_client import HubError, HubRefusal

log = logging.getLogger(__name__)

ROUTE_HUB = "hub"
_DELIVERED = {
    TrackingState.DELIVERED.value,
    TrackingState.DELIVERED_WITH_WARNINGS.value,
    TrackingState.DELIVERED_NOT_READABLE.value,
}


class HubRelay(Protocol):
    """What the route needs of a hub (node.transport.hub_client.HubClient)."""

    async def deliver(self, envelope: Envelope) -> str: ...

    async def deliver_country_response(self, envelope: CountryResponseEnvelope) -> str: ...

    async def tracking(self, tracking_number: str) -> EnvelopeHeader: ...


class HubRoute:
    """Relays and tracks outbound messages through one hub."""

    def __init__(
        self,
        store: Store,
        hub: HubRelay,
        *,
        country: str,
        signing_key: Ed25519PrivateKey | Callable[[datetime], Ed25519PrivateKey],
        clock: Clock,
        retry: Callable[[OutboxItem, str], Awaitable[None]],
        recheck: timedelta = timedelta(seconds=30),
        fail: Callable[[OutboxItem, str], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        # A failure for good, said loudly by the worker (node.outbox.worker._fail).
        self._fail = fail or self._fail_quietly
        self._hub = hub
        self._country = country
        # A key, or a function of the time (a node in a key rotation signs with the newest
        # key the directory lists as valid for it then).
        self._signing_key = signing_key
        self._clock = clock
        self._retry = retry
        self._recheck = recheck

    async def relay(
        self, item: OutboxItem, *, recipient_key: X25519PublicKey | None, reason: str
    ) -> None:
        """DeliverEnvelope; sealed to `recipient_key`, or plain XML without one."""
        message = item.message
        now = self._clock.now()
        if recipient_key is None:
            content = message.payload.decode("utf-8")
        else:
            try:
                sealed = seal_message(
                    message,
                    country=self._country,
                    signing_key=signing_key_at(self._signing_key, now),
                    recipient_key=recipient_key,
                    now=now,
                )
            except EnvelopeError as e:
                await self._fail(item, f"cannot seal message {message.message_id}: {e}")
                return
            content = sealed.decode("ascii")  # canonical JSON of base64url fields
        envelope = Envelope.of(
            EnvelopeHeader(
                from_=self._country,
                to=message.recipient,
                certificate_type=int(message.certificate_type),
                certificate_status=int(message.certificate_status),
                nppo_certificate_number=message.certificate_number,
            ),
            content,
        )
        plain = recipient_key is None
        await self._hand_over(item, self._hub.deliver(envelope), plain=plain, reason=reason)

    async def relay_answer(self, item: OutboxItem, *, reason: str) -> None:
        """DeliverCountryResponseEnvelope: a response, as the SPSAcknowledgement an NPPO
        outside the directory reads (node.envelope.acknowledgement)."""
        message = item.message
        try:
            response = Response.from_bytes(message.payload)
        except MalformedResponseError as e:  # stored only once it parsed: a damaged store
            await self._fail(item, f"cannot read response {message.message_id}: {e}")
            return
        document = acknowledgement_text(
            Acknowledgement(
                certificate_number=response.certificate_number,
                certificate_type=message.certificate_type,
                decision=response.decision,
                issued_at=response.responded_at,
                text=response.text,
            )
        )
        envelope = CountryResponseEnvelope(
            from_=self._country,
            to=message.recipient,
            certificate_type=int(message.certificate_type),
            certificate_status=int(message.certificate_status),
            nppo_certificate_number=message.certificate_number,
            sps_acknowledgement=XmlTree(document),
        )
        await self._hand_over(
            item, self._hub.deliver_country_response(envelope), plain=True, reason=reason
        )

    async def _hand_over(
        self, item: OutboxItem, delivery: Awaitable[str], *, plain: bool, reason: str
    ) -> None:
        """Await the hub's tracking number for `item` and record it, or retry or fail."""
        message = item.message
        try:
            tracking = await delivery
        except HubRefusal as e:
            if e.refuses_the_request and plain:
                # A partner our directory does not list, refused by the hub as well: no
                # route is left, so say so now rather than retry for ever. A node partner
                # (sealed content) is retried instead: a hub whose directory is older
                # than ours does not know a country just onboarded yet.
                await self._fail(
                    item,
                    f"{message.recipient} is not in the directory and the hub refuses"
                    f" it ({e}): no route is left, nothing was delivered",
                )
                return
            await self._retry(item, f"through the hub: {e}")
            return
        except HubError as e:
            await self._retry(item, f"through the hub: {e}")
            return
        await self._store.relayed(
            message.id,
            now=self._clock.now(),
            tracking=tracking,
            next_check_at=self._clock.now() + self._recheck,
            reason=reason,
        )

    async def _fail_quietly(self, item: OutboxItem, error: str) -> None:
        await self._store.fail(item.message.id, now=self._clock.now(), error=error)

    async def track(self, item: OutboxItem) -> None:
        """GetEnvelopeTrackingInfo: settle the message once the hub has settled it."""
        assert item.hub_tracking is not None
        message = item.message
        now = self._clock.now()
        try:
            header = await self._hub.tracking(item.hub_tracking)
        except HubError as e:
            if isinstance(e, HubRefusal) and e.envelope_not_exists:
                await self._hand_over_again(item, str(e))
                return
            # No answer, a Server fault (the hub's own trouble) or any other refusal says
            # nothing about the message, which may be on its way or delivered: ask again
            # later. Handing it over again would put a second envelope at the hub.
            log.info("outbox: cannot track %s at the hub now: %s", item.hub_tracking, e)
            await self._store.recheck(message.id, next_check_at=now + self._recheck)
            return
        state = header.hub_tracking_info or ""
        if state == TrackingState.ENVELOPE_NOT_EXISTS.value:
            # The IPPC Hub's contract may say so in the answer rather than as a fault.
            await self._hand_over_again(
                item, f"the hub reports {state} for tracking number {item.hub_tracking}"
            )
        elif state in _DELIVERED:
            await self._store.delivered(
                message.id, now=now, route=ROUTE_HUB, outcome=state, receipt=None
            )
        elif state == TrackingState.FAILED_DELIVERY.value:
            why = header.hub_delivery_error_message or "no reason given"
            await self._fail(item, f"the hub reports FailedDelivery: {why}")
        else:
            await self._store.recheck(message.id, next_check_at=now + self._recheck)

    async def _hand_over_again(self, item: OutboxItem, error: str) -> None:
        """The hub does not know the message (any more): hand it over again rather than
        lose it; the partner stores a repeat once (same message id)."""
        now = self._clock.now()
        await self._store.reschedule(
            item.message.id, now=now, next_attempt_at=now, error=error, forget_hub_tracking=True
        )


def signing_key_at(
    key: Ed25519PrivateKey | Callable[[datetime], Ed25519PrivateKey], now: datetime
) -> Ed25519PrivateKey:
    """The key to sign with at `now`: `key` itself, or what the function returns for `now`."""
    return key if isinstance(key, Ed25519PrivateKey) else key(now)
