"""`ephyto registry timestamp` and the re-signing options of `ephyto registry serve`.

The timestamp (registry/timestamp.py) must be re-signed well within its validity, or every
node warns that the registry looks frozen: by `registry serve` itself (every hour by
default), or by cron running `ephyto registry timestamp` where the files are served by
another web server or a static mirror.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from node.identity.enrolment import format_time
from registry.cli_common import Command, actor
from registry.publish import RegistryError, parse_duration
from registry.state import RegistryState
from registry.timestamp import (
    DEFAULT_EVERY,
    DEFAULT_VALIDITY,
    TIMESTAMP_FILE,
    check_schedule,
    create_key,
    resign,
    timestamp_keys,
)


def add_parsers(sub: Any, command: Command) -> None:
    """Add `timestamp` to `ephyto registry`; `command` makes a parser with --dir."""
    stamp = command(
        sub,
        "timestamp",
        _timestamp,
        "re-sign timestamp.json (the short-lived statement of the newest directory) with the"
        " registry's online key; run it from cron unless `registry serve` re-signs it",
    )
    stamp.add_argument(
        "--expires-in",
        default=_text(DEFAULT_VALIDITY),
        metavar="DURATION",
        help="how long nodes believe it: 1d, 12h, 90m (default: 1d); re-sign at least twice"
        " within it",
    )
    stamp.add_argument(
        "--new-key",
        action="store_true",
        help="make a new online timestamp key first (a registry made before timestamps, or"
        " a key that leaked): every key held signs; the next publish lists only the new one",
    )


def add_serve_arguments(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--timestamp-every",
        default=_text(DEFAULT_EVERY),
        metavar="DURATION",
        help="re-sign timestamp.json this often while serving (default: 1h; 0s: never, when"
        " cron runs `ephyto registry timestamp`)",
    )
    serve.add_argument(
        "--timestamp-expires-in",
        default=_text(DEFAULT_VALIDITY),
        metavar="DURATION",
        help="validity of each timestamp signed while serving (default: 1d)",
    )


def serve_schedule(args: argparse.Namespace) -> tuple[timedelta, timedelta] | None:
    """(every, validity) for `serve`, None when it does not re-sign; RegistryError."""
    every = parse_duration(args.timestamp_every)
    validity = parse_duration(args.timestamp_expires_in)
    if every == timedelta(0):
        return None
    check_schedule(every, validity)
    return every, validity


def _timestamp(args: argparse.Namespace) -> int:
    state = RegistryState(args.directory)
    validity = parse_duration(args.expires_in)
    now = datetime.now(UTC)
    if args.new_key:
        kid = create_key(state.root)
        # Logged: who vouches for freshness changed. The re-signs themselves are not (hourly,
        # they would drown the decisions the audit log is for).
        state.audit("timestamp-key", actor(), now, {"key_id": kid, "listed_from": "next publish"})
        print(f"created timestamp key {kid} in {state.root / 'timestamp'} (mode 0600)")
        print("  listed in timestamp_keys from the next `ephyto registry publish`")
    signed = resign(state.root, now, validity)
    if signed is None:
        raise RegistryError(
            "this registry has no timestamp key (made before timestamps): run"
            " `ephyto registry timestamp --new-key`, then `ephyto registry publish`"
        )
    timestamp = signed[0]
    current = state.current()
    listed = current is not None and current.timestamp_keys == timestamp_keys(state.root)
    print(f"signed timestamp version {timestamp.version}: {state.root / TIMESTAMP_FILE}")
    ref = timestamp.directory
    print(f"  directory  version {ref.version}, sha256 {ref.sha256}, {ref.length} bytes")
    print(f"  expires    {format_time(timestamp.expires)} (re-sign well before then)")
    if not listed:
        print("  the current directory does not list the active timestamp key: publish")
    return 0


def _text(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
