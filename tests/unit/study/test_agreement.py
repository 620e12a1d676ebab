"""How close a simulation came to an emulation (node/study/agreement.py), on hand-made
runs: certificate by certificate for routes, route by route for latencies."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import pytest

from node.study.agreement import MIN_CERTIFICATES, TOLERANCE, compare, summary_line
from node.study.scenario import Scenario, parse_scenario
from node.study.simulate import ROUTE_DIRECT, ROUTE_FALLBACK, ROUTE_HUB, Options, Run

SCENARIO_TOML = b"""name = "agreement"
period_days = 1
countries = [
  { code = "NL", region = "europe", node = true },
  { code = "DE", region = "europe", node = true },
  { code = "FR", region = "europe" },
]
[trade]
seed = 1
certificates_per_year = 1000
"""
SCENARIO = parse_scenario(SCENARIO_TOML)
CODES = ("DE", "FR", "NL")

# (origin, destination, route, latency in seconds or math.inf: never delivered)
Certificate = tuple[str, str, int, float]


def run_of(
    certificates: Sequence[Certificate],
    order: Sequence[int] | None = None,
    *,
    scenario: Scenario = SCENARIO,
    submitted_at: Sequence[float] | None = None,
) -> Run:
    """A run of these certificates, numbered 0.. in the given order; its arrays in `order`
    (as simulate records them: in delivery order, not by number). Certificate n is
    submitted at `submitted_at[n]`, 10 n seconds by default."""
    order = list(range(len(certificates))) if order is None else list(order)
    assert sorted(order) == list(range(len(certificates)))
    run = Run.empty(scenario, Options(), CODES, frozenset({frozenset(("DE", "NL"))}), 86_400.0)
    for cid in order:
        origin, destination, route, latency = certificates[cid]
        submitted = 10.0 * cid if submitted_at is None else submitted_at[cid]
        stored = math.nan if route == ROUTE_DIRECT else submitted + 0.1
        run.add(
            cid, CODES.index(origin), CODES.index(destination), submitted,
            submitted + latency, route, 1, stored,
        )  # fmt: skip
    return run


def direct(latencies: Sequence[float]) -> list[Certificate]:
    return [("NL", "DE", ROUTE_DIRECT, latency) for latency in latencies]


def hub(latencies: Sequence[float]) -> list[Certificate]:
    return [("FR", "NL", ROUTE_HUB, latency) for latency in latencies]


# 30 direct certificates, 1 to 30 s: p50 15 s, p95 29 s (nearest rank); 25 through the hub.
DIRECT = direct([float(s) for s in range(1, 31)])
HUB = hub([100.0 + s for s in range(25)])
BOTH = DIRECT + HUB


def reversed_order(n: int) -> list[int]:
    return list(range(n))[::-1]


def test_identical_runs_agree_whatever_their_arrays_order() -> None:
    agreement = compare(run_of(BOTH), run_of(BOTH, reversed_order(len(BOTH))))
    assert agreement["certificates"] == len(BOTH) == 55
    assert agreement["same_route"] == 55
    assert agreement["same_route_share"] == 1.0
    assert agreement["delivered_by_both"] == 55
    assert agreement["delivered_emulated"] == agreement["delivered_simulated"] == 55
    assert agreement["mismatches"] == []
    assert agreement["latencies_agree"] is True
    assert agreement["tolerance"] == TOLERANCE == 0.15
    routes = agreement["by_route"]
    assert set(routes) == {"direct", "hub", "hub-fallback"}
    for name, count in (("direct", 30), ("hub", 25)):
        entry = routes[name]
        assert entry["emulated_certificates"] == entry["simulated_certificates"] == count
        assert entry["compared"] is True
        assert entry["within_tolerance"] is True
        assert entry["p50"]["relative_difference"] == entry["p95"]["relative_difference"] == 0
    assert routes["direct"]["p50"]["emulated_seconds"] == 15.0
    assert routes["direct"]["p95"]["simulated_seconds"] == 29.0
    # No certificate on it: nothing to compare, nothing against agreement.
    fallback = routes["hub-fallback"]
    assert fallback["emulated_certificates"] == fallback["simulated_certificates"] == 0
    assert fallback["compared"] is False and fallback["within_tolerance"] is None
    assert fallback["p50"] == {
        "emulated_seconds": None,
        "simulated_seconds": None,
        "relative_difference": None,
    }
    json.dumps(agreement, allow_nan=False)  # agreement.json: strict JSON


def test_a_certificate_on_another_route_is_a_mismatch_with_both_outcomes() -> None:
    other = list(BOTH)
    other[3] = ("NL", "DE", ROUTE_FALLBACK, 40.0)  # 4 s direct in the emulation
    agreement = compare(run_of(BOTH), run_of(other, reversed_order(len(other))))
    assert agreement["same_route"] == 54
    assert agreement["mismatches"] == [
        {
            "id": "C000000004",
            "from": "NL",
            "to": "DE",
            "submitted": 30.0,
            "at_outage_edge": False,
            "emulated": {"route": "direct", "latency_seconds": 4.0},
            "simulated": {"route": "hub-fallback", "latency_seconds": 40.0},
        }
    ]
    assert agreement["by_route"]["hub-fallback"]["simulated_certificates"] == 1
    assert agreement["by_route"]["hub-fallback"]["compared"] is False


def test_a_certificate_delivered_by_one_only_is_a_mismatch() -> None:
    undelivered = list(BOTH)
    undelivered[0] = ("NL", "DE", ROUTE_DIRECT, math.inf)
    agreement = compare(run_of(undelivered), run_of(BOTH))
    assert agreement["same_route"] == 54
    assert agreement["delivered_emulated"] == 54
    assert agreement["delivered_simulated"] == agreement["certificates"] == 55
    assert agreement["delivered_by_both"] == 54
    (mismatch,) = agreement["mismatches"]
    assert mismatch["id"] == "C000000001"
    assert mismatch["emulated"] == {"route": "direct", "latency_seconds": None}
    assert mismatch["simulated"] == {"route": "direct", "latency_seconds": 1.0}
    json.dumps(agreement, allow_nan=False)


def test_a_route_with_too_few_certificates_is_counted_not_compared() -> None:
    few = DIRECT + hub([100.0] * (MIN_CERTIFICATES - 1))
    # Its latencies wildly apart: still not held against the agreement.
    far = DIRECT + hub([1_000.0] * (MIN_CERTIFICATES - 1))
    agreement = compare(run_of(few), run_of(far))
    entry = agreement["by_route"]["hub"]
    assert entry["emulated_certificates"] == entry["simulated_certificates"] == 19
    assert entry["compared"] is False
    assert entry["within_tolerance"] is None
    assert entry["p50"]["relative_difference"] == 9.0  # still shown
    assert agreement["latencies_agree"] is True
    assert "hub p50" not in summary_line(agreement)
    assert summary_line(agreement).endswith("(within 15%)")


def test_a_p95_twenty_percent_off_is_not_within_tolerance() -> None:
    # Only the two slowest certificates slower: the p50 is the same, the p95 29 -> 34.8 s.
    slower = direct([float(s) for s in range(1, 29)] + [29.0 * 1.2, 30.0 * 1.2]) + HUB
    agreement = compare(run_of(BOTH), run_of(slower))
    entry = agreement["by_route"]["direct"]
    assert entry["p50"]["relative_difference"] == 0
    assert entry["p95"]["relative_difference"] == pytest.approx(0.2)
    assert entry["compared"] is True
    assert entry["within_tolerance"] is False
    assert agreement["by_route"]["hub"]["within_tolerance"] is True
    assert agreement["latencies_agree"] is False
    assert agreement["same_route"] == 55  # the routes agree all the same
    line = summary_line(agreement)
    assert line.endswith("(NOT within 15%)")
    assert "direct p50 0.0%, p95 20.0% apart" in line
    assert line.startswith("agreement: 55 of 55 certificates took the same route in both")


def test_ten_percent_off_is_within_tolerance() -> None:
    slower = direct([s * 1.1 for s in range(1, 31)]) + HUB
    agreement = compare(run_of(BOTH), run_of(slower))
    entry = agreement["by_route"]["direct"]
    assert entry["p50"]["relative_difference"] == pytest.approx(0.1)
    assert entry["p95"]["relative_difference"] == pytest.approx(0.1)
    assert entry["within_tolerance"] is True
    assert agreement["latencies_agree"] is True
    assert summary_line(agreement).endswith("(within 15%)")


def test_faster_by_twenty_percent_is_as_far_off_as_slower() -> None:
    faster = direct([s * 0.8 for s in range(1, 31)]) + HUB
    agreement = compare(run_of(BOTH), run_of(faster))
    assert agreement["by_route"]["direct"]["p50"]["relative_difference"] == pytest.approx(0.2)
    assert agreement["latencies_agree"] is False


def test_runs_of_different_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="55 emulated, 54 simulated"):
        compare(run_of(BOTH), run_of(BOTH[:-1]))


def test_mismatches_shown_are_bounded() -> None:
    everything_else = [("NL", "DE", ROUTE_FALLBACK, latency) for _, _, _, latency in DIRECT]
    agreement = compare(run_of(DIRECT), run_of(everything_else))
    assert agreement["same_route"] == 0
    assert agreement["same_route_share"] == 0.0
    assert len(agreement["mismatches"]) == 20  # of 30: the first by number
    assert [m["id"] for m in agreement["mismatches"]][:2] == ["C000000001", "C000000002"]


def test_empty_runs_compare_without_dividing_by_zero() -> None:
    agreement = compare(run_of([]), run_of([]))
    assert agreement["certificates"] == 0
    assert agreement["same_route_share"] is None
    assert agreement["latencies_agree"] is True
    assert summary_line(agreement) == (
        "agreement: 0 of 0 certificates took the same route in both (within 15%)"
    )


# DE is down from hour 1 to hour 2 (3,600 s to 7,200 s); its routes may part at the
# edges: in flight at 3,600 s, or sent from `fallback_after` (300 s) before 7,200 s to
# its start-up time (2 s) after.
EDGY = parse_scenario(
    SCENARIO_TOML
    + b"""[[outages]]
party = "DE"
start_hours = 1
duration_hours = 1
"""
)


def edgy_run(rows: Sequence[tuple[str, str, float, float, int]]) -> Run:
    """A run of EDGY: (origin, destination, submitted, latency, route) per certificate."""
    return run_of(
        [(origin, destination, route, latency) for origin, destination, _, latency, route in rows],
        scenario=EDGY,
        submitted_at=[submitted for _, _, submitted, _, _ in rows],
    )


def test_routes_parted_at_an_outages_edge_are_counted_apart() -> None:
    sent = [
        ("NL", "DE", 3_599.9, 0.2),  # in flight when DE went down
        ("NL", "DE", 7_000.0, 1.0),  # sent while DE was soon up again
        ("NL", "DE", 7_201.5, 1.0),  # sent while DE was starting
        ("NL", "DE", 5_000.0, 1.0),  # well inside the outage: both fall back
        ("NL", "DE", 9_000.0, 1.0),  # long after
        ("FR", "NL", 3_599.9, 0.2),  # in flight, but DE is neither end
    ]
    emulated = edgy_run([(*row, ROUTE_DIRECT) for row in sent])
    simulated = edgy_run([(*row, ROUTE_FALLBACK) for row in sent])
    agreement = compare(emulated, simulated)
    assert agreement["same_route"] == 0
    assert agreement["parted_at_outage_edges"] == 3
    assert [m["at_outage_edge"] for m in agreement["mismatches"]] == [
        True, True, True, False, False, False,
    ]  # fmt: skip
    assert "(3 parted at an outage's edge)" in summary_line(agreement)


def test_no_edge_without_outages_and_none_counted_when_routes_agree() -> None:
    agreement = compare(run_of(BOTH), run_of(BOTH))
    assert agreement["parted_at_outage_edges"] == 0
    assert "parted" not in summary_line(agreement)
    same = edgy_run([("NL", "DE", 3_599.9, 0.2, ROUTE_DIRECT)])
    assert compare(same, same)["parted_at_outage_edges"] == 0
