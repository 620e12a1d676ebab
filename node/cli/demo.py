"""`ephyto demo`: a registry, a hub and four nodes exchanging certificates, then a report."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Any

from node.cli.demo_commands import in_process
from node.demo.answers import follow_up
from node.demo.console_users import console_url, demo_users
from node.demo.deliveries import Row
from node.demo.network import Network, network
from node.demo.play import play
from node.demo.scenario import COUNTRIES, HUB_ONLY, LATE
from node.ippc.names import SERVICE_PATH

# Demo pace: a partner that is down is tried again within seconds, not minutes.
RETRY_CAP_SECONDS = 2


def add_parser(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="run a registry, a hub and four nodes on loopback and exchange certificates",
        description="Start a registry, a hub and four nodes on free loopback ports in a "
        "temporary directory: NL, KE and US with direct endpoints, CL through the hub only. "
        "Enrol and publish them, and exchange the bundled sample certificates among them: "
        "the first to US while US is still down (it falls back to the hub), certificates to "
        "CL through the hub, a withdrawal and a replacement; then KE answers a certificate NL "
        "sent it, and US's copy of a withdrawn one shows the withdrawal. Say what starts and each "
        "delivery as it settles, then print what happened, with the route each took (direct "
        "or hub). With --json, that progress goes to stderr and stdout holds only JSON. "
        "Exits 1 if any delivery failed; leaves no process behind.",
    )
    demo.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    demo.add_argument(
        "--keep-running",
        action="store_true",
        help="leave the network up and print how to reach each node's API, and its officer "
        "console with the demo's users (admin, clerk, inspector and auditor with the roles "
        "of those names, officer and officer2 two certifying officers) and their "
        "passwords, new each run, the same on every node (Ctrl-C or SIGTERM to stop). "
        "With --json: after the list, one line holding one JSON object, "
        "for scripts: 'nodes', a list of objects with 'country', 'api' (the API's base "
        "URL, ending in /api/v1), 'token' (its bearer token: the demo's throwaway one), "
        "'exchange' (the node's endpoint; null for a node reached through the hub only), "
        "'files' (its directory), 'metrics' and 'ready' (its /metrics and /health/ready "
        "URLs), 'console' (its officer console's URL, ending in /console/) and "
        "'console_users' (a list of objects with 'user', 'password' and 'role'); "
        "'registry' (the directory's URL) and 'hub' (its DeliveryService URL), and "
        "their own 'registry_metrics', 'registry_ready', 'hub_metrics' and 'hub_ready'. "
        "Later versions may add fields, never remove one.",
    )
    demo.add_argument(
        "--dir", type=Path, metavar="DIR", help="work in DIR (kept) instead of a temporary one"
    )
    # The demo runs its sibling commands (node, hub, registry) in its own process, with
    # their parsers: `commands` holds them all once the command tree is built.
    demo.set_defaults(func=_demo, commands=commands)


def _demo(args: argparse.Namespace) -> int:
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        # Absolute: the commands and the services are given paths inside it.
        return _run(args, args.dir.absolute())
    with tempfile.TemporaryDirectory(prefix="ephyto-demo-") as workdir:
        return _run(args, Path(workdir))


def _run(args: argparse.Namespace, workdir: Path) -> int:
    # Progress is for people: with --json it goes to stderr, and stdout stays JSON.
    progress = sys.stderr if args.json else sys.stdout

    def say(line: str) -> None:
        print(line, file=progress, flush=True)

    others = ", ".join(c for c in COUNTRIES if c != LATE)
    say(
        f"starting a registry, a hub and nodes {others}, {HUB_ONLY} (through the hub only) "
        f"and, later, {LATE} in {workdir}"
    )
    with ExitStack() as stack:
        # SIGTERM stops the demo as Ctrl-C does: the network is stopped either way. Both are
        # set here, not inherited: a demo started where SIGINT is ignored (from a script's
        # background job, say) must still stop on it.
        previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
        stack.callback(_restore_signals, *previous)
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        log = stack.enter_context((workdir / "demo.log").open("w", encoding="utf-8"))
        started = network(
            workdir, log, configure_args=("--retry-cap", str(RETRY_CAP_SECONDS)),
            hub=True, hub_only=(HUB_ONLY,), deferred=(LATE,), command=in_process(args.commands),
            report=say,
            # Only a network left running has a console to sign in to: otherwise no users,
            # and no second of hashing spent on passwords nobody sees.
            console_users=demo_users() if args.keep_running else (),
        )  # fmt: skip
        net = stack.enter_context(started)
        # Unwinding runs last in, first out: from here, a second Ctrl-C while the network
        # stops would leave processes behind, so both signals wait until it has stopped.
        stack.callback(_ignore_signals)
        rows = follow_up(net, play(net, say), say)
        if args.json:
            print(json.dumps([row.to_json() for row in rows], indent=2), flush=True)
        else:
            _table(rows)
        if args.keep_running:
            if args.json:
                print(json.dumps(_reach(net)), flush=True)
            else:
                _print_reach(net)
            say("press Ctrl-C to stop the network")
            _wait_for_interrupt()
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


def _reach(net: Network) -> dict[str, Any]:
    """How scripts reach the network: one object, fields only ever added."""
    return {
        "nodes": [
            {
                "country": node.country,
                "api": node.api_url,
                "token": node.api_token,
                "exchange": _exchange(net, node.country),
                "files": str(node.directory),
                "metrics": node.metrics_url or None,
                "ready": node.ready_url or None,
                "console": console_url(node.api_url),
                "console_users": [user.to_json() for user in net.console_users],
            }
            for node in net.nodes.values()
        ],
        "registry": net.registry_url,
        "hub": f"{net.hub_url}{SERVICE_PATH}" if net.hub_url else None,
        # The registry's and the hub's own metrics and readiness URLs.
        "registry_metrics": net.registry_observed.metrics or None,
        "registry_ready": net.registry_observed.ready or None,
        "hub_metrics": net.hub_observed.metrics or None,
        "hub_ready": net.hub_observed.ready or None,
    }


def _exchange(net: Network, country: str) -> str | None:
    if country in net.hub_only:
        return None
    return f"https://127.0.0.1:{net.nodes[country].exchange_port}"


def _print_reach(net: Network) -> None:
    for node in net.nodes.values():
        exchange = _exchange(net, node.country)
        print(
            f"node {node.country}: API {node.api_url} "
            f"(Authorization: Bearer {node.api_token}), "
            f"{'exchange ' + exchange if exchange else 'no exchange (through the hub only)'}, "
            f"files in {node.directory}{_observed(node.metrics_url, node.ready_url)}"
        )
        # Indented under its node's line: the console is served on the API's listener.
        print(f"  console {console_url(node.api_url)}, users:")
        for user in net.console_users:
            print(f"    {user.shown()}")
    observed = net.registry_observed
    print(f"registry: {net.registry_url}{_observed(observed.metrics, observed.ready)}")
    if net.hub_url:
        observed = net.hub_observed
        print(f"hub: {net.hub_url}{SERVICE_PATH} (SOAP, mutual TLS), files in "
              f"{net.workdir / 'hub'}{_observed(observed.metrics, observed.ready)}")  # fmt: skip
    sys.stdout.flush()


def _observed(metrics: str, ready: str) -> str:
    """`, metrics URL, ready URL` for a process's line (nothing when it said none)."""
    return f", metrics {metrics}, ready {ready}" if metrics else ""


def _wait_for_interrupt() -> None:
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        return  # asked to stop: not a failure of the demo


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _ignore_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _restore_signals(interrupt: Any, terminate: Any) -> None:
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, terminate)
