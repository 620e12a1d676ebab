"""`ephyto registry settings` and `registry init --directory-days`: the maintainers' settings
(registry/settings.py), today how long each published directory version is valid."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from registry.cli_common import Command, actor, named_signer
from registry.publish import RegistryError
from registry.settings import MAX_DIRECTORY_DAYS, SETTINGS_FILE, has_timestamp_role, parse_days
from registry.state import RegistryState

_DAYS_HELP = (
    f"how many days each published directory version is valid (1-{MAX_DIRECTORY_DAYS};"
    " default: 90 with a timestamp key, 7 without); the online timestamp keeps nodes current"
    " meanwhile, so the maintainers sign only for changes or before it runs out"
)


def add_init_arguments(init: argparse.ArgumentParser) -> None:
    """`--directory-days` on `ephyto registry init`."""
    init.add_argument("--directory-days", metavar="N", help=_DAYS_HELP)


def init_directory_days(args: argparse.Namespace) -> int | None:
    """`init --directory-days` checked (RegistryError), None when not given."""
    return None if args.directory_days is None else parse_days(args.directory_days)


def add_parsers(sub: Any, command: Command) -> None:
    """Add `settings` to `ephyto registry`; `command` makes a parser with --dir."""
    settings = command(
        sub,
        "settings",
        _settings,
        "show the registry's settings, or change how long each published directory version"
        " is valid (from the next publish; recorded in the audit log)",
    )
    settings.add_argument("--directory-days", metavar="N", help=_DAYS_HELP)
    settings.add_argument(
        "--maintainer",
        metavar="NAME",
        help="the maintainer changing it (signs the audit line; default: the first"
        " maintainer whose key is here)",
    )
    settings.add_argument("--key", type=Path, metavar="FILE", help="that maintainer's key")


def _settings(args: argparse.Namespace) -> int:
    state = RegistryState(args.directory)
    if args.directory_days is not None:
        days = parse_days(args.directory_days)  # checked before anything is read or signed
        before, after = state.set_directory_days(
            days, datetime.now(UTC), actor(), named_signer(state, args)
        )
        print(f"directory validity: {before} -> {after} days, from the next publish")
        print("  published versions keep their own expiry; recorded in the audit log")
    elif args.maintainer is not None or args.key is not None:
        raise RegistryError("--maintainer and --key sign a change: pass --directory-days N")
    chosen = state.settings().directory_days
    role = has_timestamp_role(state.root)
    source = "chosen" if chosen is not None else "default"
    print(f"directory validity  {state.directory_days()} days ({source}; {SETTINGS_FILE})")
    print(
        "timestamp role      "
        + (
            "yes: nodes stay current through the daily timestamp"
            if role
            else "no: nodes know only the directory's expiry; publish often"
            " (or add one: `ephyto registry timestamp --new-key`)"
        )
    )
    return 0
