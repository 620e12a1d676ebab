"""`ephyto study ...`: the analysts' study of hub against bilateral exchange (issue 14).

The shell around node.study: it reads a bundled scenario (package data) or a file,
and prints what the pure core works out from it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from node.cli import study_common, study_emulate, study_report, study_sweep, study_trade
from node.cli.study_common import bundled_names, load
from node.fileio import write_atomic
from node.study.scenario import (
    TOPOLOGIES,
    GeneratedTrade,
    Scenario,
)
from node.study.topology import bilateral_links, count
from node.study.trade import generate_flows

TOP_FLOWS = 10


def add_parser(commands: Any) -> None:
    study = commands.add_parser(
        "study",
        help="study hub against bilateral exchange: scenarios and their trade",
        description="The analysts' study of hub against bilateral exchange. Built so far: "
        "the bundled scenarios, what a scenario resolves to, imported trade and the "
        "simulation (docs/study.md).",
    )
    sub = study.add_subparsers(dest="study_command", metavar="ACTION", required=True)
    listing = sub.add_parser("scenarios", help="list the bundled scenarios")
    listing.set_defaults(func=_scenarios)
    show = sub.add_parser(
        "show", help="show a scenario resolved: countries, trade, links and trust by topology"
    )
    show.add_argument("scenario", metavar="SCENARIO|FILE", help="a bundled name or a TOML file")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    show.set_defaults(func=_show)
    simulate = sub.add_parser(
        "simulate",
        help="simulate a scenario (discrete events, SimPy): latency, outages, hub, costs",
        description="Simulate a scenario with the node's own routing, retry and fallback "
        "policy and the hub's own fees; writes summary.json and CSV files to DIR "
        "(docs/study.md, \"Simulate\"). Needs the study extra: pip install '.[study]'.",
    )
    simulate.add_argument("scenario", metavar="SCENARIO|FILE", help="a bundled name or a file")
    simulate.add_argument(
        "-o", "--output", metavar="DIR", type=Path, required=True, help="new or empty"
    )
    simulate.add_argument(
        "--scale", metavar="F", default="1", help="every flow's volume times F (default 1)"
    )
    simulate.add_argument("--seed", metavar="N", default="0", help="the run's seed (default 0)")
    simulate.add_argument(
        "--force", action="store_true", help="write into DIR even if it is not empty"
    )
    simulate.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    simulate.add_argument(
        "--service",
        metavar="FILE",
        type=Path,
        help="service times in ms (JSON: node_send_ms, node_receive_ms, hub_ms, pull_ms, "
        "restart_ms), "
        "e.g. the service.json an emulation wrote; default: the benchmarks' figures",
    )
    simulate.set_defaults(func=_simulate)
    # `ephyto study trade import`: another module's action under the same `study`.
    study_trade.add_parser(sub)
    study_sweep.add_parser(sub)
    study_report.add_parser(sub)
    study_emulate.add_parser(sub)


def _scenarios(args: argparse.Namespace) -> int:
    for name in bundled_names():
        print(f"{name:<20} {load(name).description}")
    return 0


def summary(scenario: Scenario) -> dict[str, Any]:
    """What `show` prints, as plain values (also its --json)."""
    with_node = [c.code for c in scenario.countries if c.runs_node]
    result: dict[str, Any] = {
        "name": scenario.name,
        "description": scenario.description,
        "period_days": scenario.period_days,
        "countries": len(scenario.countries),
        "running_a_node": len(with_node),
        "hub_only": len(scenario.countries) - len(with_node),
        "regions": sorted({c.region for c in scenario.countries}),
        "topology": scenario.topology,
        "top_k": scenario.top_k,
        "hub_pull_interval_seconds": scenario.pull_interval_seconds,
        "hub_capacity_per_day": scenario.hub_capacity_per_day,
        "outages": [
            {"party": o.party, "start_hours": o.start_hours, "duration_hours": o.duration_hours}
            for o in scenario.outages
        ],
        "key_rotations": [
            {"day": r.day, "countries": len(r.countries)} for r in scenario.key_rotations
        ],
        "fee_models": [m.name for m in scenario.costs.fee_models],
    }
    trade = scenario.trade
    if not isinstance(trade, GeneratedTrade):
        # Imported trade is read by `ephyto study trade import`; show names the file only.
        result["trade"] = {"source": "imported", "path": trade.path}
        result["bilateral_links_without_directory"] = bilateral_links(len(scenario.countries))
        return result
    flows = generate_flows(scenario.countries, trade)
    result["trade"] = {
        "source": "generated",
        "model": trade.model,
        "seed": trade.seed,
        "certificates_per_year": flows.total,
        "top_flows": [
            {"origin": o, "destination": d, "certificates_per_year": v}
            for (o, d), v in flows.largest(TOP_FLOWS)
        ],
    }
    result["by_topology"] = {
        kind: count(kind, scenario.countries, flows, scenario.top_k).to_json()
        # All three, bilateral as if every country ran a node: the comparison is the point.
        for kind in TOPOLOGIES
    }
    return result


def _show(args: argparse.Namespace) -> int:
    result = summary(load(args.scenario))
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
        return 0
    print(f"{result['name']}: {result['description']}")
    print(
        f"countries: {result['countries']} ({result['running_a_node']} running a node, "
        f"{result['hub_only']} hub only) in {len(result['regions'])} regions"
    )
    print(
        f"topology: {result['topology']} (top-k {result['top_k']}); period "
        f"{result['period_days']:g} days; hub pull every {result['hub_pull_interval_seconds']} s"
    )
    for outage in result["outages"]:
        print(
            f"outage: {outage['party']} from hour {outage['start_hours']:g} "
            f"for {outage['duration_hours']:g} h"
        )
    for rotation in result["key_rotations"]:
        print(f"key rotation: day {rotation['day']:g}, {rotation['countries']} countries")
    trade = result["trade"]
    if trade["source"] == "imported":
        print(f"trade: imported from {trade['path']} (read by `ephyto study trade import`)")
        return 0
    print(
        f"trade: {trade['model']} model, seed {trade['seed']}, "
        f"{trade['certificates_per_year']:,} certificates a year; largest flows:"
    )
    for flow in trade["top_flows"]:
        print(f"  {flow['origin']} -> {flow['destination']}  {flow['certificates_per_year']:>12,}")
    print("links and trust without a directory, by topology:")
    for kind, numbers in result["by_topology"].items():
        mark = " (this scenario)" if kind == result["topology"] else ""
        print(
            f"  {kind:<9} links {numbers['links']:>6,} (direct {numbers['direct_links']:,}, "
            f"hub {numbers['hub_links']:,}); most keys a country holds "
            f"{numbers['most_keys_held_by_a_country']}{mark}"
        )
    return 0


def _simulate(args: argparse.Namespace) -> int:
    output: Path = args.output
    summary, files = study_common.simulation(
        args.scenario,
        output,
        study_common.scale_option(args.scale),
        study_common.seed_option(args.seed),
        args.force,
        args.quiet,
        service_file=args.service,
    )
    # Everything was worked out above: only now is anything written.
    output.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        write_atomic(output / name, data, 0o644)
    routes = summary["by_route"]
    print(
        f"{summary['scenario']}: {summary['certificates']:,} certificates (scale "
        f"{summary['scale']:g}, seed {summary['seed']}); direct "
        f"{routes['direct']['certificates']:,}, hub {routes['hub']['certificates']:,}, hub "
        f"after failed direct attempts {routes['hub-fallback']['certificates']:,}; "
        f"undelivered {summary['undelivered']:,}; written to {output}"
    )
    return 0
