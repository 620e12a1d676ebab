"""`ephyto doctor`: check this node and print one line per check, with what to do."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from node.cli.node import DEFAULT_DIR
from node.clock import SystemClock
from node.commandline import dir_argument
from node.doctor.checks import DEFAULT_TIMEOUT, Finding, worst

_WIDTH = 8  # "problem" and a space


def add_parser(commands: Any) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="check this node (config, keys, directory, registry, partners) and say what to do",
        description="Check a node: its config and trust anchor, its key files (present, mode "
        "0600, loadable; encrypted ones decrypted with the passphrase node.toml names, read "
        "as the node reads it, so run it with the node's environment; a signing key in a "
        "PKCS#11 token logged in to and made to sign) and TLS certificate (validity), its "
        "cached directory (verified, "
        "not expired, this node listed as active with its endpoint, keys and TLS pin), "
        "and, unless --offline, the registry (reachable, newer version, clock skew from "
        "its Date header) and a TLS connection to every active partner with an endpoint "
        "and to the hub, pinned to their directory pins. One line per check: ok, warning "
        "or problem, what was found, and what to do. Exit 0 without problems (warnings "
        "alone too), 1 with any problem, 2 when DIR holds no node. Read-only: it changes "
        "nothing in the node directory.",
    )
    dir_argument(doctor, DEFAULT_DIR, "node")
    doctor.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list of {check, status, detail, action} (action null when ok)",
    )
    doctor.add_argument(
        "--offline", action="store_true", help="skip the registry and partner connections"
    )
    doctor.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"for each network check (default: {DEFAULT_TIMEOUT:g}; the registry gets at least 5)",
    )
    doctor.set_defaults(func=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    from node.doctor.run import diagnose  # aiohttp and the node's service: load on use

    findings = asyncio.run(
        diagnose(args.directory, clock=SystemClock(), offline=args.offline, timeout=args.timeout)
    )
    if args.json:
        print(json.dumps([f.to_plain() for f in findings], indent=2, ensure_ascii=False))
    else:
        print(
            f"ephyto doctor: the node in {args.directory}" + (" (offline)" if args.offline else "")
        )
        for line in report_lines(findings):
            print(line)
    return 1 if worst(findings) == "problem" else 0


def report_lines(findings: list[Finding]) -> list[str]:
    """One line per finding (`status  check  detail -> action`), then a count."""
    width = max((len(f.check) for f in findings), default=0)
    lines = []
    for f in findings:
        action = f" -> {f.action}" if f.action else ""
        lines.append(f"{f.status:<{_WIDTH}} {f.check:<{width}}  {f.detail}{action}")
    counts = {s: sum(f.status == s for f in findings) for s in ("ok", "warning", "problem")}
    lines.append(
        f"{counts['ok']} ok, {counts['warning']} warning(s), {counts['problem']} problem(s)"
    )
    return lines


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 60:
        raise argparse.ArgumentTypeError(f"{text}: must be more than 0 and at most 60 seconds")
    return value
