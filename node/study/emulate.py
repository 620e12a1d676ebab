"""`ephyto study emulate`: a scenario played by real processes, small (the shell).

A registry, a hub and one real node process per country (node/demo/network.py, the
demo's network: real TLS, crypto and stores), each sending through its own listener of a
fault-injecting proxy (node/study/linkproxy.py) that imposes the scenario's links.
Outages SIGKILL the party's process and start it again. The certificates are the ones
`simulate` numbers (`planned_arrivals`), submitted through each exporter's
national-system API at their times; each one's receipt is when the importer's node
stored it (its API's `created_at`), its route what the exporter's node says.

The scenario's clock may be compressed (node/study/timers.py): arrivals, outages and the
processes' timers run F times faster; the network's delays and the processes' costs are
real. The result is a `Run` like simulate's, on the compressed clock, so every table
simulate writes comes from the same code.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final

from node.certificate.jsonmodel import certificate_from_json
from node.certificate.xml_build import to_xml_bytes
from node.demo.errors import DemoError
from node.demo.network import Network, NodeHandle
from node.demo.scenario import routed
from node.errors import InputError
from node.identity.config import dump_config, load_config
from node.samples import sample_model_bytes
from node.study.linkproxy import Conditions, LinkProxy
from node.study.scenario import PARTY_HUB, PARTY_REGISTRY, GeneratedTrade, Scenario
from node.study.simulate import (
    HUB_REGION,
    ROUTE_DIRECT,
    ROUTE_FALLBACK,
    ROUTE_HUB,
    Options,
    Run,
    ServiceTimes,
    percentile,
    planned_arrivals,
)
from node.study.timers import Timers, check_compress, emulated
from node.study.topology import count
from node.study.trade import generate_flows

# This machine's two cores run about a dozen node processes beside a hub and a registry.
MAX_COUNTRIES: Final = 12
MAX_CERTIFICATES: Final = 20_000
# The emulated period on the wall clock, at most (compress the scenario to fit).
MAX_WALL_SECONDS: Final = 3_600.0
# After the last submission, how long to wait for the stragglers (wall seconds), beyond
# the longest outage still running then.
DRAIN_SECONDS: Final = 120.0
# Fewer gaps between envelopes of one pull than this say too little to measure by.
MIN_PULL_GAPS: Final = 20
# How often to look at the receivers, the processes' CPU and the progress.
LOOK_SECONDS: Final = 1.0


@dataclass(frozen=True, slots=True)
class EmulateOptions:
    seed: int = 0
    scale: float = 1.0
    compress: float = 1.0


@dataclass(frozen=True, slots=True)
class Plan:
    """What an emulation will do, worked out before any process starts (pure)."""

    scenario: Scenario
    timers: Timers
    options: Options  # the simulation's options it mirrors (seed, scale, compress, timers)
    arrivals: tuple[tuple[float, str, str], ...]
    nodes: tuple[str, ...]  # countries running a node with an endpoint
    hub_only: tuple[str, ...]  # countries reaching others through the hub only
    has_hub: bool
    period: float  # wall seconds
    via_hub: Mapping[str, tuple[str, ...]]  # each node's [hub] via_hub
    direct_links: frozenset[frozenset[str]]  # the topology's, as simulate counts them


def plan(scenario: Scenario, options: EmulateOptions) -> Plan:
    """Check that the scenario can be emulated here, and what it will send; InputError
    saying why not."""
    check_compress(options.compress)
    if len(scenario.countries) > MAX_COUNTRIES:
        raise InputError(
            f"emulate: {scenario.name} has {len(scenario.countries)} countries; this machine "
            f"emulates at most {MAX_COUNTRIES} (one real node process each): use simulate"
        )
    if not isinstance(scenario.trade, GeneratedTrade):
        raise InputError("emulate: only generated trade is emulated")
    flows = generate_flows(scenario.countries, scenario.trade)
    topology = count(scenario.topology, scenario.countries, flows, scenario.top_k)
    nodes = tuple(sorted(c.code for c in scenario.countries if c.runs_node))
    hub_only = tuple(sorted(c.code for c in scenario.countries if not c.runs_node))
    # A node reaches the node partners it has no direct link with through the hub
    # ([hub] via_hub); a country without a node, everyone.
    via_hub = {
        code: ("*",)
        if code in hub_only
        else tuple(
            p for p in nodes if p != code and frozenset((code, p)) not in topology.direct_links
        )
        for code in (*nodes, *hub_only)
    }
    if any(c.joins_day > 0 for c in scenario.countries):
        raise InputError("emulate: countries joining later (joins_day) are not emulated")
    if scenario.key_rotations:
        raise InputError("emulate: key rotations are not emulated yet; use simulate")
    period = scenario.period_days * 86_400 / options.compress
    if period > MAX_WALL_SECONDS:
        days = f"{scenario.period_days} day{'s' if scenario.period_days != 1 else ''}"
        raise InputError(
            f"emulate: {days} at --compress {options.compress:g} take "
            f"{period:,.0f} s; at most {MAX_WALL_SECONDS:,.0f} s (raise --compress)"
        )
    # Before drawing them: a volume far past the cap is refused without the memory.
    expected = scenario.trade.certificates_per_year * options.scale * scenario.period_days / 365
    if expected > 2 * MAX_CERTIFICATES:
        raise InputError(
            f"emulate: about {expected:,.0f} certificates; at most {MAX_CERTIFICATES:,} here "
            "(lower --scale)"
        )
    if scenario.topology == "bilateral" and any(o.party == PARTY_HUB for o in scenario.outages):
        raise InputError("emulate: a hub outage in an all-bilateral scenario (it has no hub)")
    timers = emulated(scenario, options.compress)
    sim = Options(seed=options.seed, scale=options.scale, compress=options.compress, timers=timers)
    arrivals = tuple(planned_arrivals(scenario, sim))
    if len(arrivals) > MAX_CERTIFICATES:
        raise InputError(
            f"emulate: {len(arrivals):,} certificates; at most {MAX_CERTIFICATES:,} here "
            "(lower --scale)"
        )
    if not arrivals:
        raise InputError("emulate: the scenario sends no certificate at this --scale")
    return Plan(
        scenario=scenario,
        timers=timers,
        options=sim,
        arrivals=arrivals,
        nodes=tuple(c for c in nodes),
        hub_only=hub_only,
        has_hub=scenario.topology != "bilateral",
        period=period,
        via_hub=via_hub if scenario.topology != "bilateral" else {},
        direct_links=topology.direct_links,
    )


@dataclass
class Emulation:
    """What an emulation measured."""

    run: Run
    service: ServiceTimes  # measured where it could be: restart_ms
    bytes_sent: dict[tuple[str, str], int]
    resets: dict[tuple[str, str], int]
    refused: dict[tuple[str, str], int]
    cpu_seconds: dict[str, float]
    restart_seconds: list[float]
    wall_seconds: float


@dataclass
class _Received:
    at: dict[str, float] = field(default_factory=dict)  # certificate number -> seconds


def emulate(
    chosen: Plan,
    workdir: Path,
    log: IO[str],
    progress: Callable[[float], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> Emulation:
    """Play the plan on real processes under `workdir`; every process is stopped after."""
    scenario = chosen.scenario
    region = {c.code: c.region for c in scenario.countries}
    region[PARTY_HUB] = HUB_REGION

    def conditions(sender: str, destination: str) -> Conditions:
        link = scenario.links.between(region[sender], region[destination])
        return Conditions(link.latency_ms / 1000, link.jitter_ms / 1000, link.loss)

    net: Network | None = None

    def destinations(port: int) -> str | None:
        if net is None:
            return None
        for handle in net.nodes.values():
            if handle.exchange_port == port and handle.country not in chosen.hub_only:
                return handle.country
        if net.hub_url and urllib.parse.urlsplit(net.hub_url).port == port:
            return PARTY_HUB
        return None

    proxy = LinkProxy(conditions, destinations, chosen.options.seed)
    try:
        parties = [*chosen.nodes, *chosen.hub_only, *([PARTY_HUB] if chosen.has_hub else [])]
        proxies = {party: proxy.listen(party) for party in parties}

        def environment(name: str) -> Mapping[str, str]:
            party = PARTY_HUB if name == "hub" else name.removeprefix("node ")
            url = proxies.get(party)
            return {"HTTPS_PROXY": url, "NO_PROXY": ""} if url else {}

        timers = chosen.timers

        def tune(handle: NodeHandle) -> None:
            path = handle.directory / "node.toml"
            config = load_config(path)
            poll = timers.pull_interval if handle.country in chosen.hub_only else timers.node_poll
            config = replace(
                config,
                hub_poll_seconds=int(poll),
                refresh_seconds=int(timers.refresh),
                retry_cap_seconds=int(timers.retry_cap),
                fallback_attempts=timers.fallback_attempts,
                fallback_seconds=int(timers.fallback_after),
                via_hub=chosen.via_hub.get(handle.country, ()),
            )
            path.write_text(dump_config(config), encoding="utf-8")

        stamping = (
            f"--timestamp-every={int(timers.timestamp_every)}s",
            f"--timestamp-expires-in={int(timers.timestamp_validity)}s",
        )
        net = Network(
            workdir,
            log,
            countries=chosen.nodes,
            hub=chosen.has_hub,
            hub_only=chosen.hub_only,
            environment=environment,
            tune_node=tune,
            registry_serve_args=stamping,
            report=say,
        )
        try:
            net.start()
            return _play(chosen, net, proxy, progress, say)
        finally:
            net.stop()
    finally:
        proxy.close()


def _play(
    chosen: Plan,
    net: Network,
    proxy: LinkProxy,
    progress: Callable[[float], None] | None,
    say: Callable[[str], None] | None,
) -> Emulation:
    scenario = chosen.scenario
    numbers = [f"{origin}-EMU-{i:06d}" for i, (_, origin, _) in enumerate(chosen.arrivals)]
    bodies = _certificates(chosen, numbers)
    cpu = _CpuMeter(net)
    restarts: list[float] = []
    began = time.monotonic()
    origin_wall = time.time() + 1.0
    start = time.monotonic() + 1.0
    stop = threading.Event()
    outages = threading.Thread(
        target=_outages, args=(chosen, net, start, stop, restarts, say), daemon=True
    )
    outages.start()
    sent_ids: dict[str, int] = {}
    lock = threading.Lock()
    # One national system per exporter, each sending its own certificates in order: one
    # whose node is down queues its own, and holds up no one else's.
    queues: dict[str, list[int]] = {}
    for i, (_, origin, _) in enumerate(chosen.arrivals):
        queues.setdefault(origin, []).append(i)

    def national_system(indexes: list[int]) -> None:
        for i in indexes:
            at, origin, _ = chosen.arrivals[i]
            if stop.wait(max(start + at - time.monotonic(), 0.0)):
                return
            while not stop.is_set():
                try:
                    body = net.api(origin, "POST", "/certificates", bodies[i])
                except DemoError:
                    # Its node is down: tried again, as the simulation's sender waits
                    # for its node to be up.
                    time.sleep(0.1)
                    continue
                with lock:
                    sent_ids[numbers[i]] = body["id"]
                break

    systems = [
        threading.Thread(target=national_system, args=(indexes,), daemon=True)
        for indexes in queues.values()
    ]
    for system in systems:
        system.start()
    last = chosen.arrivals[-1][0]
    while any(system.is_alive() for system in systems):
        cpu.look()
        if progress is not None:
            progress(min((time.monotonic() - start) / max(last, 1e-9), 1.0) * 0.95)
        time.sleep(LOOK_SECONDS)
    received = _Received()
    last_outage_end = max(
        (
            (o.start_hours + o.duration_hours) * 3600 / chosen.options.compress
            for o in scenario.outages
        ),
        default=0.0,
    )
    deadline = start + max(chosen.arrivals[-1][0], last_outage_end) + DRAIN_SECONDS
    while time.monotonic() < deadline:
        _collect(chosen, net, received, origin_wall)
        cpu.look()
        if len(received.at) >= len(numbers):
            break
        time.sleep(LOOK_SECONDS)
    stop.set()
    outages.join(timeout=60)
    for system in systems:
        system.join(timeout=30)
    cpu.look()
    if progress is not None:
        progress(1.0)
    routes = _routes(chosen, net, sent_ids, origin_wall)
    run = _run(chosen, numbers, received, routes)
    restart_ms = 1000 * sum(restarts) / len(restarts) if restarts else ServiceTimes().restart_ms
    service = replace(calibrated(run), restart_ms=round(restart_ms, 1))
    return Emulation(
        run=replace(run, options=replace(run.options, service=service)),
        service=service,
        **proxy.counts(),
        cpu_seconds=cpu.totals(),
        restart_seconds=restarts,
        wall_seconds=time.monotonic() - began,
    )


def calibrated(run: Run) -> ServiceTimes:
    """The nodes' and the pulls' time in the path of a certificate, as this emulation
    measured it.

    Every direct certificate in flight during no outage took its link's one-way delay
    plus the nodes' work (the API, the outbox, signing and sealing, the receiver's checks
    and store): the median of its latency less its link's expected delay is that work,
    charged to the sender beside the receiver's benchmark figure. A country without a
    node pulls its envelopes one after the other, each a round trip to fetch and one to
    acknowledge plus the hub's and its own work: the median gap between two envelopes
    of one pull, less those four one-way delays, is that work (`pull_ms`). Without such
    certificates, the benchmarks' figures stand.
    """
    benchmarks = ServiceTimes()
    windows = _outage_windows(run)
    residuals: list[float] = []
    for i in range(run.certificates):
        submitted, delivered = run.submitted[i], run.delivered[i]
        if run.route[i] != ROUTE_DIRECT or not math.isfinite(delivered):
            continue
        if any(submitted < end and delivered > start for start, end in windows):
            continue
        origin, destination = run.countries[run.origin[i]], run.countries[run.destination[i]]
        expected = _expected_delay(run, origin, destination)
        residuals.append(delivered - submitted - expected)
    service = benchmarks
    if residuals:
        in_path_ms = 1000 * percentile(sorted(residuals), 0.5)
        send_ms = max(in_path_ms - benchmarks.node_receive_ms, 0.0)
        service = replace(service, node_send_ms=round(send_ms, 3))
    pull_work = _pull_work(run, windows)
    if len(pull_work) >= MIN_PULL_GAPS:
        pull_ms = max(1000 * percentile(sorted(pull_work), 0.5), 0.0)
        service = replace(service, pull_ms=round(pull_ms, 3))
    return service


def _pull_work(run: Run, windows: list[tuple[float, float]]) -> list[float]:
    """Per envelope of a pull, after the first: the time since the one before it, less
    the fetch's and the acknowledgement's round trips. Two envelopes are of one pull when
    the second came less than half a pull interval after the round trips: the next pull
    starts no sooner than a tick after the acknowledgement."""
    scenario = run.scenario
    timers = run.options.timers
    every = (
        timers.pull_interval
        if timers is not None
        else scenario.pull_interval_seconds / run.options.compress
    )
    pullers = {c.code for c in scenario.countries if not c.runs_node}
    delivered: dict[str, list[float]] = {}
    for i in range(run.certificates):
        destination = run.countries[run.destination[i]]
        submitted, at = run.submitted[i], run.delivered[i]
        if destination not in pullers or run.route[i] == ROUTE_DIRECT or not math.isfinite(at):
            continue
        if any(submitted < end and at > start for start, end in windows):
            continue
        delivered.setdefault(destination, []).append(at)
    work: list[float] = []
    for destination, times in delivered.items():
        round_trips = 4 * _expected_delay(run, destination, PARTY_HUB)
        times.sort()
        for before, after in itertools.pairwise(times):
            gap = after - before - round_trips
            if gap < every / 2:
                work.append(gap)
    return work


def _outage_windows(run: Run) -> list[tuple[float, float]]:
    hour = 3600 / run.options.compress
    return [
        (o.start_hours * hour, (o.start_hours + o.duration_hours) * hour)
        for o in run.scenario.outages
    ]


def _expected_delay(run: Run, a: str, b: str) -> float:
    """Seconds one way between two parties (the hub is PARTY_HUB), jitter's mean in."""
    region = {c.code: c.region for c in run.scenario.countries}
    region[PARTY_HUB] = HUB_REGION
    link = run.scenario.links.between(region[a], region[b])
    return (link.latency_ms + link.jitter_ms / 2) / 1000


def _certificates(chosen: Plan, numbers: list[str]) -> list[bytes]:
    """Each certificate's XML: the bundled sample, routed and numbered."""
    phyto = certificate_from_json(sample_model_bytes("phyto"))
    return [
        to_xml_bytes(routed(phyto, exporter=origin, importer=destination, number=number))
        for number, (_, origin, destination) in zip(numbers, chosen.arrivals, strict=True)
    ]


def _outages(
    chosen: Plan,
    net: Network,
    start: float,
    stop: threading.Event,
    restarts: list[float],
    say: Callable[[str], None] | None,
) -> None:
    """Stop and start the parties' processes at the outages' times."""
    hour = 3600 / chosen.options.compress
    events: list[tuple[float, bool, str]] = []
    for outage in chosen.scenario.outages:
        events.append((outage.start_hours * hour, False, outage.party))
        events.append(((outage.start_hours + outage.duration_hours) * hour, True, outage.party))
    events.sort()
    for at, up, party in events:
        wait = start + at - time.monotonic()
        if wait > 0 and stop.wait(wait):
            return
        if say is not None:
            say(f"outage: {party} {'back' if up else 'down'} at {at:.1f} s")
        began = time.monotonic()
        if party == PARTY_HUB:
            net.restart_hub() if up else net.kill_hub()
        elif party == PARTY_REGISTRY:
            net.restart_registry() if up else net.kill_registry()
        elif up:
            net.restart(party)
        else:
            net.kill(party)
        if up and party != PARTY_REGISTRY:
            restarts.append(time.monotonic() - began)


def _collect(chosen: Plan, net: Network, received: _Received, origin_wall: float) -> None:
    """Each importer's received certificates, when its node stored them."""
    for country in (*chosen.nodes, *chosen.hub_only):
        for body in _listed(net, country, "received"):
            if body["number"] not in received.at and body["type"] != "withdrawal":
                stored = datetime.fromisoformat(body["created_at"]).timestamp()
                received.at[body["number"]] = stored - origin_wall


def _listed(net: Network, country: str, direction: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    try:
        while True:
            query = f"direction={direction}&limit=1000&offset={len(found)}"
            page = net.api(country, "GET", f"/certificates?{query}")["certificates"]
            found.extend(page)
            if len(page) < 1000:
                return found
    except DemoError:
        return found  # down (an outage): looked at again next time


@dataclass(frozen=True, slots=True)
class _Route:
    route: int
    attempts: int
    relayed: float  # seconds from the start; nan when direct


def _routes(
    chosen: Plan, net: Network, sent_ids: Mapping[str, int], origin_wall: float
) -> dict[str, _Route]:
    """Each certificate's route and attempts, from its exporter's events."""
    node_countries = set(chosen.nodes)

    def one(number: str) -> tuple[str, _Route] | None:
        origin = number.split("-", 1)[0]
        try:
            body = net.api(origin, "GET", f"/certificates/{sent_ids[number]}")
        except DemoError:
            return None
        kinds = [event["kind"] for event in body["events"]]
        attempts = kinds.count("retry") + (1 if body["state"] == "delivered" else 0)
        relayed = [e["at"] for e in body["events"] if e["kind"] == "relayed"]
        if body["route"] == "hub":
            to = body["to"]
            direct = origin in node_countries and to in node_countries
            route = ROUTE_FALLBACK if direct else ROUTE_HUB
            at = datetime.fromisoformat(relayed[0]).timestamp() - origin_wall if relayed else 0.0
            return number, _Route(route, max(attempts, 1), at)
        return number, _Route(ROUTE_DIRECT, max(attempts, 1), math.nan)

    with ThreadPoolExecutor(max_workers=4) as pool:
        found = [r for r in pool.map(one, sorted(sent_ids)) if r is not None]
    return dict(found)


def _run(
    chosen: Plan, numbers: list[str], received: _Received, routes: Mapping[str, _Route]
) -> Run:
    codes = tuple(sorted(c.code for c in chosen.scenario.countries))
    index = {code: i for i, code in enumerate(codes)}
    run = Run.empty(chosen.scenario, chosen.options, codes, chosen.direct_links, chosen.period)
    for i, ((at, origin, destination), number) in enumerate(
        zip(chosen.arrivals, numbers, strict=True)
    ):
        found = routes.get(number)
        route = found.route if found is not None else ROUTE_DIRECT
        relayed = found.relayed if found is not None and route != ROUTE_DIRECT else math.nan
        attempts = found.attempts if found is not None else 0
        delivered = received.at.get(number, math.inf)
        run.add(i, index[origin], index[destination], at, delivered, route, attempts, relayed)
    return run


class _CpuMeter:
    """CPU seconds each party's processes used (user + system, from /proc), summed over
    every process a party had (a restart starts a new one)."""

    def __init__(self, net: Network) -> None:
        self._net = net
        self._last: dict[int, tuple[str, float]] = {}
        self._ticks = float(_clock_ticks())

    def look(self) -> None:
        for name, process in self._net.processes:
            try:
                fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited: its last look stands
            used = (int(fields[11]) + int(fields[12])) / self._ticks
            self._last[process.pid] = (name, used)

    def totals(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for name, used in self._last.values():
            party = "hub" if name == "hub" else name.removeprefix("node ")
            totals[party] = totals.get(party, 0.0) + used
        return dict(sorted(totals.items()))


def _clock_ticks() -> int:
    import os

    return os.sysconf("SC_CLK_TCK")


def summary_extra(emulation: Emulation) -> dict[str, Any]:
    """What only an emulation measures, for its summary.json (`measured`, beside the
    model's counts of the same run that `outputs` adds)."""
    sent = emulation.run.certificates
    restarts = emulation.restart_seconds
    return {
        "engine": "emulate",
        "measured": {
            "wall_seconds": round(emulation.wall_seconds, 1),
            "restart_seconds_mean": round(sum(restarts) / len(restarts), 3) if restarts else None,
            # Each party's CPU (its processes' user and system time) over the run,
            # divided by all the run's certificates.
            "cpu_ms_per_certificate": {
                party: round(1000 * seconds / sent, 3) if sent else None
                for party, seconds in emulation.cpu_seconds.items()
            },
            "bytes_on_wire": sum(emulation.bytes_sent.values()),
            "connections_reset": sum(emulation.resets.values()),
            "connections_refused": sum(emulation.refused.values()),
        },
    }


def links_rows(emulation: Emulation) -> list[list[str]]:
    """links.csv: per (from, to), the bytes sent, the resets and the refused connections."""
    pairs = sorted({*emulation.bytes_sent, *emulation.resets, *emulation.refused})
    rows = [["from", "to", "bytes", "resets", "refused"]]
    for pair in pairs:
        rows.append(
            [
                pair[0],
                pair[1],
                str(emulation.bytes_sent.get(pair, 0)),
                str(emulation.resets.get(pair, 0)),
                str(emulation.refused.get(pair, 0)),
            ]
        )
    return rows


def service_json(emulation: Emulation) -> str:
    """service.json: the service times `simulate --service` takes."""
    service = emulation.service
    return (
        json.dumps(
            {
                "node_send_ms": service.node_send_ms,
                "node_receive_ms": service.node_receive_ms,
                "hub_ms": service.hub_ms,
                "pull_ms": service.pull_ms,
                "restart_ms": service.restart_ms,
            },
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )
