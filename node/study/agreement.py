"""How close a simulation came to an emulation of the same scenario (pure).

Issue 14's agreement: on the same small scenario, `simulate` and `emulate` deliver the
same certificates by the same routes, and their latency p50 and p95 agree within 15%.
Both runs number the same certificates (`planned_arrivals`), so they are compared
certificate by certificate; the latencies route by route. Every emulation writes this
as agreement.json, and the agreement test asserts it.

Where the two may part is at an outage's edge: a certificate in flight when a party
went down, or sent while it was coming back (from `fallback_after` before it was up
again to its start-up time after), is decided by which of two events came first by a
few milliseconds (a retry, the partner's first answer), and the engines' clocks differ
by that much. Those are counted apart (`parted_at_outage_edges`), each mismatch says
whether it was one, and every other certificate must take the same route in both.
"""

from __future__ import annotations

import math
from typing import Any, Final

from node.study.scenario import PARTY_HUB, PARTY_REGISTRY
from node.study.simulate import ROUTE_NAMES, Run, percentile
from node.study.timers import simulated as simulated_timers

TOLERANCE: Final = 0.15
# A route with fewer certificates than this has no percentiles worth comparing (a p95
# of five certificates is their largest but one); its counts are compared all the same.
MIN_CERTIFICATES: Final = 20
SHOWN_MISMATCHES: Final = 20


def compare(emulated: Run, simulated: Run) -> dict[str, Any]:
    """agreement.json: delivered and routes certificate by certificate, latencies by route."""
    if emulated.certificates != simulated.certificates:
        raise ValueError(
            f"the runs differ in certificates: {emulated.certificates} emulated, "
            f"{simulated.certificates} simulated"
        )
    em = _by_id(emulated)
    sim = _by_id(simulated)
    edges = _outage_edges(emulated, simulated)
    same_route = 0
    at_edges = 0
    both_delivered = 0
    mismatches: list[dict[str, Any]] = []
    for cid in sorted(em):
        i, j = em[cid], sim[cid]
        delivered = math.isfinite(emulated.delivered[i]), math.isfinite(simulated.delivered[j])
        both_delivered += all(delivered)
        if emulated.route[i] == simulated.route[j] and delivered[0] == delivered[1]:
            same_route += 1
            continue
        origin = emulated.countries[emulated.origin[i]]
        destination = emulated.countries[emulated.destination[i]]
        submitted = emulated.submitted[i]
        last = max(emulated.delivered[i], simulated.delivered[j])
        at_edge = _at_edge(edges, (origin, destination), submitted, last)
        at_edges += at_edge
        if len(mismatches) < SHOWN_MISMATCHES:
            mismatches.append(
                {
                    "id": f"C{cid + 1:09d}",
                    "from": origin,
                    "to": destination,
                    "submitted": round(submitted, 3),
                    "at_outage_edge": at_edge,
                    "emulated": _outcome(emulated, i),
                    "simulated": _outcome(simulated, j),
                }
            )
    routes: dict[str, Any] = {}
    for route, name in enumerate(ROUTE_NAMES):
        a = _latencies(emulated, route)
        b = _latencies(simulated, route)
        entry: dict[str, Any] = {"emulated_certificates": len(a), "simulated_certificates": len(b)}
        for label, share in (("p50", 0.5), ("p95", 0.95)):
            x, y = percentile(a, share), percentile(b, share)
            difference = abs(y - x) / x if x > 0 and not math.isnan(y) else math.nan
            entry[label] = {
                "emulated_seconds": _rounded(x),
                "simulated_seconds": _rounded(y),
                "relative_difference": _rounded(difference),
            }
        compared = min(len(a), len(b)) >= MIN_CERTIFICATES
        entry["compared"] = compared
        entry["within_tolerance"] = (
            all(
                entry[label]["relative_difference"] is not None
                and entry[label]["relative_difference"] <= TOLERANCE
                for label in ("p50", "p95")
            )
            if compared
            else None
        )
        routes[name] = entry
    total = emulated.certificates
    return {
        "certificates": total,
        "delivered_by_both": both_delivered,
        "delivered_emulated": sum(1 for t in emulated.delivered if math.isfinite(t)),
        "delivered_simulated": sum(1 for t in simulated.delivered if math.isfinite(t)),
        "same_route": same_route,
        "same_route_share": round(same_route / total, 6) if total else None,
        "parted_at_outage_edges": at_edges,
        "tolerance": TOLERANCE,
        "by_route": routes,
        "latencies_agree": all(r["within_tolerance"] is not False for r in routes.values()),
        "mismatches": mismatches,
    }


def summary_line(agreement: dict[str, Any]) -> str:
    """One line for the terminal and the report: how close the simulation came."""
    parts = [
        f"{agreement['same_route']:,} of {agreement['certificates']:,} certificates took the "
        "same route in both"
        + (
            f" ({agreement['parted_at_outage_edges']:,} parted at an outage's edge)"
            if agreement.get("parted_at_outage_edges")
            else ""
        )
    ]
    for name, entry in agreement["by_route"].items():
        if entry["compared"]:
            p50 = entry["p50"]["relative_difference"]
            p95 = entry["p95"]["relative_difference"]
            parts.append(f"{name} p50 {_percent(p50)}, p95 {_percent(p95)} apart")
    verdict = "within" if agreement["latencies_agree"] else "NOT within"
    return f"agreement: {'; '.join(parts)} ({verdict} {agreement['tolerance']:.0%})"


# An outage's edges: its party, when it went down, and the window around its coming back
# in which a certificate's route is a race (seconds on the run's clock).
_Edge = tuple[str, float, tuple[float, float]]


def _outage_edges(emulated: Run, simulated: Run) -> list[_Edge]:
    scenario = emulated.scenario
    hour = 3600 / emulated.options.compress
    timers = emulated.options.timers or simulated_timers(scenario, emulated.options.compress)
    restart = max(emulated.options.service.restart_ms, simulated.options.service.restart_ms)
    edges: list[_Edge] = []
    for outage in scenario.outages:
        down = outage.start_hours * hour
        up = (outage.start_hours + outage.duration_hours) * hour
        window = (up - timers.fallback_after, up + restart / 1000)
        edges.append((outage.party, down, window))
    return edges


def _at_edge(edges: list[_Edge], pair: tuple[str, str], submitted: float, last: float) -> bool:
    """Whether a certificate between `pair`, in flight from `submitted` to `last`, met an
    edge of an outage of one of its parties, the hub's or the registry's."""
    for party, down, (from_, to) in edges:
        if party not in (*pair, PARTY_HUB, PARTY_REGISTRY):
            continue
        if submitted <= down <= last or from_ <= submitted <= to:
            return True
    return False


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _by_id(run: Run) -> dict[int, int]:
    return {cid: i for i, cid in enumerate(run.ids)}


def _latencies(run: Run, route: int) -> list[float]:
    return sorted(
        run.delivered[i] - run.submitted[i]
        for i in range(run.certificates)
        if run.route[i] == route and math.isfinite(run.delivered[i])
    )


def _outcome(run: Run, i: int) -> dict[str, Any]:
    delivered = run.delivered[i]
    return {
        "route": ROUTE_NAMES[run.route[i]],
        "latency_seconds": round(delivered - run.submitted[i], 3)
        if math.isfinite(delivered)
        else None,
    }


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else round(value, 6)
