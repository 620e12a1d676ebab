"""`ephyto bench hub`: certificates relayed sender -> hub -> receiver (pull), per second.

The hub is a real `ephyto hub serve` process with its durable store (SQLite, then
PostgreSQL), started by the demo network with a registry and two NPPOs, NL and KE,
initialised and enrolled but not served: this process plays both of them with the real
`HubClient`, their own TLS keys and the hub's pins from the directory. NL delivers N
distinct sealed envelopes (DeliverEnvelope); KE lists its inbox (GetImportEnvelopeHeaders),
pulls each (PULLSingleImportEnvelope) and acknowledges it (AcknowledgeEnvelopeReceipt),
both sides at once, each with a fixed number of calls in flight.

The baseline, measured against the same hub process just before: bare GetProfile round
trips over the same mutual TLS (TLS, HTTP, SOAP parse and render, the caller's lookup in
the directory, and no store), so the relay figure reads as a share of what the transport
and the SOAP layer alone allow on this machine at this moment.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp

from node.bench.exchange import certificates, cpu_seconds, peak_rss_mb
from node.bench.hub_process import hub_pid
from node.clock import SystemClock
from node.demo.network import DemoError, Network
from node.directory import Directory
from node.directory.refresh import DirectoryRefresher, load
from node.envelope.envelope import EnvelopeHeader as SealedHeader
from node.envelope.envelope import seal
from node.identity.config import NodeConfig, load_config
from node.identity.keys import load_encryption_key, load_signing_key
from node.ippc import (
    Envelope,
    EnvelopeHeader,
    GetProfile,
    GetProfileResponse,
)
from node.service import read_anchor
from node.transport.hub_client import HubClient, HubError, HubUnavailable, node_hub_client

SENDER = "NL"
RECEIVER = "KE"
WARM_UP = 20
# The receiver gives up on the rest when nothing has been acknowledged for this long
# after the sender is done: what is left then is lost.
DRAIN_TIMEOUT = 60.0
# How long the receiver waits before listing again when the last listing had nothing new.
IDLE_POLL = 0.005


@dataclass
class RelayResult:
    """What one relay run measured; `seconds` is first deliver sent to last ack done."""

    sent: int = 0
    delivered: int = 0
    acknowledged: int = 0
    errors: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return self.acknowledged / self.seconds if self.seconds > 0 else 0.0

    @property
    def lost(self) -> int:
        return self.delivered - self.acknowledged

    @property
    def failed(self) -> bool:
        """Not every envelope went through: refused by the hub, or lost on the way."""
        return self.delivered != self.sent or self.lost != 0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(int(q * len(ordered)), len(ordered) - 1)]

    def count(self, operation: str) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1


@dataclass(frozen=True, slots=True)
class Figures:
    """One backend's figures."""

    backend: str
    relay: RelayResult
    baseline_per_second: float
    hub_cpu_ms: float  # per relayed envelope
    hub_cpu_ms_baseline: float  # per bare round trip
    generator_cpu_ms: float  # this process, per relayed envelope
    hub_peak_rss_mb: float

    def lines(self) -> list[str]:
        r, name = self.relay, f"{self.backend}:"
        calls = sum(r.calls.values()) / r.acknowledged if r.acknowledged else float("nan")
        share = r.per_second / self.baseline_per_second if self.baseline_per_second else 0.0
        lines = [
            f"{name:<12}relayed: {r.acknowledged} of {r.sent} sent ({r.delivered} delivered, "
            f"{r.lost} lost) in {r.seconds:.2f} s: {r.per_second:.0f} relayed/s",
            f"{name:<12}deliver-to-ack latency: p50 {r.percentile(0.5):.1f} ms, "
            f"p99 {r.percentile(0.99):.1f} ms",
            f"{name:<12}hub CPU: {self.hub_cpu_ms:.2f} ms per relayed envelope "
            f"({self.hub_cpu_ms_baseline:.2f} ms per bare round trip); "
            f"load generator {self.generator_cpu_ms:.2f} ms per envelope",
            f"{name:<12}hub peak RSS: {self.hub_peak_rss_mb:.0f} MB",
            f"{name:<12}baseline: {self.baseline_per_second:.0f} bare GetProfile round trips/s "
            f"over the same mutual TLS; the relay is {share:.0%} of it, at {calls:.1f} SOAP "
            f"calls per envelope ({_calls(r.calls)})",
        ]
        if r.errors:
            # Listing, pulling and acknowledging are retried, so an error there costs time,
            # not an envelope; a refused delivery or a lost envelope fails the bench.
            lines.append(f"{name:<12}errors: {len(r.errors)}, the first: {r.errors[0]}")
        return lines


def sealed_contents(net: Network, count: int, prefix: str) -> list[tuple[str, str]]:
    """`count` distinct NL->KE sealed envelopes as DeliverEnvelope Content: (number, text).

    Sealed as a node seals for the hub route (node.outbox.hub_route): the canonical JSON
    of the sealed envelope, so the hub relays bytes it cannot read.
    """
    sender, receiver = _config(net, SENDER), _config(net, RECEIVER)
    signing = load_signing_key(
        sender.path(sender.keys.signing).read_bytes(), str(sender.keys.signing)
    )
    recipient = load_encryption_key(
        receiver.path(receiver.keys.encryption).read_bytes(), str(receiver.keys.encryption)
    ).public_key()
    created = datetime.now(UTC).replace(microsecond=0)
    contents = []
    for i, xml in enumerate(certificates(count, prefix, None)):
        number = f"{prefix}-{i:06d}"
        header = SealedHeader(
            message_id=str(uuid.uuid4()),
            from_country=SENDER,
            to_country=RECEIVER,
            certificate_type="851",
            certificate_status="70",
            certificate_number=number,
            created=created,
        )
        sealed = seal(
            header=header,
            payload=xml,
            sender_signing_key=signing,
            recipient_public_key=recipient,
        )
        contents.append((number, sealed.decode("ascii")))
    return contents


async def relay(
    sender: HubClient, receiver: HubClient, contents: list[tuple[str, str]], concurrency: int
) -> RelayResult:
    """Deliver every content as NL while KE lists, pulls and acknowledges, at once."""
    result = RelayResult()
    sent_at: dict[str, float] = {}
    sender_done = asyncio.Event()
    progress = time.monotonic()
    first_sent: float | None = None
    last_acked = 0.0

    async def deliver(number: str, content: str, limiter: asyncio.Semaphore) -> None:
        nonlocal first_sent
        envelope = Envelope.of(
            EnvelopeHeader(
                from_=SENDER,
                to=RECEIVER,
                certificate_type=851,
                certificate_status=70,
                nppo_certificate_number=number,
            ),
            content,
        )
        async with limiter:
            now = time.monotonic()
            first_sent = now if first_sent is None else first_sent
            sent_at[number] = now
            result.sent += 1
            result.count("deliver")
            try:
                await sender.deliver(envelope)
            except HubError as e:
                result.errors.append(f"deliver {number}: {e}")
                return
            result.delivered += 1

    async def send_all() -> None:
        limiter = asyncio.Semaphore(concurrency)
        try:
            await asyncio.gather(*(deliver(n, c, limiter) for n, c in contents))
        finally:
            sender_done.set()

    queue: asyncio.Queue[EnvelopeHeader] = asyncio.Queue()
    seen: set[str] = set()

    async def take() -> None:
        nonlocal progress, last_acked
        while True:
            header = await queue.get()
            tracking = header.hub_delivery_number
            assert tracking is not None
            try:
                result.count("pull")
                envelope = await receiver.pull(tracking)
                if not envelope.content:
                    raise HubUnavailable(f"{tracking} came without content")
                result.count("acknowledge")
                await receiver.acknowledge(tracking)
            except HubError as e:
                result.errors.append(f"take {tracking}: {e}")
                seen.discard(tracking)  # listed again, tried again
            else:
                progress = last_acked = time.monotonic()
                result.acknowledged += 1
                started = sent_at.get(header.nppo_certificate_number)
                if started is not None:
                    result.latencies_ms.append((last_acked - started) * 1000)
            finally:
                queue.task_done()

    async def list_inbox() -> None:
        while True:
            if sender_done.is_set():
                if result.acknowledged >= result.delivered:
                    return
                if time.monotonic() - progress > DRAIN_TIMEOUT:
                    result.errors.append(
                        f"{result.delivered - result.acknowledged} delivered envelope(s) not "
                        f"acknowledged after {DRAIN_TIMEOUT:.0f} s without progress"
                    )
                    return
            if queue.qsize() >= concurrency:  # enough to take: list when it runs low
                await asyncio.sleep(IDLE_POLL)
                continue
            result.count("list")
            try:
                headers = await receiver.import_headers()
            except HubError as e:
                result.errors.append(f"list: {e}")
                await asyncio.sleep(0.1)
                continue
            new = [
                h for h in headers if h.hub_delivery_number and h.hub_delivery_number not in seen
            ]
            for header in new:
                assert header.hub_delivery_number is not None
                seen.add(header.hub_delivery_number)
                queue.put_nowait(header)
            if not new:
                await asyncio.sleep(IDLE_POLL)

    takers = [asyncio.create_task(take()) for _ in range(concurrency)]
    try:
        await asyncio.gather(send_all(), list_inbox())
        await queue.join()
    finally:
        for task in takers:
            task.cancel()
        await asyncio.gather(*takers, return_exceptions=True)
    if first_sent is not None and result.acknowledged:
        result.seconds = last_acked - first_sent
    return result


async def round_trips(client: HubClient, requests: int, concurrency: int) -> float:
    """Bare GetProfile round trips per second, `concurrency` in flight."""
    limiter = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with limiter:
            await client.call(GetProfile(), GetProfileResponse)

    await asyncio.gather(*(one() for _ in range(WARM_UP)))
    start = time.monotonic()
    await asyncio.gather(*(one() for _ in range(requests)))
    return requests / (time.monotonic() - start)


def measure(net: Network, backend: str, count: int, concurrency: int) -> Figures:
    """The baseline, then the relay of `count` envelopes, against the running hub."""
    pid = hub_pid(net)
    warm = sealed_contents(net, WARM_UP, f"{SENDER}-WARM-{secrets.token_hex(3)}")
    contents = sealed_contents(net, count, f"{SENDER}-HUB-{secrets.token_hex(3)}")

    async def run() -> Figures:
        directories = {c: await _directory(net, c) for c in (SENDER, RECEIVER)}
        async with (
            _hub_client(_config(net, SENDER), directories[SENDER]) as sender,
            _hub_client(_config(net, RECEIVER), directories[RECEIVER]) as receiver,
        ):
            # Opens the default accounts, warms connections, pools and caches.
            warm_up = await relay(sender, receiver, warm, concurrency)
            if warm_up.errors or warm_up.lost:
                raise DemoError(f"the warm-up relay failed: {(warm_up.errors or ['lost'])[0]}")
            requests = max(count, 500)
            hub_before = cpu_seconds(pid)
            baseline = await round_trips(sender, requests, concurrency)
            hub_baseline = (cpu_seconds(pid) - hub_before) / (requests + WARM_UP)
            hub_before, own_before = cpu_seconds(pid), cpu_seconds(os.getpid())
            result = await relay(sender, receiver, contents, concurrency)
            relayed = max(result.acknowledged, 1)
            return Figures(
                backend=backend,
                relay=result,
                baseline_per_second=baseline,
                hub_cpu_ms=1000 * (cpu_seconds(pid) - hub_before) / relayed,
                hub_cpu_ms_baseline=1000 * hub_baseline,
                generator_cpu_ms=1000 * (cpu_seconds(os.getpid()) - own_before) / relayed,
                hub_peak_rss_mb=peak_rss_mb(pid),
            )

    return asyncio.run(run())


def _config(net: Network, country: str) -> NodeConfig:
    return load_config(net.nodes[country].directory / "node.toml")


async def _directory(net: Network, country: str) -> Callable[[], Directory]:
    """The directory as the NPPO's node trusts it: fetched from the registry, checked
    against its trust anchor, cached in its directory."""
    config = _config(net, country)
    assert config.registry_url is not None
    cache = config.path("directory.json")
    clock = SystemClock()
    refresher = DirectoryRefresher(
        config.registry_url, load(cache, read_anchor(config)), cache, clock, aiohttp.ClientSession
    )
    outcome = await refresher.refresh()
    if not outcome.ok:
        raise DemoError(f"{country} could not get the directory: {outcome.message}")
    return lambda: refresher.current(clock.now())


def _hub_client(config: NodeConfig, directory: Callable[[], Directory]) -> HubClient:
    """The directory's hub, trusted by its pins, as a node's HubClient reaches it."""
    return node_hub_client(config, directory, SystemClock())


def _calls(calls: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in calls.items())
