"""The registry's online timestamp key and timestamp.json (docs/maintainers.md).

The maintainers' keys sign the directory and stay offline; the timestamp key stays online,
next to the serving process, and re-signs timestamp.json every hour or so: "the newest
directory is version V, SHA-256 H, L bytes; believe this until T". A node that stops
getting a fresh one notices within a day that the registry is frozen or held back
(docs/protocol.md, Part C "The timestamp"). Layout beside the registry's files:

    timestamp/<keyid>.key   an online Ed25519 private key, PKCS#8 PEM, 0600
    timestamp/active        the key id the next publish lists in `timestamp_keys`
    timestamp.json          the newest signed timestamp, replaced atomically

Every key held in timestamp/ signs, so after `registry timestamp --new-key` the old key
goes on vouching for nodes that still trust the directory listing it, and the new one for
the nodes that fetched the next publish; remove an old key file once every directory
listing it has expired. A registry made before timestamps has no timestamp/ folder: it
publishes without a timestamp role until `registry timestamp --new-key` adds one.

This module imports none of the registry's stores (registry.layout imports it): it works
on the folder.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto.ids import key_id
from node.directory import DirectoryError, MaintainerKey, MaintainerSet
from node.directory.freshness import ExpiryWarned, expiry_warning_due
from node.directory.signing import parse_signed
from node.directory.timestamp import DirectoryRef, Timestamp, parse_timestamp, sign_timestamp
from node.fileio import exclusive_lock, write_atomic, write_exclusive
from node.identity.enrolment import format_time
from node.identity.keyring import signing_id
from node.identity.keys import load_signing_key, private_key_pem
from registry.publish import RegistryError

TIMESTAMP_DIR: Final = "timestamp"
TIMESTAMP_FILE: Final = "timestamp.json"
ACTIVE_FILE: Final = "active"
KEY_NAME: Final = "registry timestamp"  # the key's display name in `timestamp_keys`
# Nodes refresh hourly: re-signed every hour and valid for a day, a node stops trusting a
# frozen registry within about a day (its directory is fresh only while the timestamp is),
# while a re-sign job that misses a few runs (a restart, a slow disk) is forgiven 23 times
# over before any node warns.
DEFAULT_VALIDITY: Final = timedelta(days=1)
DEFAULT_EVERY: Final = timedelta(hours=1)
MAX_VALIDITY: Final = timedelta(days=7)
_CURRENT: Final = "current.json"  # registry.publication.CURRENT_FILE (not imported, see above)

log = logging.getLogger(__name__)


def create_key(root: Path) -> str:
    """A new online key in timestamp/<keyid>.key (0600), made the active one; its key id.

    The caller writes the audit entry (registry.layout's init, or `registry timestamp
    --new-key`): a new key changes who vouches for freshness, so it goes in the record.
    """
    folder = root / TIMESTAMP_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    kid = key_id(key.public_key().public_bytes_raw())
    write_exclusive(folder / f"{kid}.key", private_key_pem(key), 0o600)
    write_atomic(folder / ACTIVE_FILE, kid.encode("ascii") + b"\n", 0o644)
    return kid


def timestamp_keys(root: Path) -> MaintainerSet | None:
    """The `timestamp_keys` the next publish lists: threshold 1, the active key; None for a
    registry without a timestamp key (it publishes without a timestamp role)."""
    try:
        kid = (root / TIMESTAMP_DIR / ACTIVE_FILE).read_text("ascii").strip()
    except FileNotFoundError:
        return None
    key = next((k for k in held_keys(root) if signing_id(k) == kid), None)
    if key is None:
        raise RegistryError(
            f"{root / TIMESTAMP_DIR / ACTIVE_FILE} names key {kid!r}, which is not held in"
            f" {root / TIMESTAMP_DIR}: run `ephyto registry timestamp --new-key`"
        )
    raw = key.public_key().public_bytes_raw()
    return MaintainerSet(1, (MaintainerKey(KEY_NAME, kid, raw),))


def held_keys(root: Path) -> list[Ed25519PrivateKey]:
    """Every timestamp key in timestamp/, by key id; RegistryError for a damaged file."""
    folder = root / TIMESTAMP_DIR
    if not folder.is_dir():
        return []
    keys = []
    for path in sorted(folder.glob("*.key")):
        key = load_signing_key(path.read_bytes(), str(path))
        if signing_id(key) != path.stem:
            raise RegistryError(f"{path} holds key {signing_id(key)}, not {path.stem}")
        keys.append(key)
    return keys


def next_timestamp(
    previous: Timestamp | None,
    directory_version: int,
    directory_bytes: bytes,
    now: datetime,
    validity: timedelta = DEFAULT_VALIDITY,
) -> Timestamp:
    """The timestamp after `previous`, naming the directory `directory_bytes` (pure).

    The version is the Unix time in seconds, or `previous + 1` when that is larger: it
    grows with every re-sign, and a lost timestamp.json does not restart it at 1 (nodes
    would refuse that as a rollback) as long as the clock does not run backwards.
    """
    if not timedelta(minutes=1) <= validity <= MAX_VALIDITY:
        raise RegistryError(
            f"a timestamp must be valid for 1 minute to {MAX_VALIDITY.days} days, not {validity}"
        )
    issued = now.astimezone(UTC).replace(microsecond=0)
    version = int(issued.timestamp())
    if previous is not None:
        version = max(version, previous.version + 1)
    ref = DirectoryRef.of(directory_version, directory_bytes)
    return Timestamp(version, issued, issued + validity, ref)


def resign(
    root: Path, now: datetime, validity: timedelta = DEFAULT_VALIDITY
) -> tuple[Timestamp, bytes] | None:
    """Sign a fresh timestamp.json naming current.json with every key held; None when the
    registry holds no timestamp key. RegistryError when nothing is published yet.

    Not in the audit log: re-signed hourly, it would drown the decisions the log is for,
    and it decides nothing (it repeats what the maintainers published). Key creation is.
    """
    keys = held_keys(root)
    if not keys:
        return None
    # cron and `serve` may re-sign at once
    with exclusive_lock(root / TIMESTAMP_DIR / ".lock", 0o600):
        try:
            data = (root / _CURRENT).read_bytes()
        except FileNotFoundError:
            raise RegistryError(
                "nothing is published yet: run `ephyto registry publish` first"
            ) from None
        try:
            version = parse_signed(data).directory.version
        except DirectoryError as exc:
            raise RegistryError(f"{root / _CURRENT}: {exc}") from None
        path = root / TIMESTAMP_FILE
        previous = None
        try:
            previous = parse_timestamp(path.read_bytes()).timestamp
        except FileNotFoundError:
            pass
        except DirectoryError as exc:
            # Replaced, not trusted: the version still grows with the clock (next_timestamp).
            log.warning("%s is damaged (%s): signing a new one", path, exc)
        timestamp = next_timestamp(previous, version, data, now, validity)
        signed = sign_timestamp(timestamp, keys)
        write_atomic(path, signed, 0o644)
    return timestamp, signed


def check_schedule(every: timedelta, validity: timedelta) -> None:
    """Refuse (RegistryError) a re-sign interval that lets the timestamp lapse in between."""
    if every <= timedelta(0) or every * 2 > validity:
        raise RegistryError(
            f"re-signing every {every} with timestamps valid for {validity} lets them lapse:"
            " re-sign at least twice per validity (default: every 1h, valid 1d)"
        )


async def resign_forever(
    root: Path,
    every: timedelta,
    validity: timedelta = DEFAULT_VALIDITY,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Re-sign timestamp.json now and every `every`, until cancelled (or no key is held);
    warn (daily, node/directory/freshness.py) when the directory nears its own expiry."""
    check_schedule(every, validity)
    warned: ExpiryWarned | None = None
    while True:
        try:
            signed = await asyncio.to_thread(resign, root, clock(), validity)
        except (RegistryError, DirectoryError, OSError) as exc:
            # Keep serving and retrying: nodes warn once the timestamp lapses; the operator
            # sees this line first.
            log.error("could not re-sign %s: %s", root / TIMESTAMP_FILE, exc)
        else:
            if signed is None:
                log.warning("no timestamp key in %s: nothing to re-sign", root)
                return
            log.info("re-signed timestamp version %d", signed[0].version)
            warned = _warn_if_expiring(root, clock(), warned)
        await asyncio.sleep(every.total_seconds())


def _warn_if_expiring(root: Path, now: datetime, last: ExpiryWarned | None) -> ExpiryWarned | None:
    # The timestamp keeps nodes current, not the directory alive: its expiry needs the
    # maintainers' signing round, and whoever runs `serve` should hear of it first.
    try:
        directory = parse_signed((root / _CURRENT).read_bytes()).directory
    except (OSError, DirectoryError):
        return last  # said by the re-sign itself
    mark = expiry_warning_due(last, directory, now)
    if mark is None:
        return last
    log.warning(
        "directory version %d expires at %s: propose, sign and publish a new version before"
        " then (nodes warn their operators too)",
        directory.version,
        format_time(directory.expires),
    )
    return mark


def resign_context(
    root: Path, every: timedelta, validity: timedelta = DEFAULT_VALIDITY
) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp cleanup context running `resign_forever` while the app serves."""
    check_schedule(every, validity)

    async def context(app: web.Application) -> AsyncIterator[None]:
        async with alongside(resign_forever(root, every, validity)):
            yield

    return context


@asynccontextmanager
async def alongside(job: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run `job` as a task for the duration of the block, then cancel it."""
    task = asyncio.create_task(job)
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
