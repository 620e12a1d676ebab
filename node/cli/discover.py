"""`ephyto discover`: list the ePhyto nodes announced by mDNS on the local network.

What it prints is what nodes claim. Trust comes only from the signed directory: with a
directory, each node is shown as matching it or not; without one, as "unverified".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from node.clock import SystemClock
from node.directory.errors import UntrustedPeer
from node.directory.model import Directory
from node.errors import ConfigError
from node.identity.config import NodeConfig, load_config
from node.transport.discovery import Announcement, async_browse, require_trusted

UNVERIFIED = "unverified"
MATCHES = "matches directory"
NOTE = (
    "note: these are claims made on the local network; trust comes only from the signed "
    "directory, and a node connects to an announced endpoint only if its TLS pin is the "
    "directory's pin for that country"
)


def add_parser(commands: Any) -> None:
    discover = commands.add_parser(
        "discover",
        help="list the ePhyto nodes announced on the local network (mDNS)",
        description="Browse mDNS (zeroconf) for _ephyto._tcp announcements and list the "
        "nodes seen: country, name, endpoint, TLS pin. Discovery never grants trust: an "
        "announced endpoint is used only if its TLS pin matches the signed directory.",
    )
    discover.add_argument(
        "--timeout",
        type=_seconds,
        default=3.0,
        metavar="SECONDS",
        help="how long to listen (default: 3)",
    )
    discover.add_argument(
        "--interface",
        action="append",
        dest="interfaces",
        metavar="IP",
        help="listen on the interface with this IP address (repeatable; default: all IPv4)",
    )
    discover.add_argument("--json", action="store_true", help="print a JSON array")
    discover.add_argument(
        "--config",
        type=Path,
        metavar="node.toml",
        help="this node's config: compare what is seen with its cached directory",
    )
    discover.set_defaults(func=_discover)


def _discover(args: argparse.Namespace) -> int:
    directory: Directory | None = None
    why_unverified = "no directory given (--config)"
    if args.config is not None:
        config = load_config(args.config)
        directory = _cached_directory(config)
        if directory is None:
            why_unverified = f"no cached directory for node {config.country} yet"
    ignored: list[tuple[str, str]] = []
    seen = asyncio.run(
        async_browse(args.timeout, args.interfaces, on_ignored=lambda n, r: ignored.append((n, r)))
    )
    now = SystemClock().now()
    rows = [_row(a, directory, now) for a in seen]
    for name, reason in ignored:
        print(f"ephyto: ignored malformed announcement {name}: {reason}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    where = ", ".join(args.interfaces) if args.interfaces else "all IPv4 interfaces"
    if not rows:
        print(f"no ePhyto node announced itself within {args.timeout:g}s on {where}")
        return 0
    print(f"{len(rows)} node(s) seen within {args.timeout:g}s on {where}:")
    for row in rows:
        print(
            f"{row['country']}  {row['name']}\n"
            f"    endpoint        {row['endpoint']}\n"
            f"    TLS pin         {row['tls_pin']}\n"
            f"    signing key id  {row['signing_key_id']}\n"
            f"    version         {row['version']}\n"
            f"    directory       {row['directory']}"
        )
    if directory is None:
        print(f"{UNVERIFIED}: {why_unverified}")
    print(NOTE)
    return 0


def verdict(announcement: Announcement, directory: Directory | None, at: datetime) -> str:
    """How the directory judges an announcement: unverified, matches, or why not."""
    if directory is None:
        return UNVERIFIED
    try:
        require_trusted(announcement, directory, at)
    except UntrustedPeer as e:
        return f"DOES NOT MATCH: {e}"
    return MATCHES


def _row(a: Announcement, directory: Directory | None, at: datetime) -> dict[str, Any]:
    return {
        "country": a.country,
        "name": a.name,
        "endpoint": a.endpoint,
        "host": a.host,
        "port": a.port,
        "tls_pin": a.tls_pin,
        "signing_key_id": a.signing_key_id,
        "version": a.version,
        "directory": verdict(a, directory, at),
    }


def _cached_directory(config: NodeConfig) -> Directory | None:
    """The node's cached directory, verified against its trust anchor; None if unusable."""
    from node.directory import DirectoryError
    from node.directory.refresh import load
    from node.service import DIRECTORY_CACHE, read_anchor

    cache = config.path(DIRECTORY_CACHE)
    if not cache.exists():
        return None
    try:
        return load(cache, read_anchor(config)).usable(SystemClock().now())
    except (DirectoryError, ConfigError):
        return None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError(f"{text}: must be more than 0 and at most 600 seconds")
    return value
