"""What `ephyto study emulate` works out before it starts a process (node/study/emulate.py
`plan`), and the service times it reads off a finished run (`calibrated`). No process."""

from __future__ import annotations

import math
from importlib import resources

import pytest

from node.errors import InputError
from node.study.emulate import (
    MAX_CERTIFICATES,
    MAX_COUNTRIES,
    MAX_WALL_SECONDS,
    EmulateOptions,
    calibrated,
    plan,
)
from node.study.scenario import GeneratedTrade, Scenario, parse_scenario
from node.study.simulate import (
    ROUTE_DIRECT,
    ROUTE_FALLBACK,
    ROUTE_HUB,
    Options,
    Run,
    ServiceTimes,
    simulate,
)
from node.study.timers import emulated
from node.study.topology import count
from node.study.trade import generate_flows

EMULATE_SMALL = (resources.files("node.study") / "scenarios" / "emulate-small.toml").read_bytes()

# emulate-small's shape: four nodes, two countries through the hub only.
SIX = """
  { code = "NL", region = "europe", node = true },
  { code = "KE", region = "africa", node = true },
  { code = "US", region = "north-america", node = true },
  { code = "CN", region = "asia", node = true },
  { code = "CL", region = "latin-america", node = false },
  { code = "FR", region = "europe", node = false },
"""
THIRTEEN = ",\n".join(
    f'{{ code = "{code}", region = "europe", node = true }}'
    for code in ["AT", "BE", "DE", "DK", "ES", "FI", "FR", "GR", "IE", "IT", "LU", "NL", "PT"]
)


def scenario(
    *,
    countries: str = SIX,
    kind: str = "hybrid",
    top_k: int = 5,
    per_year: int = 730_000,
    days: float = 1,
    extra: str = "",
    trade: str = "",
    outage: str = "hub",
) -> Scenario:
    trade = trade or f'source = "generated"\nseed = 7\ncertificates_per_year = {per_year}'
    text = f"""name = "emulate-test"
period_days = {days}
countries = [{countries}]
[topology]
kind = "{kind}"
top_k = {top_k}
[trade]
{trade}
[[outages]]
party = "{outage}"
start_hours = 6
duration_hours = 2
{extra}
"""
    return parse_scenario(text.encode())


AT_480 = EmulateOptions(compress=480.0)


# -- what plan() refuses ---------------------------------------------------------------


def test_refuses_more_countries_than_this_machine_runs_nodes_for() -> None:
    assert MAX_COUNTRIES == 12
    with pytest.raises(InputError, match=r"13 countries.*at most 12.*simulate"):
        plan(scenario(countries=THIRTEEN, per_year=36_500), AT_480)
    twelve = THIRTEEN.rsplit(",\n", 1)[0]
    assert len(plan(scenario(countries=twelve, per_year=36_500), AT_480).nodes) == 12


def test_refuses_imported_trade() -> None:
    imported = scenario(trade='source = "imported"\npath = "flows.csv"')
    assert not isinstance(imported.trade, GeneratedTrade)
    with pytest.raises(InputError, match="only generated trade"):
        plan(imported, AT_480)


def test_refuses_key_rotations() -> None:
    rotating = scenario(extra='[[key_rotations]]\nday = 0.5\ncountries = ["NL"]')
    with pytest.raises(InputError, match="key rotations are not emulated"):
        plan(rotating, AT_480)


def test_refuses_countries_that_join_later() -> None:
    joining = SIX.replace('"asia", node = true }', '"asia", node = true, joins_day = 0.5 }')
    assert joining != SIX
    with pytest.raises(InputError, match="joins_day"):
        plan(scenario(countries=joining), AT_480)


def test_refuses_a_period_over_an_hour_of_wall_clock() -> None:
    assert MAX_WALL_SECONDS == 3_600
    # A day at 10 times: 8,640 s.
    with pytest.raises(InputError, match=r"8,640 s.*at most 3,600 s.*raise --compress"):
        plan(scenario(), EmulateOptions(compress=10.0))
    # A year of a small flow at the default compression: 65,700 s.
    with pytest.raises(InputError, match=r"65,700 s"):
        plan(scenario(days=365, per_year=5_000), AT_480)
    # Exactly an hour is allowed; a little more is not.
    assert plan(scenario(), EmulateOptions(compress=24.0)).period == 3_600
    with pytest.raises(InputError, match="--compress"):
        plan(scenario(), EmulateOptions(compress=23.9))


def test_refuses_a_scenario_that_sends_nothing_at_this_scale() -> None:
    with pytest.raises(InputError, match="no certificate at this --scale"):
        plan(scenario(per_year=365), EmulateOptions(compress=480.0, scale=1e-6))


def test_refuses_more_certificates_than_it_can_send() -> None:
    assert MAX_CERTIFICATES == 20_000
    # About 22,000 in the day.
    with pytest.raises(InputError, match=r"at most 20,000 here \(lower --scale\)"):
        plan(scenario(per_year=8_030_000), AT_480)
    # The same at a tenth of the volume fits.
    assert (
        len(plan(scenario(per_year=8_030_000), EmulateOptions(compress=480.0, scale=0.1)).arrivals)
        < 3_000
    )


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (EmulateOptions(compress=0.0), "--compress"),
        (EmulateOptions(compress=math.nan), "--compress"),
        (EmulateOptions(compress=math.inf), "--compress"),
        (EmulateOptions(compress=480.0, scale=0.0), "--scale"),
        (EmulateOptions(compress=480.0, scale=-1.0), "--scale"),
        (EmulateOptions(compress=480.0, scale=math.nan), "--scale"),
        (EmulateOptions(compress=480.0, seed=-1), "--seed"),
    ],
)
def test_refuses_bad_options_naming_them(options: EmulateOptions, named: str) -> None:
    with pytest.raises(InputError, match=named):
        plan(scenario(), options)


# -- what plan() accepts ---------------------------------------------------------------


def test_plans_emulate_small_at_the_default_compression() -> None:
    small = parse_scenario(EMULATE_SMALL)
    chosen = plan(small, AT_480)
    assert 1_800 <= len(chosen.arrivals) <= 2_200  # "about 2,000 certificates in a day"
    assert chosen.nodes == ("CN", "KE", "NL", "US")
    assert chosen.hub_only == ("CL", "FR")
    assert chosen.has_hub
    assert chosen.period == 86_400 / 480 == 180
    assert chosen.timers == emulated(small, 480.0)
    assert chosen.options.timers == chosen.timers
    assert (chosen.options.seed, chosen.options.scale, chosen.options.compress) == (0, 1.0, 480)
    times = [at for at, _, _ in chosen.arrivals]
    assert times == sorted(times) and times[0] >= 0 and times[-1] < chosen.period
    codes = set(small.codes)
    assert all(o in codes and d in codes and o != d for _, o, d in chosen.arrivals)
    # Countries without a node reach everyone through the hub.
    assert chosen.via_hub["CL"] == chosen.via_hub["FR"] == ("*",)
    # top_k 5 among 4 nodes: every node pair is linked directly.
    assert all(chosen.via_hub[node] == () for node in chosen.nodes)
    # The same seed, the same certificates; another seed, others.
    assert plan(small, AT_480).arrivals == chosen.arrivals
    assert plan(small, EmulateOptions(seed=1, compress=480.0)).arrivals != chosen.arrivals


def test_a_hybrid_node_reaches_the_nodes_it_has_no_direct_link_with_through_the_hub() -> None:
    sparse = scenario(top_k=1)
    chosen = plan(sparse, AT_480)
    assert isinstance(sparse.trade, GeneratedTrade)
    flows = generate_flows(sparse.countries, sparse.trade)
    direct = count("hybrid", sparse.countries, flows, 1).direct_links
    assert direct  # each node links to its largest partner...
    assert len(direct) < 6  # ...so not every one of the 6 node pairs is linked
    for node in chosen.nodes:
        unlinked = tuple(
            p for p in chosen.nodes if p != node and frozenset((node, p)) not in direct
        )
        assert chosen.via_hub[node] == unlinked
    assert any(chosen.via_hub[node] for node in chosen.nodes)
    assert all(chosen.via_hub[c] == ("*",) for c in chosen.hub_only)
    assert set(chosen.via_hub) == set(sparse.codes)


def test_all_through_the_hub_every_node_names_every_other_node() -> None:
    chosen = plan(scenario(kind="hub"), AT_480)
    for node in chosen.nodes:
        assert chosen.via_hub[node] == tuple(p for p in chosen.nodes if p != node)
    assert chosen.has_hub


def test_bilateral_has_no_hub() -> None:
    nodes_only = SIX.replace("node = false", "node = true")
    chosen = plan(scenario(countries=nodes_only, kind="bilateral", outage="KE"), AT_480)
    assert not chosen.has_hub
    assert chosen.via_hub == {}
    assert chosen.hub_only == ()
    assert len(chosen.nodes) == 6
    # A hub outage there has no hub to stop: refused rather than half-played.
    with pytest.raises(InputError, match="a hub outage in an all-bilateral scenario"):
        plan(scenario(countries=nodes_only, kind="bilateral"), AT_480)


# -- calibrated(): the nodes' work read off a run ------------------------------------------

# Two regions, two links of known delay: within Europe 20 ms +- 10 (a one-way 25 ms on
# average), Europe-Asia 100 ms +- 20 (110 ms). At compress 60 an hour is 60 s: the hub's
# outage, hours 1 to 2, is 60 s to 120 s. FR has no node: it pulls from the hub (in
# Europe) every 5 s (300 s compressed 60 times).
CALIBRATION = """
name = "calibration"
period_days = 1
countries = [
  { code = "NL", region = "europe", node = true },
  { code = "DE", region = "europe", node = true },
  { code = "CN", region = "asia", node = true },
  { code = "FR", region = "europe", node = false },
]
[trade]
seed = 1
certificates_per_year = 1000
[links]
pairs = [
  { regions = ["europe", "europe"], latency_ms = 20, jitter_ms = 10, loss = 0 },
  { regions = ["asia", "europe"], latency_ms = 100, jitter_ms = 20, loss = 0 },
]
[[outages]]
party = "hub"
start_hours = 1
duration_hours = 1
"""
EUROPE = 0.025
EUROPE_ASIA = 0.110


def hand_made_run(rows: list[Row]) -> Run:
    """A run as emulate's `_run` builds it: (origin, destination, submitted, delivered,
    route) per certificate, numbered in that order."""
    calibration = parse_scenario(CALIBRATION.encode())
    codes = tuple(sorted(calibration.codes))
    index = {code: i for i, code in enumerate(codes)}
    run = Run.empty(
        calibration,
        Options(compress=60.0, timers=emulated(calibration, 60.0)),
        codes,
        frozenset(),
        86_400 / 60,
    )
    for i, (origin, destination, submitted, delivered, route) in enumerate(rows):
        stored = math.nan if route == ROUTE_DIRECT else submitted
        run.add(i, index[origin], index[destination], submitted, delivered, route, 1, stored)
    return run


def test_calibrated_charges_the_median_work_beyond_the_link_to_the_sender() -> None:
    run = hand_made_run(
        [
            # Direct, outside the outage: work beyond the link's delay of 8, 10 and 30 ms.
            ("NL", "DE", 10.0, 10.0 + EUROPE + 0.008, ROUTE_DIRECT),
            ("CN", "NL", 20.0, 20.0 + EUROPE_ASIA + 0.010, ROUTE_DIRECT),
            ("DE", "CN", 130.0, 130.0 + EUROPE_ASIA + 0.030, ROUTE_DIRECT),
            # In flight during the hub's outage (60 s to 120 s): ignored, however long.
            ("NL", "DE", 59.0, 61.0, ROUTE_DIRECT),
            ("DE", "NL", 100.0, 100.5, ROUTE_DIRECT),
            # Not direct, or not delivered: ignored.
            ("NL", "CN", 30.0, 30.0 + EUROPE_ASIA, ROUTE_HUB),
            ("DE", "NL", 31.0, 31.0 + EUROPE, ROUTE_FALLBACK),
            ("NL", "CN", 32.0, math.inf, ROUTE_DIRECT),
        ]
    )
    service = calibrated(run)
    benchmarks = ServiceTimes()
    assert service.node_send_ms == pytest.approx(10.0 - benchmarks.node_receive_ms, abs=1e-3)
    # Only the sender's share is measured; the rest are the benchmarks' figures.
    assert service.node_receive_ms == benchmarks.node_receive_ms
    assert service.hub_ms == benchmarks.hub_ms
    assert service.restart_ms == benchmarks.restart_ms


def test_calibrated_never_goes_below_zero() -> None:
    # Faster than the link's average delay (jitter drew low): no negative work.
    run = hand_made_run([("NL", "DE", 10.0, 10.0 + 0.020, ROUTE_DIRECT)])
    assert calibrated(run).node_send_ms == 0.0


def test_calibrated_without_a_direct_certificate_is_the_benchmarks() -> None:
    run = hand_made_run(
        [
            ("NL", "CN", 30.0, 31.0, ROUTE_HUB),
            ("DE", "NL", 31.0, 35.0, ROUTE_FALLBACK),
            ("NL", "CN", 32.0, math.inf, ROUTE_DIRECT),
            ("NL", "DE", 70.0, 70.1, ROUTE_DIRECT),  # during the outage
        ]
    )
    assert calibrated(run) == ServiceTimes()
    assert calibrated(hand_made_run([])) == ServiceTimes()


Row = tuple[str, str, float, float, int]


def pull(start: float, work: list[float], origin: str = "NL") -> list[Row]:
    """One pull's envelopes to FR: the first delivered at `start`, each next one four
    one-way delays (the last one's acknowledgement and its own fetch) and its work
    later."""
    rows: list[Row] = [(origin, "FR", start - 1.0, start, ROUTE_HUB)]
    at = start
    for seconds in work:
        at += 4 * EUROPE + seconds
        rows.append((origin, "FR", start - 1.0, at, ROUTE_HUB))
    return rows


def test_calibrated_measures_the_work_between_the_envelopes_of_a_pull() -> None:
    run = hand_made_run(
        [
            # Two pulls of envelopes 20, 30 and 25 ms of work apart: median 25 ms.
            *pull(10.0, [0.020, 0.030] * 6 + [0.025]),
            *pull(20.0, [0.030, 0.020] * 5 + [0.025], origin="CN"),
            # A pull during the hub's outage: ignored, however slow.
            *pull(90.0, [0.500] * 30),
            # To a node (pushed or polled, not pulled one by one): ignored.
            *[("NL", "DE", 30.0, 30.0 + 0.01 * i, ROUTE_HUB) for i in range(30)],
            # Not delivered: ignored.
            ("DE", "FR", 40.0, math.inf, ROUTE_HUB),
        ]
    )
    service = calibrated(run)
    # The gap between the pulls (10 s) is no envelope's work.
    assert service.pull_ms == pytest.approx(25.0, abs=1e-6)
    assert service.node_receive_ms == ServiceTimes().node_receive_ms


def test_calibrated_keeps_the_benchmark_for_too_few_envelopes_pulled() -> None:
    run = hand_made_run(pull(10.0, [0.050] * 19))  # 19 gaps
    assert calibrated(run).pull_ms == ServiceTimes().pull_ms
    # Work below the round trips' expected delay (jitter drew low): not negative.
    fast = hand_made_run(pull(10.0, [-0.010] * 30))
    assert calibrated(fast).pull_ms == 0.0


def test_pull_work_stretches_the_simulated_hub_route() -> None:
    # A busier day than the calibration's: a few hundred certificates to FR.
    busy = CALIBRATION.replace("certificates_per_year = 1000", "certificates_per_year = 730000")
    scenario = parse_scenario(busy.encode())
    timers = emulated(scenario, 60.0)

    def hub_p50(pull_ms: float) -> float:
        options = Options(compress=60.0, timers=timers, service=ServiceTimes(pull_ms=pull_ms))
        run = simulate(scenario, options)
        pulled = sorted(
            run.delivered[i] - run.submitted[i]
            for i in range(run.certificates)
            if run.countries[run.destination[i]] == "FR" and math.isfinite(run.delivered[i])
        )
        assert len(pulled) > 20
        return pulled[len(pulled) // 2]

    assert hub_p50(200.0) > hub_p50(3.1) + 0.1
