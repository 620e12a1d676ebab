"""`ephyto demo`: a registry, a hub and four nodes exchanging certificates, then a report."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from node.demo.network import Network, Row, network
from node.demo.scenario import COUNTRIES, HUB_ONLY, LATE, first_step, hub_steps, steps


def add_parser(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="run a registry, a hub and four nodes on loopback and exchange certificates",
        description="Start a registry, a hub and four nodes on free loopback ports in a "
        "temporary directory: NL, KE and US with direct endpoints, CL through the hub only. "
        "Enrol and publish them, and exchange the bundled sample certificates among them: "
        "the first to US while US is still down (it falls back to the hub), certificates to "
        "CL through the hub, a withdrawal and a replacement. Print what happened, with the "
        "route each took (direct or hub). Exits 1 if any delivery failed; leaves no process "
        "behind.",
    )
    demo.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    demo.add_argument(
        "--keep-running",
        action="store_true",
        help="leave the network up and print how to reach each node's API (Ctrl-C to stop)",
    )
    demo.add_argument(
        "--dir", type=Path, metavar="DIR", help="work in DIR (kept) instead of a temporary one"
    )
    demo.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        return _run(args, args.dir)
    with tempfile.TemporaryDirectory(prefix="ephyto-demo-") as workdir:
        return _run(args, Path(workdir))


def _run(args: argparse.Namespace, workdir: Path) -> int:
    progress = sys.stderr
    with (
        (workdir / "demo.log").open("w", encoding="utf-8") as log,
        network(workdir, log, hub=True, hub_only=(HUB_ONLY,), deferred=(LATE,)) as net,
    ):
        others = ", ".join(c for c in COUNTRIES if c != LATE)
        print(
            f"network up in {workdir}: registry, hub, nodes {others} and {HUB_ONLY} "
            f"(hub only); {LATE} is down",
            file=progress,
        )
        first = net.send([first_step()])
        net.wait_for_route(first[0][0], first[0][1], "hub")
        print(f"{first[0][2]} to {LATE} went to the hub; starting {LATE}", file=progress)
        net.restart(LATE)
        rows = net.settle(first + net.send(steps() + hub_steps()))
        if args.json:
            print(json.dumps([row.to_json() for row in rows], indent=2))
        else:
            _table(rows)
        if args.keep_running:
            _wait_for_interrupt(net)
    return 0 if all(row.status.startswith("delivered") for row in rows) else 1


def _table(rows: list[Row]) -> None:
    header = ("certificate", "from", "to", "route", "outcome", "latency")
    cells = [
        (
            r.certificate,
            r.sender,
            r.recipient,
            r.route,
            r.status,
            "-" if r.latency_ms is None else f"{r.latency_ms:.0f} ms",
        )
        for r in rows
    ]
    widths = [max(len(str(c[i])) for c in [header, *cells]) for i in range(len(header))]
    for line in [header, *cells]:
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def _wait_for_interrupt(net: Network) -> None:
    for node in net.nodes.values():
        print(
            f"node {node.country}: API {node.api_url} "
            f"(Authorization: Bearer {node.api_token}), exchange https://127.0.0.1:"
            f"{node.exchange_port}, files in {node.directory}"
        )
    print(f"registry: {net.registry_url}")
    if net.hub_url:
        print(f"hub: {net.hub_url}/hub/DeliveryService (SOAP, mutual TLS), files in "
              f"{net.workdir / 'hub'}")  # fmt: skip
    print("press Ctrl-C to stop the network", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
