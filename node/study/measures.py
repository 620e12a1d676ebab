"""What a simulated run measures beyond latency (pure: a `Run` in, rows and values out).

Issue 14, "What it measures": the time a key rotation takes to reach every partner, the
metadata each party can see, the trust relationships and keys each party must manage,
bytes on the wire and CPU per party, and the share of certificates delivered before
their consignment arrives. And the flows of a scenario that imports its trade, for
`simulate` to run on (the caller reads the file; this parses it).

Everything is worked out from the run and the scenario; randomness (refresh timers'
phases, transport modes) comes from `random.Random` seeded from the run's seed, and
every output is sorted, so the same run gives the same files. Times are reported on
the scenario's clock, whatever the run's compression.

The rotation model follows the product (docs/maintainers.md, "Rotating an NPPO's
keys"; docs/operations.md, `ephyto node rotate-keys`): the NPPO sends its rotation
request, a maintainer records it and publishes the next directory version, and every
partner node (and the hub) learns the new keys at its next directory refresh from the
registry. What the model assumes beyond that is marked ASSUMPTION and listed in
docs/study.md.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import PurePath
from typing import Any, Final

from node.errors import InputError
from node.study.fao import country_index
from node.study.scenario import (
    MAX_CERTIFICATES_PER_YEAR,
    PARTY_HUB,
    PARTY_REGISTRY,
    SAME_REGION_MODES,
    GeneratedTrade,
    ImportedTrade,
    Scenario,
)
from node.study.simulate import DAY, ROUTE_DIRECT, ROUTE_NAMES, Run, percentile
from node.study.timers import Timers, simulated
from node.study.topology import TopologyCounts, count
from node.study.trade import Flows, generate_flows
from node.study.trade_import import TradeFormat, import_trade, scale_to_total

# ASSUMPTION: a maintainer records an NPPO's rotation request and publishes the next
# directory version a day after the request: the new signing key id and TLS pin are
# confirmed with the NPPO by another channel first, and a publish needs a threshold of
# maintainers' signatures (docs/maintainers.md). No measured figure exists.
ROTATION_PUBLISH_HOURS: Final = 24.0

# Wire sizes, measured once with the node's own code on the bundled sample `phyto`
# (node/samples/phyto_nl_cn.json, NL to CN, 851/70, its own number): its XML
# (node.certificate.xml_build) is 13,462 bytes. tests/unit/study/test_measures.py
# (`test_the_wire_sizes_are_the_measured_ones`) rebuilds every figure below with
# `seal`, `make_receipt` and the hub client's `build_request` / the hub's
# `render_response`, and fails when one no longer matches.
CERTIFICATE_XML_BYTES: Final = 13_462
# The sealed envelope (node.envelope.seal): a direct POST's body, and the hub's push.
ENVELOPE_BYTES: Final = 18_751
# The receiver's signed receipt (node.envelope.receipt.make_receipt): the answer.
RECEIPT_BYTES: Final = 538
# SOAP DeliverEnvelope carrying the sealed envelope (to a partner running a node) or
# the plain XML (to a partner without one, or from a sender without a node), and the
# hub's answer (the stored header with its tracking number).
HUB_DELIVER_SEALED_BYTES: Final = 19_274
HUB_DELIVER_PLAIN_BYTES: Final = 16_571
HUB_DELIVER_ANSWER_BYTES: Final = 689
# A pull: GetImportEnvelopeHeaders and its answer with nothing waiting (every poll),
# what one waiting header adds to that answer, PULLSingleImportEnvelope and its answer
# with the plain XML, AcknowledgeEnvelopeReceipt and its answer.
HUB_POLL_REQUEST_BYTES: Final = 261
HUB_POLL_ANSWER_BYTES: Final = 342
HUB_LISTED_HEADER_BYTES: Final = 424
HUB_FETCH_REQUEST_BYTES: Final = 371
HUB_FETCH_PLAIN_BYTES: Final = 16_800
HUB_ACK_REQUEST_BYTES: Final = 375
HUB_ACK_ANSWER_BYTES: Final = 271
# ASSUMPTION: every message (each request and each answer) carries this much more on
# the wire: HTTP/1.1 request or status line and headers (a few hundred bytes) and TLS
# record framing on a kept-alive connection. TCP/IP headers (about 4% more) and TLS
# handshakes (a few kB per new connection) are not counted.
MESSAGE_OVERHEAD_BYTES: Final = 500


@dataclass(frozen=True, slots=True)
class WireSizes:
    """Bytes of each message a certificate or a poll puts on the wire (the body; the
    per-message overhead is added to every one). Defaults: measured, above."""

    envelope: int = ENVELOPE_BYTES
    receipt: int = RECEIPT_BYTES
    hub_deliver_sealed: int = HUB_DELIVER_SEALED_BYTES
    hub_deliver_plain: int = HUB_DELIVER_PLAIN_BYTES
    hub_deliver_answer: int = HUB_DELIVER_ANSWER_BYTES
    hub_poll_request: int = HUB_POLL_REQUEST_BYTES
    hub_poll_answer: int = HUB_POLL_ANSWER_BYTES
    hub_listed_header: int = HUB_LISTED_HEADER_BYTES
    hub_fetch_request: int = HUB_FETCH_REQUEST_BYTES
    hub_fetch_plain: int = HUB_FETCH_PLAIN_BYTES
    hub_ack_request: int = HUB_ACK_REQUEST_BYTES
    hub_ack_answer: int = HUB_ACK_ANSWER_BYTES
    message_overhead: int = MESSAGE_OVERHEAD_BYTES

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1 << 30:
                raise InputError(f"{f.name}: {value!r}; a whole number of bytes, 0 to 2**30")


# -- the run's trade, timers and certificates, grouped --------------------------------


def run_flows(run: Run) -> Flows:
    """The yearly flows the run was made from: generated again, or the imported ones."""
    trade = run.scenario.trade
    if isinstance(trade, GeneratedTrade):
        return generate_flows(run.scenario.countries, trade)
    if run.options.flows is None:
        raise InputError(f"the run's trade is imported ({trade.path}) but carries no flows")
    return run.options.flows


def _timers(run: Run) -> Timers:
    return run.options.timers or simulated(run.scenario, run.options.compress)


@dataclass(frozen=True, slots=True)
class Group:
    """Certificates alike in everything the measures below count."""

    origin: str
    destination: str
    route: int
    reached_hub: bool
    delivered: bool
    certificates: int
    attempts: int


def _groups(run: Run) -> tuple[Group, ...]:
    """The run's certificates counted by pair, route, whether they reached the hub and
    whether they were delivered: one pass over the run, then small tables."""
    tally: dict[tuple[int, int, int, bool, bool], list[int]] = {}
    for i in range(run.certificates):
        key = (
            run.origin[i],
            run.destination[i],
            run.route[i],
            run.route[i] != ROUTE_DIRECT and not math.isnan(run.hub_stored[i]),
            math.isfinite(run.delivered[i]),
        )
        found = tally.get(key)
        if found is None:
            tally[key] = [1, run.attempts[i]]
        else:
            found[0] += 1
            found[1] += run.attempts[i]
    names = run.countries
    return tuple(
        Group(names[o], names[d], route, hub, done, n, attempts)
        for (o, d, route, hub, done), (n, attempts) in sorted(tally.items())
    )


@dataclass(frozen=True, slots=True)
class Tallies:
    """The passes over a run's certificates the measures share: work them out once with
    `tally` and pass them to each (each works them out itself when not given)."""

    groups: tuple[Group, ...]
    # (route, index into the scenario's transit modes) -> (certificates, delivered
    # before the consignment arrived)
    transit: Mapping[tuple[int, int], tuple[int, int]]
    # hub_bytes.csv's rows (a sort of every hub-routed certificate: done once)
    hub_bytes: list[list[str]]


def tally(run: Run) -> Tallies:
    """The passes over the run's certificates."""
    return Tallies(_groups(run), _before_arrival(run), hub_bytes_rows(run))


def _tallied(run: Run, tallies: Tallies | None) -> Tallies:
    return tallies if tallies is not None else tally(run)


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 6) if whole else None


def _fixed(value: float | None, digits: int = 6) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.{digits}f}"


# -- 1. key rotations ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RotationReach:
    """One country's rotation: hours from its request until each partner holds the keys."""

    day: float
    country: str
    hours: tuple[float, ...]  # one per partner (the hub among them), ascending


def rotation_reaches(run: Run) -> list[RotationReach]:
    """For each scenario key rotation and each rotating country that runs a node: when
    its new keys reach each partner.

    Partners: every country it trades with (either way) that runs a node and has joined
    by the publication, and the hub unless the topology is all bilateral (the hub checks
    a node's TLS pin and receipts against the directory). A country without a node has
    no keys in the directory (the hub knows it outside it), so it is left out.
    The request goes at the rotation's day; the maintainer publishes
    ROTATION_PUBLISH_HOURS later (ASSUMPTION); each partner picks the new directory up at
    its first refresh after that (`[registry] refresh_seconds`, node.identity.config,
    the hub's default the same) at which both it and the registry are up: a refresh
    while either is down fails and the next one tries again. Each party's refresh timer
    has a phase seeded from the run's seed.
    """
    scenario = run.scenario
    timers = _timers(run)
    hour = 3600.0 / timers.compress  # an hour of the scenario on the run's clock
    every = timers.refresh
    runs_node = {c.code: c.runs_node for c in scenario.countries}
    joins = {c.code: c.joins_day * DAY / timers.compress for c in scenario.countries}
    trades_with = _partners(run_flows(run))
    has_hub = scenario.topology != "bilateral"
    rng = random.Random(f"rotations:{run.options.seed}")
    phase = {party: rng.random() * every for party in (*run.countries, PARTY_HUB)}
    down: dict[str, list[tuple[float, float]]] = {}
    for outage in scenario.outages:
        start = outage.start_hours * hour
        down.setdefault(outage.party, []).append((start, start + outage.duration_hours * hour))
    registry = down.get(PARTY_REGISTRY, [])
    reaches: list[RotationReach] = []
    for rotation in scenario.key_rotations:
        requested = rotation.day * DAY / timers.compress
        published = requested + ROTATION_PUBLISH_HOURS * hour
        for country in sorted(rotation.countries):
            if not runs_node[country]:
                continue
            partners = [
                p for p in trades_with.get(country, ()) if runs_node[p] and joins[p] <= published
            ]
            if has_hub:
                partners.append(PARTY_HUB)
            picked = [
                _picked_up(published, phase[p], every, registry, down.get(p, [])) for p in partners
            ]
            hours = tuple(sorted((t - requested) / hour for t in picked))
            reaches.append(RotationReach(rotation.day, country, hours))
    return reaches


def _partners(flows: Flows) -> dict[str, list[str]]:
    both: dict[str, set[str]] = {}
    for origin, destination in flows.volumes:
        both.setdefault(origin, set()).add(destination)
        both.setdefault(destination, set()).add(origin)
    return {code: sorted(partners) for code, partners in both.items()}


def _picked_up(
    published: float,
    phase: float,
    every: float,
    registry: Sequence[tuple[float, float]],
    party: Sequence[tuple[float, float]],
) -> float:
    """The first refresh tick (phase + k * every) at or after `published` at which
    neither the registry nor the party is down."""
    t = _next_tick(published, phase, every)
    while True:
        clear = max(_up_from(registry, t), _up_from(party, t))
        if clear == t:
            return t
        t = _next_tick(clear, phase, every)


def _next_tick(t: float, phase: float, every: float) -> float:
    """The first tick at or after `t` (never before it, whatever the float rounding)."""
    tick = phase + max(math.ceil((t - phase) / every), 0) * every
    return tick if tick >= t else tick + every


def _up_from(spans: Sequence[tuple[float, float]], t: float) -> float:
    """The earliest time at or after `t` outside every [start, end) span."""
    moved = True
    while moved:
        moved = False
        for start, end in spans:
            if start <= t < end:
                t, moved = end, True
    return t


def rotations_rows(run: Run) -> list[list[str]]:
    """rotations.csv: per rotation and country, its partners and when all (and half)
    of them hold its new keys, in hours from its request."""
    rows = [["day", "country", "partners", "reached_all_hours", "reached_p50_hours"]]
    for reach in rotation_reaches(run):
        rows.append(
            [
                f"{reach.day:g}",
                reach.country,
                str(len(reach.hours)),
                _fixed(reach.hours[-1] if reach.hours else None, 3),
                _fixed(percentile(reach.hours, 0.5) if reach.hours else None, 3),
            ]
        )
    return rows


# -- 2. metadata exposure -------------------------------------------------------------

SEES_HUB: Final = "every hub-routed certificate: its pair and timing"
SEES_REGISTRY: Final = "no certificate: directory fetches only"
SEES_COUNTRY: Final = "the certificates it sends or receives"


@dataclass(frozen=True, slots=True)
class Exposure:
    party: str
    sees: str
    certificates: int
    pairs: int


def exposures(run: Run, tallies: Tallies | None = None) -> tuple[list[Exposure], int, int]:
    """What each party sees (the hub, the registry, each country), with the run's
    certificates and the pairs that exchanged any.

    The hub sees every certificate that reached it (routes hub and hub-fallback); the
    registry serves directory fetches and sees no certificate; a country sees what it
    sends, and what it receives once delivered.
    """
    groups = _tallied(run, tallies).groups
    pairs = {(g.origin, g.destination) for g in groups}
    hub_certificates = sum(g.certificates for g in groups if g.reached_hub)
    hub_pairs = {(g.origin, g.destination) for g in groups if g.reached_hub}
    seen: dict[str, int] = dict.fromkeys(run.countries, 0)
    seen_pairs: dict[str, set[tuple[str, str]]] = {code: set() for code in run.countries}
    for g in groups:
        ends = (g.origin, g.destination) if g.delivered else (g.origin,)
        for end in ends:
            seen[end] += g.certificates
            seen_pairs[end].add((g.origin, g.destination))
    found = [
        Exposure(PARTY_HUB, SEES_HUB, hub_certificates, len(hub_pairs)),
        Exposure(PARTY_REGISTRY, SEES_REGISTRY, 0, 0),
        *(
            Exposure(code, SEES_COUNTRY, seen[code], len(seen_pairs[code]))
            for code in run.countries
        ),
    ]
    return found, run.certificates, len(pairs)


def exposure_rows(run: Run, tallies: Tallies | None = None) -> list[list[str]]:
    """exposure.csv: per party, the certificates and pairs it sees and their shares."""
    found, certificates, pairs = exposures(run, tallies)
    rows = [["party", "certificates_seen", "share_of_all", "pairs_seen", "share_of_pairs", "sees"]]
    for e in found:
        rows.append(
            [
                e.party,
                str(e.certificates),
                _fixed(_share(e.certificates, certificates)),
                str(e.pairs),
                _fixed(_share(e.pairs, pairs)),
                e.sees,
            ]
        )
    return rows


def _exposure_summary(run: Run, tallies: Tallies) -> dict[str, Any]:
    found, certificates, _ = exposures(run, tallies)
    countries = [e.certificates for e in found if e.party not in (PARTY_HUB, PARTY_REGISTRY)]
    return {
        "hub_share": _share(found[0].certificates, certificates),
        "largest_country_share": _share(max(countries, default=0), certificates),
    }


# -- 3. trust and keys -------------------------------------------------------------------


def trust_counts(run: Run) -> TopologyCounts:
    """The scenario's topology counted for its trade (node/study/topology.py)."""
    scenario = run.scenario
    return count(scenario.topology, scenario.countries, run_flows(run), scenario.top_k)


def trust_rows(run: Run) -> list[list[str]]:
    """trust.csv: per country, its direct partners and the keys it must hold."""
    counts = trust_counts(run)
    direct: dict[str, int] = dict.fromkeys(run.countries, 0)
    for link in counts.direct_links:
        for end in link:
            direct[end] += 1
    rows = [["country", "direct_partners", "keys_held"]]
    for code in run.countries:
        rows.append([code, str(direct[code]), str(counts.keys_held.get(code, 0))])
    return rows


# -- 4. bytes on the wire and CPU --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Message:
    sender: str
    receiver: str
    size: int  # on the wire: the body and, for a message of its own, the overhead


def _messages(group: Group, runs_node: Mapping[str, bool], sizes: WireSizes) -> list[_Message]:
    """The messages one certificate of `group` puts on the wire (retries not counted).

    Direct: the envelope and the receipt. Through the hub: DeliverEnvelope, sealed when
    both ends run a node, plain otherwise (node/outbox/hub_route.py), and the hub's
    answer; then a sealed envelope is pushed to the node (node/hub/push.py) and
    answered with a receipt, a plain one is pulled (its header in a listing, the fetch
    and the acknowledgement). A certificate that never reached the hub, or was never
    delivered, counts only what it got through.
    """
    o, d = group.origin, group.destination
    extra = sizes.message_overhead

    def message(sender: str, receiver: str, body: int) -> _Message:
        return _Message(sender, receiver, body + extra)

    if group.route == ROUTE_DIRECT:
        if not group.delivered:
            return []
        return [message(o, d, sizes.envelope), message(d, o, sizes.receipt)]
    if not group.reached_hub:
        return []
    sealed = runs_node[o] and runs_node[d]
    messages = [
        message(o, PARTY_HUB, sizes.hub_deliver_sealed if sealed else sizes.hub_deliver_plain),
        message(PARTY_HUB, o, sizes.hub_deliver_answer),
    ]
    if not group.delivered:
        return messages
    if sealed:
        return [
            *messages,
            message(PARTY_HUB, d, sizes.envelope),
            message(d, PARTY_HUB, sizes.receipt),
        ]
    return [
        *messages,
        # The listing that shows the header is a poll, counted with the polls: this is
        # the header's own share of that answer, no message of its own.
        _Message(PARTY_HUB, d, sizes.hub_listed_header),
        message(d, PARTY_HUB, sizes.hub_fetch_request),
        message(PARTY_HUB, d, sizes.hub_fetch_plain),
        message(d, PARTY_HUB, sizes.hub_ack_request),
        message(PARTY_HUB, d, sizes.hub_ack_answer),
    ]


def _polls(run: Run) -> Iterator[tuple[str, int]]:
    """Each country's polls of the hub over the period: a country without a node every
    pull interval, a node every `hub_poll_seconds` (as the model has them), from the day
    it joins, whether or not anything waits. Nothing without a hub."""
    if run.scenario.topology == "bilateral":
        return
    timers = _timers(run)
    for c in sorted(run.scenario.countries, key=lambda c: c.code):
        every = timers.node_poll if c.runs_node else timers.pull_interval
        active = run.period_seconds - c.joins_day * DAY / timers.compress
        yield c.code, max(math.floor(active / every), 0)


@dataclass(frozen=True, slots=True)
class _Traffic:
    sent: dict[str, int]
    received: dict[str, int]
    cpu_ms: dict[str, float]
    by_route: dict[str, int]  # certificates' bytes (both ways) per route
    certificates_by_route: dict[str, int]
    polling: int


def _traffic(run: Run, sizes: WireSizes, tallies: Tallies) -> _Traffic:
    service = run.options.service
    runs_node = {c.code: c.runs_node for c in run.scenario.countries}
    parties = (*run.countries, PARTY_HUB)
    sent = dict.fromkeys(parties, 0)
    received = dict.fromkeys(parties, 0)
    cpu = dict.fromkeys(parties, 0.0)
    by_route = dict.fromkeys(ROUTE_NAMES, 0)
    certificates = dict.fromkeys(ROUTE_NAMES, 0)
    overhead = sizes.message_overhead
    for g in tallies.groups:
        route = ROUTE_NAMES[g.route]
        certificates[route] += g.certificates
        for m in _messages(g, runs_node, sizes):
            size = m.size * g.certificates
            sent[m.sender] += size
            received[m.receiver] += size
            by_route[route] += size
        # As the model charges them: the sender's work on every attempt (each seals
        # anew), the receiver's once it is delivered, the hub's once it is stored.
        cpu[g.origin] += service.node_send_ms * g.attempts
        if g.delivered:
            cpu[g.destination] += service.node_receive_ms * g.certificates
        if g.reached_hub:
            cpu[PARTY_HUB] += service.hub_ms * g.certificates
    polling = 0
    request = sizes.hub_poll_request + overhead
    answer = sizes.hub_poll_answer + overhead
    for code, polls in _polls(run):
        sent[code] += polls * request
        received[PARTY_HUB] += polls * request
        sent[PARTY_HUB] += polls * answer
        received[code] += polls * answer
        polling += polls * (request + answer)
    return _Traffic(sent, received, cpu, by_route, certificates, polling)


def parties_rows(
    run: Run, sizes: WireSizes | None = None, tallies: Tallies | None = None
) -> list[list[str]]:
    """parties.csv: per party (the hub, when the topology has one, and each country),
    its CPU seconds over the run and the bytes it sent and received."""
    traffic = _traffic(run, sizes or WireSizes(), _tallied(run, tallies))
    rows = [["party", "cpu_seconds", "bytes_sent", "bytes_received"]]
    parties = list(run.countries)
    if run.scenario.topology != "bilateral":
        parties.insert(0, PARTY_HUB)
    for party in parties:
        rows.append(
            [
                party,
                f"{traffic.cpu_ms[party] / 1000:.3f}",
                str(traffic.sent[party]),
                str(traffic.received[party]),
            ]
        )
    return rows


def _wire_summary(run: Run, sizes: WireSizes, tallies: Tallies) -> dict[str, Any]:
    traffic = _traffic(run, sizes, tallies)
    per_certificate = {
        route: (
            round(traffic.by_route[route] / n, 1)
            if (n := traffic.certificates_by_route[route])
            else None
        )
        for route in ROUTE_NAMES
    }
    return {
        "total": sum(traffic.by_route.values()) + traffic.polling,
        "certificates": sum(traffic.by_route.values()),
        "per_certificate": per_certificate,
        "pull_polling": traffic.polling,
        "message_overhead": sizes.message_overhead,
    }


def _cpu_summary(run: Run, tallies: Tallies) -> dict[str, float | None]:
    """Mean CPU milliseconds one certificate of the run costs each party: the sender
    (every attempt), the receiver (once delivered), the hub (once stored; 0 when the
    certificate went direct)."""
    groups = tallies.groups
    service = run.options.service
    n = run.certificates
    attempts = sum(g.attempts for g in groups)
    delivered = sum(g.certificates for g in groups if g.delivered)
    at_hub = sum(g.certificates for g in groups if g.reached_hub)
    return {
        "sender": _share(service.node_send_ms * attempts, n),
        "receiver": _share(service.node_receive_ms * delivered, n),
        "hub": _share(service.hub_ms * at_hub, n),
    }


# -- 5. before the consignment arrives -------------------------------------------------


def transit_modes(run: Run) -> list[int]:
    """Each certificate's transport mode (an index into the scenario's `transit`): a
    seeded draw by share among the modes its pair can use (within a region any, across
    regions sea and air only), the shares renormalised over those."""
    modes = run.scenario.transit
    region = {c.code: c.region for c in run.scenario.countries}
    same = list(range(len(modes)))
    across = [i for i, m in enumerate(modes) if m.mode not in SAME_REGION_MODES]
    cumulative = {
        True: _cumulative([modes[i].share for i in same]),
        False: _cumulative([modes[i].share for i in across]),
    }
    index = {True: same, False: across}
    rng = random.Random(f"transit:{run.options.seed}")
    codes = run.countries
    regions = [region[code] for code in codes]
    chosen: list[int] = []
    for o, d in zip(run.origin, run.destination, strict=True):
        within = regions[o] == regions[d]
        sums = cumulative[within]
        if not sums or sums[-1] <= 0:
            raise InputError(
                f"transit.modes: no mode with a share carries {codes[o]} -> {codes[d]}"
            )
        pick = bisect.bisect_right(sums, rng.random() * sums[-1])
        chosen.append(index[within][min(pick, len(sums) - 1)])
    return chosen


def _cumulative(shares: Sequence[float]) -> list[float]:
    total = 0.0
    sums: list[float] = []
    for share in shares:
        total += share
        sums.append(total)
    return sums


def _before_arrival(run: Run) -> dict[tuple[int, int], tuple[int, int]]:
    """(route, mode) -> [certificates, delivered before the consignment arrived]."""
    modes = run.scenario.transit
    hour = 3600.0 / _timers(run).compress
    limits = [m.hours * hour for m in modes]
    counts: dict[tuple[int, int], list[int]] = {}
    for i, mode in enumerate(transit_modes(run)):
        key = (run.route[i], mode)
        entry = counts.setdefault(key, [0, 0])
        entry[0] += 1
        if run.delivered[i] - run.submitted[i] <= limits[mode]:
            entry[1] += 1
    return {key: (n, before) for key, (n, before) in sorted(counts.items())}


def transit_rows(run: Run, tallies: Tallies | None = None) -> list[list[str]]:
    """transit.csv: per route and transport mode, the certificates and the share
    delivered before the consignment arrived (latency within the mode's transit time)."""
    modes = run.scenario.transit
    rows = [
        [
            "route",
            "mode",
            "rec19_code",
            "transit_hours",
            "certificates",
            "share_before_arrival",
        ]
    ]
    for (route, mode), (n, before) in sorted(_tallied(run, tallies).transit.items()):
        rows.append(
            [
                ROUTE_NAMES[route],
                modes[mode].mode,
                modes[mode].rec19_code,
                f"{modes[mode].hours:g}",
                str(n),
                _fixed(_share(before, n)),
            ]
        )
    return rows


def _transit_summary(tallies: Tallies) -> dict[str, float | None]:
    counts = tallies.transit
    result: dict[str, float | None] = {}
    total = sum(n for n, _ in counts.values())
    result["all"] = _share(sum(b for _, b in counts.values()), total)
    for route, name in enumerate(ROUTE_NAMES):
        n = sum(v[0] for (r, _), v in counts.items() if r == route)
        result[name] = _share(sum(v[1] for (r, _), v in counts.items() if r == route), n)
    return result


# -- 6. imported trade -------------------------------------------------------------------


def imported_trade_path(trade: ImportedTrade, scenario_file: PurePath) -> PurePath:
    """Where an imported scenario's CSV is: `[trade] path` relative to the scenario
    file's folder (an absolute path as it is)."""
    return scenario_file.parent / trade.path


def imported_flows(scenario: Scenario, data: bytes) -> Flows:
    """The flows of a scenario whose trade is imported, from its CSV's bytes.

    An edge list (what `ephyto study trade import` writes, or any the importer reads:
    node/study/trade_import.py). Every country must be one of the scenario's. With
    `[trade] certificates_per_year` the weights are scaled to that total exactly (the
    importer's `scale_to_total`); without, they must be whole certificates a year.
    """
    trade = scenario.trade
    if not isinstance(trade, ImportedTrade):
        raise InputError('trade: the scenario generates its trade (source = "generated")')
    where = f"trade.path ({trade.path})"
    try:
        result = import_trade(data, country_index(), trade_format=TradeFormat.EDGES)
    except InputError as e:
        raise InputError(f"{where}: {e}") from None
    if result.unmapped:
        first = result.unmapped[0]
        raise InputError(
            f"{where}: line {first.first_line}: {first.text!r} is {first.reason.value}; "
            "give ISO 3166-1 codes (ephyto study trade import maps names)"
        )
    codes = set(scenario.codes)
    for flow in result.flows:
        for code in (flow.origin, flow.destination):
            if code not in codes:
                raise InputError(
                    f"{where}: {code} is not one of the scenario's countries; add it to "
                    "countries or leave its rows out"
                )
    flows = (
        scale_to_total(result.flows, trade.certificates_per_year)
        if trade.certificates_per_year is not None
        else result.flows
    )
    volumes: dict[tuple[str, str], int] = {}
    for flow in flows:
        if flow.weight != flow.weight.to_integral_value():
            raise InputError(
                f"{where}: {flow.origin} -> {flow.destination} weighs {flow.weight}, not "
                "a whole number of certificates a year; set [trade] certificates_per_year "
                "to scale the weights"
            )
        if flow.weight > 0:
            volumes[(flow.origin, flow.destination)] = int(flow.weight)
    total = sum(volumes.values(), 0)
    if not volumes:
        raise InputError(f"{where}: no flow with a certificate")
    if total > MAX_CERTIFICATES_PER_YEAR:
        raise InputError(
            f"{where}: {total:,} certificates a year; at most {MAX_CERTIFICATES_PER_YEAR:,}"
        )
    return Flows(dict(sorted(volumes.items())))


# -- 7. for the CLI ------------------------------------------------------------------------


def extra_files(
    run: Run, *, sizes: WireSizes | None = None, tallies: Tallies | None = None
) -> dict[str, list[list[str]]]:
    """The measures' CSV files, by name: rows to write as they are."""
    counted = _tallied(run, tallies)
    return {
        "rotations.csv": rotations_rows(run),
        "exposure.csv": exposure_rows(run, counted),
        "trust.csv": trust_rows(run),
        "parties.csv": parties_rows(run, sizes, counted),
        "transit.csv": transit_rows(run, counted),
        "hub_bytes.csv": counted.hub_bytes,
    }


def hub_bytes_rows(run: Run) -> list[list[str]]:
    """hub_bytes.csv: the bytes of the envelopes the hub held at the end of every hour
    of the scenario's clock (hub_holdings.csv counts them). An envelope between two
    nodes is held sealed (ENVELOPE_BYTES); any other, as the plain XML
    (CERTIFICATE_XML_BYTES), as node/outbox/hub_route.py sends it."""
    node = {c.code: c.runs_node for c in run.scenario.countries}
    changes: list[tuple[float, int]] = []
    for i in range(run.certificates):
        stored = run.hub_stored[i]
        if run.route[i] == ROUTE_DIRECT or math.isnan(stored):
            continue
        both = node[run.countries[run.origin[i]]] and node[run.countries[run.destination[i]]]
        size = ENVELOPE_BYTES if both else CERTIFICATE_XML_BYTES
        changes.append((stored, size))
        changes.append((run.delivered[i], -size))
    changes.sort()
    times = [t for t, _ in changes]
    held: list[int] = []
    total = 0
    for _, size in changes:
        total += size
        held.append(total)
    finite = [t for t in times if math.isfinite(t)]
    last = max([run.period_seconds, *finite[-1:]])
    length = 3600.0 / run.options.compress  # an hour of the scenario's clock
    rows = [["hour", "bytes_held"]]
    for hour in range(1, math.ceil(last / length) + 1):
        k = bisect.bisect_right(times, hour * length)
        rows.append([str(hour), str(held[k - 1] if k else 0)])
    return rows


def extra_summary(
    run: Run, *, sizes: WireSizes | None = None, tallies: Tallies | None = None
) -> dict[str, Any]:
    """The measures' summary.json keys."""
    counted = _tallied(run, tallies)
    reaches = rotation_reaches(run)
    slowest = sorted(r.hours[-1] for r in reaches if r.hours)
    return {
        "key_rotations": {
            "countries_rotated": len(reaches),
            "publish_hours_assumed": ROTATION_PUBLISH_HOURS,
            "reached_all_hours_p50": _rounded(percentile(slowest, 0.5)),
            "reached_all_hours_max": _rounded(slowest[-1]) if slowest else None,
        },
        "exposure": _exposure_summary(run, counted),
        "trust": trust_counts(run).to_json(),
        "bytes_on_wire": _wire_summary(run, sizes or WireSizes(), counted),
        "cpu_ms_per_certificate": _cpu_summary(run, counted),
        "share_before_arrival": _transit_summary(counted),
        "hub_most_bytes_held": max((int(r[1]) for r in counted.hub_bytes[1:]), default=0),
    }


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else round(value, 6)
