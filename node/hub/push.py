"""Push mode (shell): the hub posts what it holds to recipients that have an endpoint.

An NPPO whose directory entry lists a direct endpoint runs a node: the hub posts each
sealed envelope waiting for it to that endpoint, exactly as a sending node would (Part E
of docs/protocol.md, with the hub's own TLS certificate as the client certificate), and
settles the envelope on the node's signed receipt: Delivered, DeliveredWithWarnings, or
Failed with the receipt's findings. The receipt is verified with the recipient's keys
from the directory; a receipt that does not verify settles nothing.

A push that does not get through (the node is down, say) is tried again with backoff;
meanwhile the node may pull the envelope itself, and either way it is stored once (the
node deduplicates by message id) and acknowledged once (a repeat of the same outcome is
answered as before). A push the node refuses for the envelope itself (a 4xx answer other
than a request to slow down) is not retried with backoff: it is left for the node to
pull, and its pull fails it at the hub with the node's reason. An NPPO without an
endpoint pulls, as do envelopes whose content is plain XML: a node's endpoint takes
sealed envelopes only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final, Protocol

from node.clock import Clock
from node.directory import Directory, DirectoryError
from node.envelope.envelope import peek_header
from node.envelope.errors import EnvelopeError
from node.envelope.receipt import Outcome, verify_receipt_from
from node.hub.records import EnvelopeSettledError, PushItem
from node.hub.records import Outcome as HubOutcome
from node.hub.store import HubStore
from node.outbox.policy import Backoff
from node.transport.client import DeliveryError, PermanentDeliveryError

log = logging.getLogger(__name__)

# Plain content is pulled, not pushed: look at it again only rarely.
NOT_PUSHABLE_RETRY: Final = timedelta(days=1)
MAX_PUSHED_BYTES: Final = 12 * 1024 * 1024
_OUTCOMES: Final[dict[Outcome, HubOutcome]] = {
    Outcome.ACCEPTED: "Delivered",
    Outcome.ACCEPTED_WITH_WARNINGS: "DeliveredWithWarnings",
    Outcome.REJECTED: "Failed",
}
_UNSET: Final = object()


class Poster(Protocol):
    """What the pusher needs of a transport (node.transport.client.DeliveryClient)."""

    async def deliver(self, endpoint: str, envelope: bytes, *, pins: frozenset[str]) -> bytes: ...


class HubPusher:
    """`run_once` per tick, and after a delivery to a pushable recipient."""

    def __init__(
        self,
        store: HubStore,
        client: Poster,
        directory: Callable[[], Directory],
        clock: Clock,
        *,
        lease: timedelta = timedelta(minutes=2),
        batch: int = 64,
        backoff: Backoff = Backoff(cap=timedelta(minutes=10)),  # noqa: B008 - frozen
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._client = client
        self._directory = directory
        self._clock = clock
        self._lease = lease
        self._batch = batch
        self._backoff = backoff
        self._rng = rng or random.SystemRandom()
        self._endpoints: dict[str, object] = {}  # what the store was last told, per NPPO

    async def run_once(self) -> int:
        """Push what is due; returns how many envelopes were settled by a push."""
        try:
            directory = self._directory()
        except DirectoryError as e:
            log.warning("push: no usable directory, nothing pushed: %s", e)
            return 0
        await self._follow_endpoints(directory)
        items = await self._store.claim_push(self._clock.now(), self._lease, self._batch)
        settled = await asyncio.gather(*(self._push(directory, item) for item in items))
        return sum(settled)

    async def _follow_endpoints(self, directory: Directory) -> None:
        """Push to the endpoints the directory lists now, and to nobody else."""
        now = self._clock.now()
        for entry in directory.nppos:
            url = entry.endpoint if entry.status == "active" else None
            if self._endpoints.get(entry.country, _UNSET) != url:
                await self._store.set_push_endpoint(entry.country, url, now)
                self._endpoints[entry.country] = url

    async def _push(self, directory: Directory, item: PushItem) -> bool:
        header = item.envelope.header
        now = self._clock.now()
        try:
            sealed = peek_header(item.envelope.content, max_bytes=MAX_PUSHED_BYTES)
        except EnvelopeError:
            await self._later(item, now + NOT_PUSHABLE_RETRY, "plain content: pulled, not pushed")
            return False
        try:
            pins = directory.tls_pins(header.recipient, now)
            keys = tuple(
                directory.signing_key(header.recipient, k.key_id, now)
                for k in directory.active_nppo(header.recipient).keys
                if k.kind == "signing" and k.valid_at(now)
            )
            data = await self._client.deliver(item.url, item.envelope.content, pins=pins)
            receipt = verify_receipt_from(
                data,
                expected_message_id=sealed.message_id,
                expected_digest=sealed.content_digest,
                receiver=header.recipient,
                sender=sealed.from_country,
                receiver_keys=keys,
            )
        except PermanentDeliveryError as e:
            # The node refused the envelope itself (malformed, unlike its document, too
            # large): pushing it again gets the same answer. Left for the node to pull,
            # which fails it at the hub with its own reason; looked at again rarely.
            await self._later(item, now + NOT_PUSHABLE_RETRY, f"refused by the recipient: {e}")
            return False
        except (DirectoryError, DeliveryError, EnvelopeError) as e:
            when = self._backoff.next_attempt(item.attempts + 1, now, self._rng)
            await self._later(item, when, str(e))
            return False
        findings = "; ".join(receipt.findings)
        message = {
            Outcome.ACCEPTED: None,
            Outcome.ACCEPTED_WITH_WARNINGS: findings or "accepted with warnings",
            Outcome.REJECTED: findings or "rejected by the recipient",
        }[receipt.outcome]
        # The node may have pulled and acknowledged it meanwhile: settled either way.
        with contextlib.suppress(EnvelopeSettledError):
            await self._store.acknowledge(
                header.recipient,
                header.tracking_number,
                self._clock.now(),
                _OUTCOMES[receipt.outcome],
                message,
            )
        return True

    async def _later(self, item: PushItem, when: datetime, error: str) -> None:
        log.info("push: %s not pushed: %s", item.envelope.header.tracking_number, error)
        await self._store.push_failed(
            item.envelope.header.tracking_number, self._clock.now(), when, error
        )
