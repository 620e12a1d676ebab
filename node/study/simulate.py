"""`ephyto study simulate`: a discrete-event model of a scenario (pure: no clock, no I/O).

SimPy is the event loop; the hub's FIFO queue, the state certificates share, is entered
as SimPy events in time order. Every certificate follows the node's own policy code:
`node.outbox.policy.Fallback.choose` picks the route before every attempt and
`Backoff.next_attempt` times every retry, built from the scenario's `[node]` settings
exactly as node/service.py builds them; the hub's pushes are retried with the hub
pusher's own default backoff (node/hub/push.py), and the costs come from the hub's own
pricing (`node.hub.accounts.price_of`, `period_key`). So the model cannot drift from
the product's policy; what it models around that policy (service times, the network,
outages, pulls) is stated in docs/study.md ("Simulate").

Randomness comes only from `random.Random` seeded from the run's seed: the same scenario
and seed give the same run, event for event.
"""

from __future__ import annotations

import bisect
import inspect
import json
import math
import random
from array import array
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Final

import simpy

from node.errors import InputError
from node.hub.accounts import AccountPolicy, period_key, price_of
from node.hub.push import HubPusher
from node.outbox.policy import Backoff, Fallback
from node.study.scenario import PARTY_HUB, PARTY_REGISTRY, GeneratedTrade, Scenario
from node.study.tables import RUN_TABLES
from node.study.timers import Timers, check_compress, simulated
from node.study.topology import count
from node.study.trade import Flows, generate_flows, monthly

# Time 0 of a run. 2025 is not a leap year, so its twelve calendar months are the
# scenario's twelve monthly weights and the hub's monthly fee periods line up with them.
EPOCH: Final = datetime(2025, 1, 1, tzinfo=UTC)
DAY: Final = 86_400.0
YEAR: Final = 365 * DAY
# A certificate not delivered this long after the period ends is counted undelivered
# (a link with loss 1, say); it bounds the run.
DRAIN_LIMIT: Final = 90 * DAY
# ASSUMPTION: the hub sits in Europe (the IPPC Hub is run by UNICC).
HUB_REGION: Final = "europe"
MAX_SCALE: Final = 10.0
MIN_SCALE: Final = 1e-6
# messages.csv keeps every certificate up to this many, else a seeded sample this size.
MESSAGE_SAMPLE: Final = 100_000
PROGRESS_STEPS: Final = 200
# How long a client keeps an idle connection for the next request: aiohttp's
# TCPConnector default, which the node's clients leave as it is (node/transport). A
# request on a connection idle longer first pays a TLS handshake: a round trip more.
KEEPALIVE_SECONDS: Final = 15.0

# The hub pusher's own retry timing: its constructor's default, read rather than copied.
HUB_PUSH_BACKOFF: Final[Backoff] = inspect.signature(HubPusher).parameters["backoff"].default

ROUTE_DIRECT: Final = 0
ROUTE_HUB: Final = 1  # through the hub from the first attempt
ROUTE_FALLBACK: Final = 2  # through the hub after failed direct attempts
ROUTE_NAMES: Final = ("direct", "hub", "hub-fallback")


@dataclass(frozen=True, slots=True)
class ServiceTimes:
    """Milliseconds of work per certificate; defaults from docs/operations.md "Performance".

    `ephyto bench exchange` on 2 shared cores: 3.7 ms of CPU on the sender and 3.1 ms on
    the receiver per certificate. `ephyto bench hub`: 15 ms of hub CPU per relayed
    envelope on PostgreSQL (25 to 29 ms on SQLite). The hub is a single FIFO server (a
    queue, so queueing shows); a node carries well over 100 certificates/s against the
    under 1/s a country sends, so its work is a delay, not a queue.
    """

    node_send_ms: float = 3.7
    node_receive_ms: float = 3.1
    hub_ms: float = 15.0
    # Per envelope a pull brings, beyond its link's round trips: the hub answering the
    # fetch and the acknowledgement, the puller's checks and store. The receiver's
    # benchmark figure until `ephyto study emulate` measures it (on 2 shared cores it
    # measured 26 to 28 ms: the hub's share and the sharing are not in the benchmark).
    pull_ms: float = 3.1
    # From a party's start to its first answer after an outage: a node process reads its
    # store and directory first. ASSUMPTION until `ephyto study emulate` measures it (it
    # writes its measured figure to service.json, which `simulate --service` reads).
    restart_ms: float = 2_000.0

    def __post_init__(self) -> None:
        for name in SERVICE_KEYS:
            value = getattr(self, name)
            if not math.isfinite(value) or not 0.0 <= value <= 3_600_000.0:
                raise InputError(f"{name}: {value!r}; between 0 and 3,600,000 ms")


SERVICE_KEYS: Final = ("node_send_ms", "node_receive_ms", "hub_ms", "pull_ms", "restart_ms")
MAX_SERVICE_BYTES: Final = 64 * 1024


def service_times_from_json(data: bytes) -> ServiceTimes:
    """`simulate --service FILE`: service times as `emulate` writes them (service.json), a
    JSON object of milliseconds; keys left out keep the benchmarks' figures."""
    if len(data) > MAX_SERVICE_BYTES:
        raise InputError(f"--service: larger than {MAX_SERVICE_BYTES:,} bytes")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise InputError(f"--service: not JSON: {e}") from None
    if not isinstance(document, dict):
        raise InputError('--service: a JSON object of milliseconds, e.g. {"hub_ms": 15}')
    unknown = sorted(set(document) - set(SERVICE_KEYS))
    if unknown:
        raise InputError(f"--service: unknown key {unknown[0]!r}; known: {', '.join(SERVICE_KEYS)}")
    values: dict[str, float] = {}
    for key, value in document.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"--service: {key}: {value!r} is not a number of milliseconds")
        values[key] = float(value)
    try:
        return ServiceTimes(**values)
    except InputError as e:
        raise InputError(f"--service: {e}") from None


@dataclass(frozen=True, slots=True)
class Options:
    seed: int = 0
    scale: float = 1.0  # every flow's volume times this
    service: ServiceTimes = field(default_factory=ServiceTimes)
    # The scenario's clock divided by this (node/study/timers.py); `timers`, when given,
    # are the exact timers to run with (what an emulation's processes ran with).
    compress: float = 1.0
    timers: Timers | None = None
    # Imported trade's flows, read from its file by the caller (node.study.measures
    # imported_flows); None for generated trade, which the model generates itself.
    flows: Flows | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_compress(self.compress)
        if self.timers is not None and self.timers.compress != self.compress:
            raise InputError("timers: made for another compression than the run's")
        if not math.isfinite(self.scale) or not MIN_SCALE <= self.scale <= MAX_SCALE:
            raise InputError(f"--scale: {self.scale!r}; between {MIN_SCALE:g} and {MAX_SCALE:g}")
        if not 0 <= self.seed < 2**63:
            raise InputError(f"--seed: {self.seed}; between 0 and 2**63 - 1")


@dataclass(frozen=True, slots=True)
class Run:
    """One run's certificates, one entry per certificate in every array (delivery order)."""

    scenario: Scenario
    options: Options
    countries: tuple[str, ...]  # sorted; origin/destination index into it
    direct_links: frozenset[frozenset[str]]
    period_seconds: float
    ids: array[int]  # numbered in the order submitted, from 0
    origin: array[int]
    destination: array[int]
    submitted: array[float]
    delivered: array[float]  # math.inf: not delivered within DRAIN_LIMIT
    hub_stored: array[float]  # when the hub held it; math.nan on the direct route
    hub_wait: array[float]  # time queued at the hub before its service; 0 direct
    route: array[int]
    attempts: array[int]

    @property
    def certificates(self) -> int:
        return len(self.submitted)

    @classmethod
    def empty(
        cls,
        scenario: Scenario,
        options: Options,
        countries: tuple[str, ...],
        direct_links: frozenset[frozenset[str]],
        period_seconds: float,
    ) -> Run:
        """A run with no certificate yet: each engine `add`s its certificates to one."""
        return cls(
            scenario=scenario,
            options=options,
            countries=countries,
            direct_links=direct_links,
            period_seconds=period_seconds,
            ids=array("L"),
            origin=array("H"),
            destination=array("H"),
            submitted=array("d"),
            delivered=array("d"),
            hub_stored=array("d"),
            hub_wait=array("d"),
            route=array("b"),
            attempts=array("I"),
        )

    def add(
        self,
        cid: int,
        origin: int,
        destination: int,
        submitted: float,
        delivered: float,
        route: int,
        attempts: int,
        stored: float = math.nan,
        wait: float = 0.0,
    ) -> None:
        """One certificate; `origin` and `destination` index `countries`."""
        self.ids.append(cid)
        self.origin.append(origin)
        self.destination.append(destination)
        self.submitted.append(submitted)
        self.delivered.append(delivered)
        self.hub_stored.append(stored)
        self.hub_wait.append(wait)
        self.route.append(route)
        self.attempts.append(attempts)


@dataclass(slots=True)
class _Pull:
    """A puller's pull under way: when the hub listed for it, when its next fetch can go."""

    listed: float
    free: float


class _Windows:
    """A party's down intervals [start, end), merged and sorted."""

    def __init__(self, spans: Sequence[tuple[float, float]]) -> None:
        merged: list[tuple[float, float]] = []
        for start, end in sorted(s for s in spans if s[1] > s[0]):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        self.starts = [s for s, _ in merged]
        self.ends = [e for _, e in merged]

    def down(self, t: float) -> bool:
        i = bisect.bisect_right(self.starts, t) - 1
        return i >= 0 and t < self.ends[i]

    def up_from(self, t: float) -> float:
        """The earliest time at or after `t` the party is up."""
        i = bisect.bisect_right(self.starts, t) - 1
        return self.ends[i] if i >= 0 and t < self.ends[i] else t


# Imported trade has no seed of its own: its monthly spread draws from this one, so the
# same file gives the same spread whatever the run's seed (generated trade keeps its own).
IMPORTED_TRADE_SEED: Final = 0


def _trade_flows(scenario: Scenario, options: Options) -> tuple[Flows, int]:
    """The scenario's flows and the seed of their monthly spread: generated here, or
    imported and passed in `options.flows` (the caller reads the file)."""
    trade = scenario.trade
    if isinstance(trade, GeneratedTrade):
        if options.flows is not None:
            raise InputError("simulate: flows are passed in for imported trade only")
        return generate_flows(scenario.countries, trade), trade.seed
    if options.flows is None:
        raise InputError(
            f"simulate: the scenario imports its trade ({trade.path}): read it first "
            "(node.study.measures.imported_flows) and pass the flows in"
        )
    unknown = sorted({c for pair in options.flows.volumes for c in pair} - set(scenario.codes))
    if unknown:
        raise InputError(f"simulate: the imported trade names {unknown[0]}, not in the scenario")
    return options.flows, IMPORTED_TRADE_SEED


class _Model:
    def __init__(self, scenario: Scenario, options: Options) -> None:
        trade = scenario.trade
        self.scenario = scenario
        self.options = options
        self.env = simpy.Environment()
        self.rng = random.Random(f"simulate:{options.seed}")
        compress = options.compress
        self.compress = compress
        self.timers = options.timers or simulated(scenario, compress)
        self.period = scenario.period_days * DAY / compress
        self.horizon = self.period + DRAIN_LIMIT / compress
        by_code = {c.code: c for c in scenario.countries}
        self.codes = tuple(sorted(by_code))
        self.index = {code: i for i, code in enumerate(self.codes)}
        self.region = {c.code: c.region for c in scenario.countries}
        self.runs_node = {c.code: c.runs_node for c in scenario.countries}
        self.joins = {c.code: c.joins_day * DAY / compress for c in scenario.countries}
        self.flows, trade_seed = _trade_flows(scenario, options)
        self.monthly = monthly(self.flows, trade.seasonal_profile, trade_seed)
        topology = count(scenario.topology, scenario.countries, self.flows, scenario.top_k)
        self.direct = topology.direct_links
        # A hub is there to fall back to unless the topology is all bilateral.
        self.has_hub = scenario.topology != "bilateral"
        timers = self.timers
        # As node/service.py builds the worker's policy from node.toml's settings.
        self.backoff = Backoff(
            base=timedelta(seconds=timers.retry_base),
            factor=timers.retry_factor,
            cap=timedelta(seconds=timers.retry_cap),
        )
        self.fallback = Fallback(
            attempts=timers.fallback_attempts, after=timedelta(seconds=timers.fallback_after)
        )
        service = options.service
        self.send_s = service.node_send_ms / 1000
        self.receive_s = service.node_receive_ms / 1000
        self.hub_s = service.hub_ms / 1000
        self.pull_s = service.pull_ms / 1000
        self.restart_s = service.restart_ms / 1000
        self.hub_free = 0.0  # when the hub's single server is next free (FIFO)
        self.down = self._outage_windows()
        self.pull_phase = {code: self.rng.random() for code in self.codes}
        # Each node's outbox ticks from its own start: a retry goes at the first tick
        # after its backoff.
        self.tick_phase = {code: self.rng.random() * timers.outbox_tick for code in self.codes}
        # When each (client, server) connection was last used (keep-alive).
        self.last_used: dict[tuple[str, str], float] = {}
        # Each puller's current pull (node/inbox/puller.py: list the headers, then for
        # each envelope fetch it, store it and acknowledge it, one after another).
        self.pulls: dict[str, _Pull] = {}
        self.next_id = 0
        self.out = Run.empty(scenario, options, self.codes, self.direct, self.period)

    def _outage_windows(self) -> dict[str, _Windows]:
        spans: dict[str, list[tuple[float, float]]] = {c: [] for c in (*self.codes, PARTY_HUB)}
        for outage in self.scenario.outages:
            start = outage.start_hours * 3600 / self.compress
            end = start + outage.duration_hours * 3600 / self.compress
            if outage.party == PARTY_REGISTRY:
                # A stale directory changes nothing until the last timestamp expires; then
                # a node holds its outbox and lets no partner in until the registry is
                # back (and its next directory refresh). Countries without a node (their
                # own system, the hub) go on.
                for code in self.codes:
                    if self.runs_node[code]:
                        validity = self.timers.timestamp_validity
                        spans[code].append((start + validity, end + self.timers.refresh))
            else:
                # A process back from an outage answers once it has started.
                spans[outage.party].append((start, end + self.restart_s))
        return {party: _Windows(s) for party, s in spans.items()}

    # -- the network ---------------------------------------------------------------

    def _one_way(self, region_a: str, region_b: str) -> tuple[float, float]:
        """A one-way delay (s), the latency plus a uniform share of the jitter, and the loss."""
        link = self.scenario.links.between(region_a, region_b)
        return (link.latency_ms + self.rng.random() * link.jitter_ms) / 1000, link.loss

    def _handshake(self, client: str, server: str, now: float, delay: float) -> float:
        """The extra time a request from `client` to `server` at `now` spends opening a
        connection (none on one kept alive)."""
        last = self.last_used.get((client, server))
        self.last_used[(client, server)] = now
        return 0.0 if last is not None and now - last <= KEEPALIVE_SECONDS else 2 * delay

    def _backoff_wait(self, backoff: Backoff, failed: int, now: float) -> float:
        at = EPOCH + timedelta(seconds=now)
        return (backoff.next_attempt(failed, at, self.rng) - at).total_seconds()

    def _retry_at(self, origin: str, failed: int, now: float) -> float:
        """When the sender's outbox tries again: its backoff, then its next tick."""
        due = now + self._backoff_wait(self.backoff, failed, now)
        tick = self.timers.outbox_tick
        phase = self.tick_phase[origin]
        return phase + math.ceil((due - phase) / tick) * tick

    # -- processes -------------------------------------------------------------------

    def run(self, progress: Callable[[float], None] | None) -> None:
        for pair in sorted(self.monthly):
            self.env.process(self._pair(pair[0], pair[1], self.monthly[pair]))
        if progress is not None:
            self.env.process(self._progress(progress))
        self.env.run()

    def _progress(self, report: Callable[[float], None]) -> Generator[simpy.Event, Any, None]:
        step = self.period / PROGRESS_STEPS
        for i in range(1, PROGRESS_STEPS + 1):
            yield self.env.timeout(step)
            report(i / PROGRESS_STEPS)

    def _pair(
        self, origin: str, destination: str, months: Sequence[int]
    ) -> Generator[simpy.Event, Any, None]:
        """The pair's certificates, submitted at their times."""
        env = self.env
        for t in self.pair_times(origin, destination, months):
            yield env.timeout(t - env.now)
            self._submit(self.next_id, origin, destination)
            self.next_id += 1

    def pair_times(self, origin: str, destination: str, months: Sequence[int]) -> list[float]:
        """The pair's submission times: Poisson arrivals within each month of the year's
        spread, drawn on the scenario's clock, then compressed."""
        # Arrivals draw from their own stream, so they do not depend on delivery events.
        rng = random.Random(f"arrivals:{self.options.seed}:{origin}:{destination}")
        opens = max(self.joins[origin], self.joins[destination]) * self.compress
        period = self.period * self.compress
        month = YEAR / 12
        slot = 0
        times: list[float] = []
        while slot * month < period:
            low = slot * month
            high = min(low + month, period)
            expected = months[slot % 12] * self.options.scale * (high - low) / month
            whole = int(expected)
            n = whole + (1 if rng.random() < expected - whole else 0)
            # n uniform times in the month: a Poisson process given its count.
            for t in sorted(low + rng.random() * (high - low) for _ in range(n)):
                if t >= opens:
                    times.append(t / self.compress)
            slot += 1
        return times

    def _submit(self, cid: int, origin: str, destination: str) -> None:
        """A certificate submitted now: its way to the hub or the partner.

        Everything up to the hub depends only on the outage windows and the seeded
        draws, so it is worked out at once on a local clock; only the hub's queue is
        shared, so the certificate joins it as a SimPy event at the time it reaches the
        hub, in time order with every other. (One event per certificate and hop, not a
        process: several times faster at a year's volume.)
        """
        now = submitted = self.env.now
        record = partial(self._record, cid, origin, destination, submitted)
        sender = self.down[origin]
        receiver = self.down[destination]
        hub = self.down[PARTY_HUB]
        attempts = 0
        failed = 0
        failing_since: float | None = None
        route = ROUTE_HUB
        if self.runs_node[origin]:
            direct = frozenset((origin, destination)) in self.direct
            while True:
                choice = self.fallback.choose(
                    has_endpoint=direct,
                    has_hub=self.has_hub,
                    failed_attempts=failed,
                    failing_for=timedelta(
                        seconds=0.0 if failing_since is None else now - failing_since
                    ),
                )
                if choice.route == "hub":
                    route = ROUTE_FALLBACK if failed else ROUTE_HUB
                    break
                now = sender.up_from(now)
                if now > self.horizon:
                    record(math.inf, ROUTE_DIRECT, attempts)
                    return
                attempts += 1
                delay, loss = self._one_way(self.region[origin], self.region[destination])
                now += self.send_s
                now += self._handshake(origin, destination, now, delay) + delay
                if (
                    choice.route == "direct"
                    and not receiver.down(now)
                    and self.rng.random() >= loss
                ):
                    record(now + self.receive_s, ROUTE_DIRECT, attempts)
                    return
                # Refused by a partner that is down, or lost: noticed a delay later (a
                # reset); then the worker's retry timing.
                now += delay
                failed += 1
                if failing_since is None:
                    failing_since = now
                now = self._retry_at(origin, failed, now)
        # Through the hub: the sender retries a hub that is down or lost the same way.
        while True:
            now = sender.up_from(now)
            if now > self.horizon:
                record(math.inf, route, attempts)
                return
            attempts += 1
            delay, loss = self._one_way(self.region[origin], HUB_REGION)
            now += self.send_s
            now += self._handshake(origin, PARTY_HUB, now, delay) + delay
            if not hub.down(now) and self.rng.random() >= loss:
                break
            now += delay
            failed += 1
            now = self._retry_at(origin, failed, now)
        arrival = self.env.timeout(now - self.env.now)
        arrival.callbacks.append(lambda _: self._at_hub(record, destination, route, attempts))

    def _at_hub(
        self, record: Callable[..., None], destination: str, route: int, attempts: int
    ) -> None:
        """The envelope reaches the hub now: queued FIFO for its one server, then held."""
        now = self.env.now
        start = max(now, self.hub_free)
        self.hub_free = stored = start + self.hub_s
        delivered = self._from_hub(destination, stored)
        record(delivered, route, attempts, stored, start - now)

    def _from_hub(self, destination: str, now: float) -> float:
        """When the envelope held from `now` reaches `destination`: pushed to a node,
        pulled by the rest."""
        receiver = self.down[destination]
        hub = self.down[PARTY_HUB]
        if not self.runs_node[destination]:
            return self._pulled(destination, receiver, hub, self.timers.pull_interval, now)
        # A node also polls the hub itself (node.toml hub_poll_seconds): the push or the
        # poll, whichever gets there first.
        before = self.pulls.get(destination)
        before = None if before is None else replace(before)
        polled = self._pulled(destination, receiver, hub, self.timers.node_poll, now)
        failed = 0
        while True:
            ready = hub.up_from(now)
            if ready >= polled or now > self.horizon:
                return polled
            delay, loss = self._one_way(HUB_REGION, self.region[destination])
            now = ready + delay
            if not receiver.down(now) and self.rng.random() >= loss:
                pushed = now + self.receive_s
                if pushed < polled:
                    # Pushed first: the poll never fetched it, its pull is as it was.
                    if before is None:
                        self.pulls.pop(destination, None)
                    else:
                        self.pulls[destination] = before
                return min(pushed, polled)
            now += delay
            failed += 1
            now = min(now + self._backoff_wait(HUB_PUSH_BACKOFF, failed, now), max(polled, now))

    def _pulled(
        self, destination: str, receiver: _Windows, hub: _Windows, every: float, now: float
    ) -> float:
        """When `destination`'s pulls, on its timer, first bring the envelope held from now.

        A pull lists what the hub holds, then fetches, stores and acknowledges each
        envelope in turn (a round trip each way, and `pull_ms` of the hub's and the
        puller's work between): an envelope listed in the pull under
        way waits for those before it; one held after that pull listed waits for the
        next tick after the pull ends (the scheduler skips ticks while a pull runs). A
        pull fails when the puller or the hub is down or a leg is lost, and is tried at
        the next tick.
        """
        pull = self.pulls.get(destination)
        region = self.region[destination]
        if pull is not None and now <= pull.listed:
            delay, _ = self._one_way(region, HUB_REGION)
            delivered = pull.free + 2 * delay + self.pull_s
            pull.free = delivered + 2 * delay  # its acknowledgement
            return delivered
        phase = self.pull_phase[destination] * every
        earliest = now if pull is None else max(now, pull.free)
        t = phase + math.ceil((earliest - phase) / every) * every
        while t <= self.horizon:
            delay, loss = self._one_way(region, HUB_REGION)
            # Six legs: the list, the fetch and the acknowledgement, there and back.
            lost = self.rng.random() < 1 - (1 - loss) ** 6
            if not receiver.down(t) and not hub.down(t) and not lost:
                listed = t + 2 * delay
                delivered = listed + 2 * delay + self.pull_s
                self.pulls[destination] = _Pull(listed=t + delay, free=delivered + 2 * delay)
                return delivered
            t += every
        return math.inf

    def _record(
        self,
        cid: int,
        origin: str,
        destination: str,
        submitted: float,
        delivered: float,
        route: int,
        attempts: int,
        stored: float = math.nan,
        wait: float = 0.0,
    ) -> None:
        index = self.index
        self.out.add(
            cid, index[origin], index[destination], submitted, delivered, route, attempts,
            stored, wait,
        )  # fmt: skip


def planned_arrivals(scenario: Scenario, options: Options) -> list[tuple[float, str, str]]:
    """Every certificate the run submits, (time, origin, destination) in submission order:
    the certificates `simulate` numbers from 0, which `emulate` sends."""
    model = _Model(scenario, options)
    planned = [
        (t, origin, destination)
        for (origin, destination), months in sorted(model.monthly.items())
        for t in model.pair_times(origin, destination, months)
    ]
    planned.sort(key=lambda a: a[0])  # stable: a tie keeps the pairs' order, as SimPy does
    return planned


def simulate(
    scenario: Scenario, options: Options, progress: Callable[[float], None] | None = None
) -> Run:
    """Run the scenario; `progress` is told the share of the period simulated so far."""
    model = _Model(scenario, options)
    model.run(progress)
    return model.out


# -- what a run shows (pure) ---------------------------------------------------------


def percentile(sorted_values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of already sorted values (nan when there are none)."""
    if not sorted_values:
        return math.nan
    rank = max(math.ceil(share * len(sorted_values)), 1)
    return sorted_values[rank - 1]


def _latencies(run: Run) -> list[float]:
    return [d - s for s, d in zip(run.submitted, run.delivered, strict=True)]


def pairs_rows(run: Run) -> list[list[str]]:
    """pairs.csv: per pair and route, the count and latency percentiles (delivered only)."""
    groups: dict[tuple[int, int, int], list[float]] = {}
    undelivered: dict[tuple[int, int, int], int] = {}
    for i, latency in enumerate(_latencies(run)):
        key = (run.origin[i], run.destination[i], run.route[i])
        if math.isinf(latency):
            undelivered[key] = undelivered.get(key, 0) + 1
            groups.setdefault(key, [])
        else:
            groups.setdefault(key, []).append(latency)
    rows = [list(RUN_TABLES["pairs.csv"])]
    for (o, d, r), values in sorted(
        groups.items(), key=lambda g: (run.countries[g[0][0]], run.countries[g[0][1]], g[0][2])
    ):
        values.sort()
        total = len(values) + undelivered.get((o, d, r), 0)
        within = bisect.bisect_right(values, 3600.0)
        rows.append(
            [
                run.countries[o],
                run.countries[d],
                ROUTE_NAMES[r],
                str(total),
                str(undelivered.get((o, d, r), 0)),
                _seconds(percentile(values, 0.50)),
                _seconds(percentile(values, 0.95)),
                _seconds(percentile(values, 0.99)),
                f"{within / total:.4f}",
            ]
        )
    return rows


def _seconds(value: float) -> str:
    return "" if math.isnan(value) or math.isinf(value) else f"{value:.3f}"


def _involved(run: Run, party: str, i: int) -> bool:
    if party == PARTY_HUB:
        return run.route[i] != ROUTE_DIRECT
    if party == PARTY_REGISTRY:
        node = {c.code: c.runs_node for c in run.scenario.countries}
        return node[run.countries[run.origin[i]]] or node[run.countries[run.destination[i]]]
    return party in (run.countries[run.origin[i]], run.countries[run.destination[i]])


def outages_rows(run: Run) -> list[list[str]]:
    """outages.csv: per outage, the certificates it delayed, by how much, and how widely.

    A certificate is affected when it involves the party (hub-routed for the hub, either
    end for a country, a country with a node for the registry) and was in flight during
    the outage; delayed when its latency exceeds its pair's p99 among certificates in
    flight during no outage; its delay is the excess over that pair's p50.
    """
    hour = 3600 / run.options.compress
    windows = [
        (o.start_hours * hour, (o.start_hours + o.duration_hours) * hour)
        for o in run.scenario.outages
    ]
    latencies = _latencies(run)
    clear: dict[tuple[int, int], list[float]] = {}
    everything: list[float] = []
    for i, latency in enumerate(latencies):
        s, d = run.submitted[i], run.delivered[i]
        if not any(s < end and d > start for start, end in windows) and math.isfinite(latency):
            clear.setdefault((run.origin[i], run.destination[i]), []).append(latency)
            everything.append(latency)
    everything.sort()
    baseline: dict[tuple[int, int], tuple[float, float]] = {}
    for pair, values in clear.items():
        values.sort()
        baseline[pair] = (percentile(values, 0.5), percentile(values, 0.99))
    overall = (percentile(everything, 0.5), percentile(everything, 0.99))
    rows = [list(RUN_TABLES["outages.csv"])]
    for outage, (start, end) in zip(run.scenario.outages, windows, strict=True):
        affected = 0
        delays: list[float] = []
        pairs: set[tuple[int, int]] = set()
        last = -math.inf
        for i, latency in enumerate(latencies):
            if not (run.submitted[i] < end and run.delivered[i] > start):
                continue
            if not _involved(run, outage.party, i):
                continue
            affected += 1
            pair = (run.origin[i], run.destination[i])
            p50, p99 = baseline.get(pair, overall)
            if math.isnan(p99) or latency > p99:
                delays.append(latency - (0.0 if math.isnan(p50) else p50))
                pairs.add(pair)
                last = max(last, run.delivered[i])
        delays.sort()
        rows.append(
            [
                outage.party,
                f"{outage.start_hours:g}",
                f"{outage.duration_hours:g}",
                str(affected),
                str(len(delays)),
                _seconds(percentile(delays, 0.5)),
                _seconds(percentile(delays, 0.95)),
                _seconds(delays[-1] if delays else math.nan),
                str(len(pairs)),
                "" if not delays or math.isinf(last) else f"{max(last - end, 0.0) / hour:.3f}",
            ]
        )
    return rows


def hub_holdings_rows(run: Run) -> list[list[str]]:
    """hub_holdings.csv: envelopes the hub held at the end of every hour."""
    stored = sorted(t for t in run.hub_stored if not math.isnan(t))
    done = sorted(
        d for d, t in zip(run.delivered, run.hub_stored, strict=True) if not math.isnan(t)
    )
    last = max([run.period_seconds, *(d for d in done if math.isfinite(d))])
    rows = [list(RUN_TABLES["hub_holdings.csv"])]
    length = 3600.0 / run.options.compress  # an hour of the scenario's clock
    for hour in range(1, math.ceil(last / length) + 1):
        t = hour * length
        held = bisect.bisect_right(stored, t) - bisect.bisect_right(done, t)
        rows.append([str(hour), str(held)])
    return rows


def hub_envelopes_by_period(run: Run) -> dict[str, dict[datetime, int]]:
    """Per sender, the envelopes it sent through the hub in each calendar month (its start)."""
    month_starts = [datetime(EPOCH.year + m // 12, m % 12 + 1, 1, tzinfo=UTC) for m in range(1200)]
    offsets = [(m - EPOCH).total_seconds() for m in month_starts]
    counts: dict[str, dict[datetime, int]] = {}
    for i in range(run.certificates):
        if run.route[i] == ROUTE_DIRECT or math.isnan(run.hub_stored[i]):
            continue
        # On the scenario's clock: a compressed run's months are the scenario's.
        stored = run.hub_stored[i] * run.options.compress
        month = month_starts[bisect.bisect_right(offsets, stored) - 1]
        by_month = counts.setdefault(run.countries[run.origin[i]], {})
        by_month[month] = by_month.get(month, 0) + 1
    return counts


def hub_fees(policy: AccountPolicy, by_month: Mapping[datetime, int]) -> tuple[int, int]:
    """What the hub's pricing charges for these envelopes, and how many its cap refuses.

    The hub's own code: `period_key` groups the months into the policy's periods and
    `price_of` prices the nth envelope of a period, as the hub's ledger charges them.
    """
    periods: dict[str, int] = {}
    for month, n in by_month.items():
        key = period_key(policy.period, month)
        periods[key] = periods.get(key, 0) + n
    total = 0
    refused = 0
    for used in periods.values():
        for nth in range(1, used + 1):
            price = price_of(policy, nth)
            if price is None:
                refused += used - nth + 1
                break
            total += price
    return total, refused


def costs_rows(run: Run) -> list[list[str]]:
    """costs.csv: per country and fee model, the hub fees for what it sent through the
    hub (the sender pays, as the hub's ledger charges the delivering NPPO) against a node's
    running cost for the period."""
    costs = run.scenario.costs
    running = round(costs.node_running_cost_per_year * run.scenario.period_days * DAY / YEAR)
    sent = hub_envelopes_by_period(run)
    rows = [list(RUN_TABLES["costs.csv"])]
    for country in run.scenario.countries:
        by_month = sent.get(country.code, {})
        for model in costs.fee_models:
            fees, refused = hub_fees(model.policy, by_month)
            rows.append(
                [
                    country.code,
                    "yes" if country.runs_node else "no",
                    model.name,
                    model.policy.currency,
                    str(sum(by_month.values())),
                    str(fees),
                    str(refused),
                    str(running),
                    costs.currency,
                ]
            )
    return rows


def message_rows(run: Run) -> tuple[list[list[str]], bool]:
    """messages.csv: every certificate, or a seeded sample of MESSAGE_SAMPLE (True)."""
    rows_in: Sequence[int] = range(run.certificates)
    sampled = run.certificates > MESSAGE_SAMPLE
    if sampled:
        rows_in = random.Random(f"sample:{run.options.seed}").sample(rows_in, MESSAGE_SAMPLE)
    ids = sorted(rows_in, key=lambda i: run.ids[i])
    rows = [list(RUN_TABLES["messages.csv"])]
    for i in ids:
        rows.append(
            [
                f"C{run.ids[i] + 1:09d}",
                run.countries[run.origin[i]],
                run.countries[run.destination[i]],
                _seconds(run.submitted[i]),
                _seconds(run.delivered[i]),
                ROUTE_NAMES[run.route[i]],
                str(run.attempts[i]),
            ]
        )
    return rows, sampled


def summary(run: Run, version: str) -> dict[str, Any]:
    """summary.json: the run's totals, with what identifies it (no timestamps)."""
    latencies = _latencies(run)
    by_route: dict[str, list[float]] = {name: [] for name in ROUTE_NAMES}
    undelivered = 0
    for latency, route in zip(latencies, run.route, strict=True):
        if math.isinf(latency):
            undelivered += 1
        else:
            by_route[ROUTE_NAMES[route]].append(latency)
    routes: dict[str, Any] = {}
    for name, values in by_route.items():
        values.sort()
        routes[name] = {
            "certificates": len(values),
            "p50_seconds": _rounded(percentile(values, 0.5)),
            "p95_seconds": _rounded(percentile(values, 0.95)),
            "p99_seconds": _rounded(percentile(values, 0.99)),
            "share_within_1h": round(bisect.bisect_right(values, 3600.0) / len(values), 6)
            if values
            else None,
        }
    waits = sorted(w for w, r in zip(run.hub_wait, run.route, strict=True) if r != ROUTE_DIRECT)
    held = [int(row[1]) for row in hub_holdings_rows(run)[1:]]
    service = run.options.service
    return {
        "scenario": run.scenario.name,
        "code_version": version,
        "seed": run.options.seed,
        "scale": run.options.scale,
        "period_days": run.scenario.period_days,
        "topology": run.scenario.topology,
        "countries": len(run.countries),
        "direct_links": len(run.direct_links),
        "service_ms": {
            "node_send": service.node_send_ms,
            "node_receive": service.node_receive_ms,
            "hub": service.hub_ms,
            "pull": service.pull_ms,
            "restart": service.restart_ms,
        },
        "compress": run.options.compress,
        "timers": (run.options.timers or simulated(run.scenario, run.options.compress)).to_json(),
        "certificates": run.certificates,
        "undelivered": undelivered,
        "by_route": routes,
        "hub_queue_wait_seconds": {
            "mean": _rounded(sum(waits) / len(waits)) if waits else None,
            "p99": _rounded(percentile(waits, 0.99)),
            "max": _rounded(waits[-1]) if waits else None,
        },
        "hub_most_envelopes_held": max(held, default=0),
        "attempts_total": sum(run.attempts),
    }


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else round(value, 6)
