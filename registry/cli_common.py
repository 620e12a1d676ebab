"""What the `ephyto registry` command modules share: the type of their parser factory, who
ran the command, the maintainer acting, and reading an input file up to its size limit."""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Callable
from pathlib import Path
from typing import Any

from registry.governance import Signer
from registry.publish import RegistryError
from registry.state import RegistryState

# (subparsers, name, handler, help) -> a parser with --dir
Command = Callable[[Any, str, Any, str], argparse.ArgumentParser]


def actor() -> str:
    """Who ran the command (the system user), for the audit log; the maintainer's key signs."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def named_signer(state: RegistryState, args: argparse.Namespace) -> Signer | None:
    """The maintainer named by --maintainer (with --key, their key file); None if unnamed."""
    if args.maintainer is None:
        if args.key is not None:
            raise RegistryError("--key needs --maintainer (whose key it is)")
        return None
    return state.signer(args.maintainer, args.key)


def acting_signer(state: RegistryState, args: argparse.Namespace) -> Signer:
    """The maintainer named by --maintainer, else the first whose key is held here."""
    signer = named_signer(state, args) or state.default_signer()
    if signer is None:
        raise RegistryError("no maintainer key is held here: name one with --maintainer, --key")
    return signer


def read_at_most(path: Path, limit: int) -> bytes:
    """The start of `path`, one byte over `limit` at most: enough for the check that
    follows to refuse a larger file without reading all of it."""
    with path.open("rb") as f:
        return f.read(limit + 1)
