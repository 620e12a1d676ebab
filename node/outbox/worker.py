"""The outbox worker (shell): claim due messages, seal, deliver, settle them in the store.

Thin around the pure parts: `policy` decides when to retry, `envelope` seals and verifies,
the directory says where a partner is and which keys to trust. Every state change is one
store call, one transaction; the worker keeps nothing that a restart would need.

Crash safety. The envelope is sealed again on every attempt, with the stored message id
and content digest: the receiver deduplicates by (sender, message id) and checks the
digest, so a redelivery, even with other HPKE randomness and another `created`, gets the
original receipt back. A crash between delivery and `delivered` therefore costs one
redelivery, never a lost or doubled message. Sealing anew also follows the partner's key
rotation, which stored envelope bytes could not.

Concurrency. Every claimed message is its own task, so a claim never waits for the one
before it to settle. Per destination, up to `parallel` are in flight; the messages on
one certificate go one after another in the order they were written, also across
claims. One slow partner never holds up the others. A destination that fails
transiently is left alone for the rest of the claim, as synapse does: its other
messages would fail the same way.

This module must not import aiohttp, SQLAlchemy or APScheduler itself (node/outbox is
held to the core's import rule, tests/unit/test_architecture.py): they come in through
the store, the client and a structural `Scheduler`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from node.certificate.versions import SCHEMA_VERSIONS
from node.clock import Clock
from node.directory import Directory, DirectoryError, UntrustedPeer
from node.directory.schemas import NoCommonSchemaVersion, common_schema_version
from node.envelope.errors import EnvelopeError
from node.envelope.receipt import Receipt, verify_receipt_from
from node.outbox.hub_route import HubRelay, HubRoute, signing_key_at
from node.outbox.policy import Backoff, Fallback
from node.outbox.sealing import seal_message
from node.store.store import OutboxItem, Store
from node.transport.client import PermanentDeliveryError, TransientDeliveryError

log = logging.getLogger(__name__)

ROUTE_DIRECT = "direct"
NO_DIRECT_ENDPOINT = "no-direct-endpoint"
SCHEMA_VERSION = "schema-version"
RESPONSE_HELD = "response-held"


class Deliverer(Protocol):
    """What the worker needs of a transport (node.transport.client.DeliveryClient)."""

    async def deliver(self, endpoint: str, envelope: bytes, *, pins: frozenset[str]) -> bytes:
        """The receipt bytes, or TransientDeliveryError / PermanentDeliveryError."""
        ...


class Scheduler(Protocol):
    """The part of APScheduler 3.x's AsyncIOScheduler the worker uses."""

    def add_job(self, func: Callable[..., Any], trigger: str, **kwargs: Any) -> Any: ...


class OutboxWorker:
    """Delivers the outbox: `run_once` per tick, `kick` after a submit."""

    def __init__(
        self,
        store: Store,
        client: Deliverer,
        directory: Callable[[], Directory],
        *,
        country: str,
        signing_key: Ed25519PrivateKey | Callable[[datetime], Ed25519PrivateKey],
        clock: Clock,
        backoff: Backoff = Backoff(),  # noqa: B008 - frozen, so one shared default is safe
        rng: random.Random | None = None,
        lease: timedelta = timedelta(minutes=5),
        batch: int = 256,
        parallel: int = 64,
        hub: HubRelay | None = None,
        hub_listed: Callable[[Directory], bool] = lambda _: True,
        fallback: Fallback = Fallback(),  # noqa: B008 - frozen, as above
        hub_recheck: timedelta = timedelta(seconds=30),
        schema_versions: Sequence[str] = SCHEMA_VERSIONS,
    ) -> None:
        """`directory` returns the current trusted directory or raises DirectoryError;
        without `hub`, every message goes direct (and waits for a partner without an
        endpoint)."""
        self._store = store
        self._fallback = fallback
        self._schema_versions = tuple(schema_versions)  # what this node writes
        # Whether a hub is there to fall back to now (the directory may list none): if
        # not, a partner that is down is retried directly for as long as it takes.
        self._hub_listed = hub_listed
        self._hub = (
            None
            if hub is None
            else HubRoute(
                store,
                hub,
                country=country,
                signing_key=signing_key,
                clock=clock,
                retry=self._retry,
                fail=lambda item, error: self._fail(item, error, route="hub"),
                recheck=hub_recheck,
            )
        )
        self._client = client
        self._directory = directory
        self._country = country
        # A key, or a function of the time (a node in a key rotation signs with the newest
        # key the directory lists as valid for it then).
        self._signing_key = signing_key
        self._clock = clock
        self._backoff = backoff
        self._rng = rng or random.SystemRandom()
        self._lease = lease
        self._batch = batch
        self._parallel = parallel
        self._in_flight: dict[str, asyncio.Semaphore] = {}  # per destination
        self._chains: dict[tuple[str, str], _Chain] = {}  # per (destination, certificate)
        self._claimed = 0  # claimed and not yet settled, across runs
        self._backlog = False  # the last claim was cut short by `batch`
        self._kicked: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self._again = False

    async def run_once(self) -> int:
        """Claim the due messages and try each once; returns how many were claimed.

        Raises only what the store raises (and bugs), after every claimed message is done.
        """
        started = await self._dispatch()
        results = await asyncio.gather(*started, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        if self._backlog:
            self.kick()  # more are due: the next tick is a whole interval away
        return len(started)

    def kick(self) -> asyncio.Task[None]:
        """Claim again soon, without waiting for the tick or for deliveries in flight.

        The task ends once no kick is waiting and every delivery it started is done.
        """
        self._again = True
        self._kick.set()
        if self._kicked is None or self._kicked.done():
            self._kicked = asyncio.get_running_loop().create_task(self._run_while_kicked())
        return self._kicked

    def schedule(self, scheduler: Scheduler, interval: timedelta) -> None:
        """Add the periodic run to a started AsyncIOScheduler (APScheduler 3.x)."""
        scheduler.add_job(
            self.run_once,
            "interval",
            seconds=interval.total_seconds(),
            id="outbox",
            replace_existing=True,
            max_instances=1,  # a run still delivering is not doubled by the next tick
            coalesce=True,
        )

    async def _run_while_kicked(self) -> None:
        """Claim whenever kicked, while earlier claims are still being delivered.

        Waiting for a whole batch to settle before claiming again held every new
        submission behind the slowest delivery of the batch before it.
        """
        delivering: set[asyncio.Task[None]] = set()
        while True:
            if self._again:
                self._again = False
                self._kick.clear()
                try:
                    delivering.update(await self._dispatch())
                except Exception:
                    # Nobody awaits a kick in production: say it here; the tick runs again.
                    log.exception("outbox: claiming after a submit failed")
                continue
            if not delivering:
                return
            kicked = asyncio.ensure_future(self._kick.wait())
            done, _ = await asyncio.wait(delivering | {kicked}, return_when=asyncio.FIRST_COMPLETED)
            kicked.cancel()
            for task in done - {kicked}:
                delivering.discard(task)
                if not task.cancelled() and task.exception() is not None:
                    log.error("outbox: a delivery failed", exc_info=task.exception())
            if self._backlog and len(done) > (kicked in done):
                self._again = True  # room again for what the last claim left behind

    async def _dispatch(self) -> list[asyncio.Task[None]]:
        """Claim what is due, up to `batch` in flight, and start delivering it."""
        try:
            directory = self._directory()
        except DirectoryError as e:
            # A node-wide problem, not a message's: claim nothing, count no attempt.
            log.warning("outbox: no usable directory, nothing sent: %s", e)
            return []
        room = self._batch - self._claimed
        if room <= 0:
            self._backlog = True
            return []
        items = await self._store.claim_due(now=self._clock.now(), lease=self._lease, limit=room)
        self._backlog = len(items) == room
        self._claimed += len(items)
        failures: dict[str, list[str]] = {}
        loop = asyncio.get_running_loop()
        # In id order, so each certificate's chain is joined in the order it was written.
        return [
            loop.create_task(self._send(directory, item, failures.setdefault(item.destination, [])))
            for item in items
        ]

    async def _send(self, directory: Directory, item: OutboxItem, failure: list[str]) -> None:
        """Deliver one claimed message, after the earlier messages on its certificate.

        Messages on the same certificate go one after another, in order (a withdrawal
        must not overtake the certificate it withdraws); different certificates go in
        parallel, up to `parallel` in flight per destination, because one at a time
        would make a partner's round trip the ceiling of the whole exchange. Once a
        destination fails transiently, the rest of that claim is not tried (as synapse
        does): it would fail the same way.
        """
        destination = item.destination
        key = (destination, item.message.certificate_number)
        chain = self._chains.setdefault(key, _Chain())
        chain.users += 1
        try:
            async with chain.lock:
                if self._clock.now() >= item.claimed_until:
                    return  # the lease ran out: another worker may hold it now
                if failure:
                    await self._retry(item, f"not tried, {destination} just failed: {failure[0]}")
                    return
                in_flight = self._in_flight.setdefault(
                    destination, asyncio.Semaphore(self._parallel)
                )
                async with in_flight:
                    error = await self._attempt(directory, item)
                if error is not None and not failure:
                    failure.append(error)
        finally:
            self._claimed -= 1
            chain.users -= 1
            if chain.users == 0:
                del self._chains[key]

    async def _attempt(self, directory: Directory, item: OutboxItem) -> str | None:
        """Try one message; returns the error when the destination failed transiently."""
        message = item.message
        now = self._clock.now()
        if item.hub_tracking is not None and self._hub is not None:
            await self._hub.track(item)
            return None
        if message.kind == "response":
            return await self._attempt_response(directory, item)
        try:
            partner = _partner(directory, message.recipient, now)
        except _NotListed as e:
            if self._hub is None or not self._hub_listed(directory):
                await self._retry(item, f"cannot send to {e}: not in the directory and no hub")
                return None
            # An NPPO outside the directory runs no node (GeNS, its own system): it gets
            # the certificate as plain ePhyto XML through the hub.
            await self._hub.relay(
                item, recipient_key=None, reason=f"{e} is not in the directory: plain XML"
            )
            return None
        except PermanentDeliveryError as e:
            await self._fail(item, str(e), route=ROUTE_DIRECT)
            return None
        except _Held as e:
            await self._hold(item, str(e))
            return None
        if not await self._schema_version(directory, item, now):
            return None

        async def wait(reason: str) -> None:
            await self._store.add_event(
                message.id, now=now, kind=NO_DIRECT_ENDPOINT, detail={"to": message.recipient}
            )
            await self._retry(item, f"{message.recipient}: {reason}")

        return await self._by_route(directory, item, partner, now, wait)

    async def _by_route(
        self,
        directory: Directory,
        item: OutboxItem,
        partner: _Partner,
        now: datetime,
        wait: Callable[[str], Awaitable[None]],
    ) -> str | None:
        """Direct, or through the hub as the fallback policy says; `wait` (why) when
        neither route is open now. The error when the direct route failed transiently."""
        choice = self._fallback.choose(
            by_setting=self._fallback.through_hub(item.message.recipient),
            has_endpoint=partner.endpoint is not None,
            has_hub=self._hub is not None and self._hub_listed(directory),
            failed_attempts=item.attempts,
            failing_for=_failing_for(item, now),
        )
        if choice.route == "hub":
            assert self._hub is not None
            await self._hub.relay(item, recipient_key=partner.encryption_key, reason=choice.reason)
            return None
        if choice.route == "wait" or partner.endpoint is None:
            await wait(choice.reason)
            return None
        return await self._direct(item, partner, partner.endpoint)

    async def _attempt_response(self, directory: Directory, item: OutboxItem) -> str | None:
        """Try one response (it is no SPSCertificate, so no schema version is chosen).

        To a node partner as to a certificate: direct, or sealed through the hub once the
        fallback policy says so or when the partner has no endpoint. To an NPPO outside
        the directory, through the hub as the SPSAcknowledgement it can read
        (`DeliverCountryResponseEnvelope`). Held, with an event saying why, when no
        route exists yet (a new directory or a hub in node.toml may give one).
        """
        message = item.message
        now = self._clock.now()
        has_hub = self._hub is not None and self._hub_listed(directory)
        try:
            partner = _partner(directory, message.recipient, now)
        except _NotListed as e:
            if self._hub is None or not has_hub:
                await self._hold_response(item, f"{e} is not in the directory and no hub is set")
                return None
            await self._hub.relay_answer(
                item, reason=f"{e} is not in the directory: SPSAcknowledgement through the hub"
            )
            return None
        except PermanentDeliveryError as e:
            await self._fail(item, str(e), route=ROUTE_DIRECT)
            return None
        except _Held as e:
            await self._hold(item, str(e))
            return None

        async def wait(reason: str) -> None:
            await self._hold_response(item, f"{message.recipient}: {reason}")

        return await self._by_route(directory, item, partner, now, wait)

    async def _hold_response(self, item: OutboxItem, reason: str) -> None:
        """A response with no route yet: say so, and look again after the longest
        backoff (a new directory may give the partner an endpoint, or list a hub)."""
        message = item.message
        await self._store.add_event(
            message.id,
            now=self._clock.now(),
            kind=RESPONSE_HELD,
            detail={"to": message.recipient, "reason": reason},
        )
        await self._hold(item, reason)

    async def _direct(self, item: OutboxItem, partner: _Partner, endpoint: str) -> str | None:
        """Deliver on the direct route and settle; the error when it failed transiently."""
        message = item.message
        try:
            receipt, data = await self._deliver(item, partner, endpoint)
        except PermanentDeliveryError as e:
            await self._fail(item, str(e), route=ROUTE_DIRECT)
            return None
        except TransientDeliveryError as e:
            await self._retry(item, str(e))
            return str(e)
        woken = await self._store.delivered(
            message.id,
            now=self._clock.now(),
            route=ROUTE_DIRECT,
            outcome=str(receipt.outcome),
            receipt=data,
        )
        if woken:
            self.kick()  # the partner is back: its backed-off queue goes now, not later
        return None

    async def _deliver(
        self, item: OutboxItem, partner: _Partner, endpoint: str
    ) -> tuple[Receipt, bytes]:
        """Seal, post, verify. Raises a DeliveryError saying what to do next."""
        message = item.message
        now = self._clock.now()
        try:
            envelope = seal_message(
                message,
                country=self._country,
                signing_key=signing_key_at(self._signing_key, now),
                recipient_key=partner.encryption_key,
                now=now,
            )
        except EnvelopeError as e:
            # The stored message cannot make a valid envelope: no retry will change that.
            raise PermanentDeliveryError(f"cannot seal message {message.message_id}: {e}") from e
        data = await self._client.deliver(endpoint, envelope, pins=partner.pins)
        return _verified(data, item, partner, self._country), data

    async def _schema_version(self, directory: Directory, item: OutboxItem, now: datetime) -> bool:
        """Choose the SPSCertificate version for the partner; False when there is none and
        the message was failed for good (only an upgrade or a network transition changes
        that, so a retry cannot). The choice goes into the message's events once, at its
        first attempt: this node writes one version today (node/certificate/versions.py).
        """
        message = item.message
        try:
            version = common_schema_version(
                self._schema_versions,
                directory.nppo(message.recipient),
                directory.schemas,
                now,
                own_name=self._country,
            )
        except NoCommonSchemaVersion as e:
            await self._fail(item, str(e), route=ROUTE_DIRECT)
            return False
        if item.attempts == 0:
            await self._store.add_event(
                message.id,
                now=now,
                kind=SCHEMA_VERSION,
                detail={"to": message.recipient, "version": version},
            )
        return True

    async def _fail(self, item: OutboxItem, error: str, *, route: str) -> None:
        """Stop trying a message for good, and say so in the log: the national system may
        not be watching the API's events, an operator watches the log."""
        message = item.message
        await self._store.fail(message.id, now=self._clock.now(), error=error)
        log.warning(
            "outbox: certificate %s (message %s) to %s failed for good by the %s route: %s",
            message.certificate_number, message.message_id, message.recipient, route, error,
        )  # fmt: skip

    async def _retry(self, item: OutboxItem, error: str) -> None:
        now = self._clock.now()
        when = self._backoff.next_attempt(item.attempts + 1, now, self._rng)
        await self._store.reschedule(item.message.id, now=now, next_attempt_at=when, error=error)

    async def _hold(self, item: OutboxItem, error: str) -> None:
        """The directory holds the partner back: wait, counting no attempt.

        Nothing was tried, so no route failed: a hold must not send the message through
        the hub once the partner is back (the hub would refuse a suspended partner too).
        Only a new directory ends a hold, and a suspension is no blip, so the message is
        looked at again after the longest backoff rather than at every tick.
        """
        now = self._clock.now()
        await self._store.reschedule(
            item.message.id,
            now=now,
            next_attempt_at=now + self._backoff.cap,
            error=error,
            count_attempt=False,
        )


def _failing_for(item: OutboxItem, now: datetime) -> timedelta:
    """How long delivery of `item` has been failing: nothing before its first counted
    failure, however long it waited (queued, or held while its partner was suspended)."""
    return timedelta(0) if item.failing_since is None else now - item.failing_since


class _Chain:
    """The messages on one certificate to one destination, in flight or waiting."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()  # FIFO: the order in which the messages joined
        self.users = 0


@dataclass(frozen=True, slots=True)
class _Partner:
    endpoint: str | None  # None: reached through the hub only
    pins: frozenset[str]
    encryption_key: X25519PublicKey
    signing_keys: tuple[Ed25519PublicKey, ...]


class _NotListed(Exception):
    """The partner is not in the directory at all (no node: the hub's plain route)."""


class _Held(Exception):
    """The directory holds the partner back now (suspended, or no key valid): no route."""


def _partner(directory: Directory, country: str, now: datetime) -> _Partner:
    """Where and how to reach `country` now; raises _NotListed, _Held or
    PermanentDeliveryError (revoked)."""
    try:
        directory.nppo(country)
    except DirectoryError:
        raise _NotListed(country) from None
    try:
        entry = directory.active_nppo(country)
        return _Partner(
            endpoint=entry.endpoint,
            pins=directory.tls_pins(country, now),
            encryption_key=directory.encryption_key(country, now).x25519(),
            signing_keys=tuple(
                directory.signing_key(country, k.key_id, now)
                for k in entry.keys
                if k.kind == "signing" and k.valid_at(now)
            ),
        )
    except UntrustedPeer as e:
        if _revoked(directory, country):
            raise PermanentDeliveryError(f"{country} is revoked in the directory: {e}") from e
        # Suspended or between keys: the next directory may settle it.
        raise _Held(f"cannot send to {country} now: {e}") from e


def _revoked(directory: Directory, country: str) -> bool:
    try:
        return directory.nppo(country).status == "revoked"
    except DirectoryError:
        return False


def _verified(data: bytes, item: OutboxItem, partner: _Partner, country: str) -> Receipt:
    """The receipt, checked against every signing key the directory lists for the partner.

    A receipt that does not verify is no proof of delivery, so the message is retried
    (TransientDeliveryError), never settled and never failed: the partner may well have
    stored it (a retry gets its original receipt, which verifies once our directory
    shows the partner's new key), and retrying cannot double it.
    """
    message = item.message
    try:
        return verify_receipt_from(
            data,
            expected_message_id=message.message_id,
            expected_digest=message.content_digest,
            receiver=message.recipient,
            sender=country,
            receiver_keys=partner.signing_keys,
        )
    except EnvelopeError as e:
        raise TransientDeliveryError(f"bad receipt from {message.recipient}: {e}") from e
