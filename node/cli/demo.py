"""`ephyto demo`: a registry and three nodes exchanging certificates, then a report."""

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
from node.demo.scenario import steps


def add_parser(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="run a registry and three nodes on loopback and exchange certificates",
        description="Start a registry and three nodes (NL, KE, US) on free loopback ports in "
        "a temporary directory, enrol and publish them, exchange the bundled sample "
        "certificates among them (with a withdrawal and a replacement), and print what "
        "happened. Exits 1 if any delivery failed; leaves no process behind.",
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
    with (workdir / "demo.log").open("w", encoding="utf-8") as log, network(workdir, log) as net:
        print(f"network up in {workdir}: registry and nodes NL, KE, US", file=progress)
        rows = net.run(steps())
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
    print("press Ctrl-C to stop the network", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
