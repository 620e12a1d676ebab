"""`ephyto node init --discover`: find a lab's registry by mDNS, trust it by fingerprint.

Discovery only says where a directory might be. Trust comes from the operator: the
fetched directory's maintainer set must have the fingerprint a maintainer read out to
them by another channel (`--fingerprint`, or typed at the prompt), and a threshold of
that set must have signed it. Only then is the node configured, through the very code
of `ephyto node configure --registry URL --anchor FILE`. On any failure node.toml is
left pointing at no registry; the identity that init just created stays.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

from node.cli.discover import _seconds
from node.directory.errors import DirectoryError
from node.directory.fingerprint import (
    MIN_CONFIRM_DIGITS,
    confirms,
    directory_confirmed_by,
    format_fingerprint,
    parse_fingerprint,
)
from node.directory.model import Directory
from node.directory.refresh import RegistryUnreachableError, fetch, refuse_over
from node.directory.signing import DEFAULT_MAX_BYTES
from node.errors import EphytoError, InputError
from node.transport.discovery import DiscoveryError
from node.transport.registry_discovery import RegistryAnnouncement, async_browse_registries

FETCH_TIMEOUT: Final = 30.0
NOTE: Final = (
    "note: an announcement is only a claim by whoever is on the network; the registry is"
    " trusted only if its maintainer set has the fingerprint you confirm, which a"
    " maintainer must give you by another channel (phone, letter)"
)


class RegistryNotConfirmed(EphytoError):
    """No announced registry could be trusted: node.toml points at no registry."""


@dataclass(frozen=True, slots=True)
class Confirmed:
    """A registry the operator confirmed: where its directory is, and what it holds."""

    url: str
    directory: Directory
    fingerprint: str


def add_arguments(init: argparse.ArgumentParser) -> None:
    """`--discover` and its options, on `ephyto node init` and `ephyto node configure`."""
    init.add_argument(
        "--discover",
        action="store_true",
        help="then find the registry announced on the local network (mDNS) and configure the"
        " node for it, once you confirm its maintainer-set fingerprint",
    )
    init.add_argument(
        "--interface",
        action="append",
        dest="interfaces",
        metavar="IP",
        help="with --discover: listen on the interface with this IP address (repeatable;"
        " default: all IPv4)",
    )
    init.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="with --discover: how long to listen (default: 3)",
    )
    init.add_argument(
        "--fingerprint",
        metavar="FP",
        help="with --discover: the maintainer-set fingerprint a maintainer gave you by another"
        " channel (`ephyto registry fingerprint`); without it you are asked to type it",
    )


def check_arguments(args: argparse.Namespace) -> str | None:
    """Refuse misused options before init creates anything; the --fingerprint digits or None."""
    if not args.discover:
        given = [
            flag
            for flag, value in (
                ("--interface", args.interfaces),
                ("--timeout", args.timeout),
                ("--fingerprint", args.fingerprint),
            )
            if value is not None
        ]
        if given:
            raise InputError(f"{', '.join(given)}: only with --discover")
        return None
    if args.fingerprint is None:
        return None
    return parse_fingerprint(args.fingerprint)  # all 64 digits: nothing is typed in haste here


def discover_and_configure(
    args: argparse.Namespace,
    digits: str | None,
    configure: Callable[[Sequence[str]], int],
    *,
    stdin: TextIO | None = None,
) -> int:
    """Browse, let the operator confirm, fetch and check, then `configure` (node configure).

    `configure` runs `ephyto node configure` with the options given as command-line
    words, so that every option left out takes the command's own default.

    RegistryNotConfirmed, saying why, when no registry can be trusted (mDNS failing
    included); then nothing is configured.
    """
    timeout = 3.0 if args.timeout is None else args.timeout
    where = ", ".join(args.interfaces) if args.interfaces else "all IPv4 interfaces"
    left = _left_as_is(args)
    print(f"looking for registries announced within {timeout:g}s on {where} ...", flush=True)
    try:
        found = asyncio.run(
            async_browse_registries(
                timeout,
                args.interfaces,
                on_ignored=lambda name, why: print(
                    f"ephyto: ignored malformed registry announcement {name}: {why}",
                    file=sys.stderr,
                ),
            )
        )
    except DiscoveryError as e:
        raise RegistryNotConfirmed(f"{e}; {left}") from e
    if not found:
        raise RegistryNotConfirmed(
            f"no registry announced itself within {timeout:g}s on {where}; {left}"
        )
    print(f"{len(found)} registr{'y' if len(found) == 1 else 'ies'} found:")
    for announcement in found:
        print(f"  {announcement.url}" + _named(announcement))
        print(f"      claims fingerprint {format_fingerprint(announcement.fingerprint)}")
    print(NOTE, flush=True)
    if digits is None:
        digits = _ask(stdin or sys.stdin, len(found), left)
    candidates = choose(found, digits)
    if not candidates:
        raise RegistryNotConfirmed(
            f"no registry found announces the fingerprint you confirmed ({_start(digits)});"
            f" check it with the maintainer; {left}"
        )
    confirmed = asyncio.run(_first_trusted(candidates, digits))
    if isinstance(confirmed, list):
        raise RegistryNotConfirmed(f"{'; '.join(confirmed)}; {left}")
    maintainers = confirmed.directory.maintainers
    print(
        f"trusted {confirmed.url}: directory version {confirmed.directory.version}, signed by"
        f" at least {maintainers.threshold} of its {len(maintainers.keys)} maintainers, whose"
        f" set has the fingerprint you confirmed, {confirmed.fingerprint}"
    )
    return _configure(args, confirmed, configure)


def choose(found: Sequence[RegistryAnnouncement], digits: str) -> list[RegistryAnnouncement]:
    """The announcements claiming the confirmed fingerprint, in order; each still to check."""
    return [a for a in found if confirms(digits, a.fingerprint)]


def _ask(stdin: TextIO, count: int, left: str) -> str:
    print(
        "type the maintainer-set fingerprint a registry maintainer gave you (`ephyto registry"
        f" fingerprint`), all of it or at least its first {MIN_CONFIRM_DIGITS} hex digits:",
        flush=True,
    )
    line = stdin.readline()
    if not line:
        several = f"{count} registries found and " if count > 1 else ""
        raise RegistryNotConfirmed(
            f"{several}no fingerprint confirmed (no input): pass --fingerprint FP as a"
            f" maintainer gave it to you; {left}"
        )
    try:
        return parse_fingerprint(line, min_digits=MIN_CONFIRM_DIGITS)
    except InputError as e:
        raise RegistryNotConfirmed(f"{e}; {left}") from None


async def _first_trusted(
    candidates: Sequence[RegistryAnnouncement], digits: str
) -> Confirmed | list[str]:
    """The first candidate whose directory the operator's fingerprint confirms, else why not.

    Any of them will do: what is trusted is the signed content, not the address, so a
    rogue that claims the right fingerprint is refused and the next one tried.
    """
    import aiohttp

    refused: list[str] = []
    for announcement in candidates:
        url = announcement.url
        try:
            # Bounded as a refresh is: a rogue registry must not fill memory.
            _, data = await fetch(
                aiohttp.ClientSession,
                url,
                timeout=FETCH_TIMEOUT,
                limit=DEFAULT_MAX_BYTES,
                too_large=refuse_over(DEFAULT_MAX_BYTES),
            )
            directory, fingerprint = directory_confirmed_by(data, digits)
        except DirectoryError as e:
            refused.append(f"refused {url}: {e}")
        except RegistryUnreachableError as e:
            refused.append(f"cannot fetch {url}: {e}")
        else:
            return Confirmed(url, directory, fingerprint)
        print(f"ephyto: {refused[-1]}", file=sys.stderr)
    return refused


def _configure(
    args: argparse.Namespace, confirmed: Confirmed, configure: Callable[[Sequence[str]], int]
) -> int:
    # The anchor as the registry writes maintainers/maintainers.json, so the two compare.
    anchor = json.dumps(confirmed.directory.maintainers.to_plain(), indent=2, sort_keys=True)
    with tempfile.TemporaryDirectory(prefix="ephyto-anchor-") as tmp:
        path = Path(tmp) / "maintainers.json"
        path.write_bytes(anchor.encode("utf-8") + b"\n")
        command = ["--dir", str(args.directory)]
        # `node configure --discover` may carry configure's own options: keep them.
        for flag, value in (
            ("--api-port", getattr(args, "api_port", None)),
            ("--retry-cap", getattr(args, "retry_cap", None)),
        ):
            if value is not None:
                command += [flag, str(value)]
        return configure([*command, "--registry", confirmed.url, "--anchor", str(path)])


def _left_as_is(args: argparse.Namespace) -> str:
    directory = args.directory
    if getattr(args, "node_command", None) == "configure":
        return (
            f"node.toml in {directory} is unchanged: try again, or configure by hand with"
            f" `ephyto node configure --dir {directory} --registry URL --anchor FILE`"
        )
    return (
        f"node.toml in {directory} points at no registry (the identity just created stays):"
        f" try `ephyto node configure --dir {directory} --discover` again, or configure it"
        f" with `ephyto node configure --dir {directory} --registry URL --anchor FILE` with"
        " the anchor from a maintainer"
    )


def _named(announcement: RegistryAnnouncement) -> str:
    return "" if announcement.name is None else f"  ({announcement.name})"


def _start(digits: str) -> str:
    shown = digits if len(digits) <= MIN_CONFIRM_DIGITS else digits[:MIN_CONFIRM_DIGITS] + "..."
    return f"sha256:{shown}"
