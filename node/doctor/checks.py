"""The checks of `ephyto doctor`, pure: values in, a Finding out; no files, no network, no clock.

Each finding says what was found and, when it is not ok, what to do, in words an NPPO's
IT team can act on. The shell (node.doctor.run) reads the files, asks the network and
passes what it found here.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from node.crypto.ids import tls_pin
from node.directory.model import Directory, KeyEntry, KeyKind, MaintainerSet, TlsPin, switch_time
from node.directory.timestamp import Timestamp
from node.identity.config import NodeConfig
from node.identity.enrolment import format_time
from node.identity.keyring import Listed, listed_id, listed_name, rotation_stage
from node.identity.store import ROTATION_FILE
from node.identity.tls_choice import presented_pin

Status = Literal["ok", "warning", "problem"]
STATUSES: Final[tuple[Status, ...]] = ("ok", "warning", "problem")

DEFAULT_TIMEOUT: Final = 2.0  # seconds for each partner's TLS connection
CERTIFICATE_WARNING: Final = timedelta(days=30)
DIRECTORY_WARNING: Final = timedelta(days=1)
# The registry re-signs its day-long timestamp hourly: half a day left means it stopped.
TIMESTAMP_WARNING: Final = timedelta(hours=12)
SKEW_WARNING: Final = timedelta(seconds=30)
SKEW_PROBLEM: Final = timedelta(minutes=5)
CONFIGURE: Final = "run `ephyto node configure --dir {dir} --registry URL --anchor FILE`"
FINISH: Final = (
    "run `ephyto node rotate-keys --finish --dir {dir}`: the next keys become the current"
    " ones, the old private keys are kept in keys/retired/"
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the report: which check, how it went, what was seen, what to do."""

    check: str
    status: Status
    detail: str
    action: str | None = None  # None when ok

    def to_plain(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status,
            "detail": self.detail,
            "action": self.action,
        }


def ok(check: str, detail: str) -> Finding:
    return Finding(check, "ok", detail)


def warning(check: str, detail: str, action: str) -> Finding:
    return Finding(check, "warning", detail, action)


def problem(check: str, detail: str, action: str) -> Finding:
    return Finding(check, "problem", detail, action)


def worst(findings: Sequence[Finding]) -> Status:
    """The most serious status among `findings` ("ok" for none)."""
    return max((f.status for f in findings), key=STATUSES.index, default="ok")


# --- 1. the configuration ---------------------------------------------------------------


def registry_settings(config: NodeConfig) -> Finding:
    """node.toml names the registry's URL and the maintainers' trust anchor."""
    missing = [
        name
        for name, value in (("url", config.registry_url), ("anchor", config.registry_anchor))
        if value is None
    ]
    if missing:
        return problem(
            "config",
            f"node.toml has no registry {' and no '.join(missing)}: the node cannot get"
            " or trust a directory",
            CONFIGURE.format(dir=config.directory),
        )
    return ok(
        "config",
        f"node {config.country} ({config.name}); registry {config.registry_url},"
        f" trust anchor {config.registry_anchor}",
    )


def anchor_finding(
    config: NodeConfig, path: str, anchor: MaintainerSet | None, error: str | None
) -> Finding:
    """The trust anchor file loaded (`anchor`) or not (`error`)."""
    if anchor is None:
        return problem(
            "trust anchor",
            error or f"{path}: cannot be read",
            f"get the maintainers' maintainers.json again (check its key ids with them by"
            f" phone) and {CONFIGURE.format(dir=config.directory)}",
        )
    return ok(
        "trust anchor",
        f"{path}: threshold {anchor.threshold} of {len(anchor.keys)} maintainer key(s)",
    )


def private_file_mode(check: str, path: str, mode: int) -> Finding | None:
    """A warning when a private file (key, node.toml) is open to group or others."""
    if mode & 0o077 == 0:
        return None
    return warning(
        check,
        f"{path} has mode {mode & 0o777:04o}: others on this machine can read a secret",
        f"chmod 600 {path}",
    )


# --- 2. keys and the TLS certificate ----------------------------------------------------


def key_loaded(check: str, path: str, error: str | None, mode: int | None) -> Finding:
    """A private key file: loaded (ok, or a warning for its mode), or why not."""
    if error is not None:
        return problem(
            check,
            error,
            f"restore {path} from this node's backup; without it the node needs a new"
            " identity (`ephyto node init`) and a new enrolment",
        )
    return _loads(check, path, mode)


def _loads(check: str, path: str, mode: int | None) -> Finding:
    """A private key file that loads: ok, or a warning when its mode lets others read it."""
    if mode is not None and (loose := private_file_mode(check, path, mode)) is not None:
        return loose
    shown = "" if mode is None else f" (mode {mode & 0o777:04o})"
    return ok(check, f"{path} loads{shown}")


def certificate_validity(
    path: str,
    certificate: x509.Certificate,
    tls_public_key_der: bytes | None,
    now: datetime,
    check: str = "TLS certificate",
) -> Finding:
    """The TLS certificate (or the next one, by `check`): for the TLS key, valid now, and
    not about to expire."""
    if tls_public_key_der is not None and _spki(certificate) != tls_public_key_der:
        return problem(
            check,
            f"{path} is not the certificate of the TLS key: TLS connections will fail",
            "restore the certificate and key of this node together, from the same backup",
        )
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    pin = tls_pin(certificate)
    renew = (
        "renew the keys before then: `ephyto node rotate-keys` makes new ones (TLS included,"
        " valid two years), then send rotation-request.json to the registry maintainers"
    )
    if now < start:
        return problem(
            check,
            f"{path} is valid only from {format_time(start)}, in the future",
            "check this machine's clock (NTP); partners refuse a certificate not yet valid",
        )
    if now >= end:
        return problem(
            check,
            f"{path} expired at {format_time(end)}: partners refuse this node",
            "run `ephyto node rotate-keys` and send rotation-request.json to the registry"
            " maintainers, confirming it by another channel (the key that signs it has"
            " expired); they may ask for a new enrolment (`ephyto node init` in a new"
            " directory) instead",
        )
    left = end - now
    if left < CERTIFICATE_WARNING:
        return warning(check, f"{path} expires at {format_time(end)}, in {_days(left)}", renew)
    return ok(check, f"valid until {format_time(end)} ({_days(left)}); pin {pin}")


# --- 3. the cached directory -------------------------------------------------------------


def cached_directory(
    path: str,
    directory: Directory | None,
    error: str | None,
    anchor: MaintainerSet,
    now: datetime,
) -> Finding:
    """The node's copy of the directory: present, verified, its version and expiry."""
    check = "directory"
    if error is not None:
        return problem(
            check,
            error,
            f"move {path} aside and start the node with the registry reachable: it fetches"
            " a fresh copy and checks it against the trust anchor",
        )
    if directory is None:
        return problem(
            check,
            f"no cached directory ({path}): the node has never trusted one, so it can"
            " exchange with nobody",
            "start the node (`ephyto node serve`) with the registry reachable; it fetches"
            " the directory at start",
        )
    rotated = (
        ""
        if directory.maintainers == anchor
        else "; signed by maintainers rotated since the anchor"
    )
    expires = directory.expires
    if now >= expires:
        return problem(
            check,
            f"version {directory.version} expired at {format_time(expires)}: the node"
            " refuses every partner until it gets a fresh one",
            "make sure the node runs and reaches the registry (see the registry check);"
            " if the registry's copy is expired too, ask the maintainers to publish",
        )
    left = expires - now
    if left < DIRECTORY_WARNING:
        return warning(
            check,
            f"version {directory.version} expires at {format_time(expires)}, in"
            f" {_hours(left)}{rotated}",
            "make sure the node runs and reaches the registry; if the registry has"
            " nothing newer, ask the maintainers to publish",
        )
    return ok(
        check,
        f"version {directory.version}, verified, expires {format_time(expires)}{rotated}",
    )


def registry_timestamp(
    path: str, directory: Directory, timestamp: Timestamp | None, now: datetime
) -> Finding | None:
    """The registry's signed timestamp the node trusts: fresh, expiring, or expired (a frozen
    registry); None when the directory declares no timestamp keys."""
    check = "timestamp"
    if directory.timestamp_keys is None:
        return None
    running = "make sure the node runs and reaches the registry (see the registry check)"
    if timestamp is None:
        return warning(
            check,
            f"no trusted timestamp ({path}): the node has not yet confirmed that directory"
            f" version {directory.version} is the registry's newest",
            f"{running}; if it does and this stays, ask the maintainers about timestamp.json",
        )
    named = f"version {timestamp.version}, names directory version {timestamp.directory.version}"
    if now >= timestamp.expires:
        return problem(
            check,
            f"{named}, expired at {format_time(timestamp.expires)}: registry frozen or"
            " unreachable timestamp; the node trusts no partner until a fresh one arrives",
            f"{running}; if it does, ask the maintainers: their timestamp is not re-signed,"
            " or someone in between holds this node on old copies",
        )
    left = timestamp.expires - now
    if left < TIMESTAMP_WARNING:
        return warning(
            check,
            f"{named}, expires soon: {format_time(timestamp.expires)}, in {_hours(left)}",
            f"{running}; if it does, ask the maintainers whether their timestamp job runs",
        )
    return ok(check, f"{named}, expires {format_time(timestamp.expires)}")


@dataclass(frozen=True, slots=True)
class OwnKeys:
    """This node's public identifiers, as far as its files could be read (None: unreadable)."""

    signing_key_id: str | None
    encryption_key_id: str | None
    tls_pin: str | None
    # The next keys of a rotation under way (node.toml [keys] next_*), when they load.
    next_signing_key_id: str | None = None
    next_encryption_key_id: str | None = None
    next_tls_pin: str | None = None


def own_entry(
    directory: Directory, config: NodeConfig, keys: OwnKeys, now: datetime
) -> list[Finding]:
    """This node in the directory: listed, active, same endpoint, same keys and pin."""
    country, version = config.country, directory.version
    entry = next((n for n in directory.nppos if n.country == country), None)
    enrol = (
        "send enrolment-request.json to the registry maintainers and ask them to enrol"
        f" {country} and publish"
    )
    if entry is None:
        return [
            problem(
                "listed",
                f"{country} is not in directory version {version}: no partner accepts this node",
                enrol,
            )
        ]
    if entry.status != "active":
        return [
            problem(
                "listed",
                f"{country} is {entry.status} in directory version {version}: partners"
                " refuse this node",
                "contact the registry maintainers",
            )
        ]
    findings = [ok("listed", f"{country} ({entry.name}) is active in version {version}")]
    ours = None if config.endpoint is None else config.endpoint.url
    if _same_url(ours, entry.endpoint):
        findings.append(ok("endpoint", f"{ours or 'none (through the hub only)'}, as listed"))
    else:
        findings.append(
            problem(
                "endpoint",
                f"the directory lists {entry.endpoint or 'no endpoint'} for {country},"
                f" node.toml has {ours or 'none'}: partners go where the directory says",
                "correct `endpoint` in node.toml, or ask the registry maintainers to list"
                " the endpoint this node really has",
            )
        )
    own_ids: tuple[tuple[KeyKind, str | None, str | None], ...] = (
        ("signing", keys.signing_key_id, keys.next_signing_key_id),
        ("encryption", keys.encryption_key_id, keys.next_encryption_key_id),
    )
    for kind, own, successor in own_ids:
        if own is not None:
            finding = _key_listed(directory, kind, own, entry.keys, now, enrol)
            findings.append(_retired_by(finding, own, successor, entry.keys, config, now))
    if keys.tls_pin is not None:
        finding = _pin_listed(keys.tls_pin, entry.tls_pins, country, now, enrol)
        findings.append(_retired_by(finding, keys.tls_pin, keys.next_tls_pin, entry.tls_pins,
                                    config, now))  # fmt: skip
    return findings


def _pin_listed(
    own: str, listed: Sequence[TlsPin], country: str, now: datetime, enrol: str
) -> Finding:
    check = "TLS pin"
    pins = [p for p in listed if p.pin == own]
    if not pins:
        shown = ", ".join(p.pin for p in listed) or "none"
        return problem(
            check,
            f"this node's TLS pin {own} is not the one listed for {country}"
            f" ({shown}): partners refuse its connections",
            f"use the TLS key and certificate that were enrolled, or {enrol}",
        )
    if not any(p.valid_at(now) for p in pins):
        return problem(
            check,
            f"{own} is listed but not valid now"
            f" ({format_time(pins[0].valid_from)} to {format_time(pins[0].valid_until)})",
            "check this machine's clock; otherwise ask the maintainers",
        )
    return ok(check, f"{own}, as listed")


def _key_listed(
    directory: Directory,
    kind: KeyKind,
    own: str,
    listed: Sequence[KeyEntry],
    now: datetime,
    enrol: str,
) -> Finding:
    check = f"{kind} key id"
    same = [k for k in listed if k.kind == kind and k.key_id == own]
    if not same:
        theirs = ", ".join(k.key_id for k in listed if k.kind == kind) or "none"
        return problem(
            check,
            f"this node's {kind} key {own} is not listed in version {directory.version}"
            f" (listed: {theirs}): partners cannot "
            + ("verify what it signs" if kind == "signing" else "seal certificates to it"),
            f"use the keys that were enrolled, or {enrol}",
        )
    if not any(k.valid_at(now) for k in same):
        return problem(
            check,
            f"{own} is listed but not valid now ({format_time(same[0].valid_from)} to"
            f" {format_time(same[0].valid_until)})",
            "check this machine's clock; otherwise ask the maintainers",
        )
    return ok(check, f"{own}, as listed")


def _retired_by(
    finding: Finding,
    own: str,
    successor: str | None,
    listed: Sequence[Listed],
    config: NodeConfig,
    now: datetime,
) -> Finding:
    """A current key (or TLS pin) no longer valid because its rotation's overlap ended is
    no fault: the next one is in use, and promoting it is what is left to do."""
    if finding.status != "problem" or successor is None:
        return finding
    expired = [k for k in listed if listed_id(k) == own and k.valid_until <= now]
    if not expired or not any(listed_id(k) == successor and k.valid_at(now) for k in listed):
        return finding
    return warning(
        finding.check,
        f"{own} retired at {format_time(max(k.valid_until for k in expired))} (the rotation's"
        f" overlap ended); the next key {successor} is in use",
        FINISH.format(dir=config.directory),
    )


# --- 3b. a key rotation under way ------------------------------------------------------------


def next_key_loaded(check: str, path: str, error: str | None, mode: int | None) -> Finding:
    """A next private key file (node.toml [keys] next_*): loaded, or why not."""
    if error is not None:
        return problem(
            check,
            f"{error}: node.toml names it as a next key (a rotation is under way)",
            f"restore {path} from the backup made after `ephyto node rotate-keys`; if it is"
            " lost and the registry has not published the rotation, tell the maintainers"
            " not to, remove the next_* entries of [keys] from node.toml and run"
            " `ephyto node rotate-keys` again",
        )
    return _loads(check, path, mode)


def rotation_progress(
    directory: Directory,
    config: NodeConfig,
    old_ids: Collection[str],
    next_ids: Collection[str],
    now: datetime,
) -> Finding:
    """Where the rotation to the next keys stands in the cached directory, and what to do."""
    check, version, country = "key rotation", directory.version, config.country
    entry = next((n for n in directory.nppos if n.country == country), None)
    if entry is None:
        return problem(
            check,
            f"{country} is not in directory version {version}: a rotation needs an enrolment",
            "see the listed check",
        )
    stage = rotation_stage(entry.keys, old_ids, next_ids, now)
    ids = ", ".join(sorted(next_ids))
    if stage.stage == "unpublished":
        return warning(
            check,
            f"the next keys ({ids}) are not in directory version {version} yet: partners go"
            " on with the current keys",
            f"send {config.directory / ROTATION_FILE} to the registry maintainers (`ephyto"
            " registry rotate`) and ask them to publish; the running node loads the next keys"
            " at the directory refresh that lists them",
        )
    if stage.stage == "mismatch":
        foreign = ", ".join(listed_name(k) for k in stage.foreign)
        return problem(
            check,
            f"directory version {version} lists {foreign} for {country}, not this node's next"
            f" keys ({ids}): partners seal to a key this node cannot open",
            "restore the next key files of the rotation request the registry recorded"
            " (keys/*.next.key, from backup), or ask the maintainers which request they"
            " recorded",
        )
    assert stage.new_from is not None
    until = "" if stage.old_until is None else format_time(stage.old_until)
    if stage.stage in ("waiting", "overlap"):
        return ok(
            check,
            f"the next keys ({ids}) are listed from {format_time(stage.new_from)}; the old"
            f" keys stay valid until {until} (the overlap); then run"
            " `ephyto node rotate-keys --finish`",
        )
    return warning(
        check,
        f"the overlap ended at {until}: the old keys are no longer valid, the next keys"
        f" ({ids}) are in use",
        FINISH.format(dir=config.directory),
    )


def tls_rotation_progress(
    directory: Directory, config: NodeConfig, own: str, successor: str, now: datetime
) -> Finding:
    """Where the rotation to the next TLS certificate stands in the cached directory, which
    certificate the node presents (node.identity.tls_choice), and what to do."""
    check, version, country = "TLS rotation", directory.version, config.country
    entry = next((n for n in directory.nppos if n.country == country), None)
    if entry is None:
        return problem(
            check,
            f"{country} is not in directory version {version}: a rotation needs an enrolment",
            "see the listed check",
        )
    stage = rotation_stage(entry.tls_pins, {own} - {successor}, {successor}, now)
    if stage.stage == "unpublished":
        return warning(
            check,
            f"the next TLS certificate (pin {successor}) is not in directory version {version}"
            " yet: the node presents its current one, which partners know",
            f"send {config.directory / ROTATION_FILE} to the registry maintainers (`ephyto"
            " registry rotate`) and ask them to publish; the running node loads the next"
            " certificate at the directory refresh that lists it",
        )
    if stage.stage == "mismatch":
        foreign = ", ".join(listed_name(k) for k in stage.foreign)
        return problem(
            check,
            f"directory version {version} lists {foreign} for {country}, not this node's next"
            f" TLS certificate (pin {successor}): partners will refuse this node once its"
            " current pin expires",
            "restore the next TLS key and certificate of the rotation request the registry"
            " recorded (keys/tls.next.key, keys/tls.next.crt, from backup), or ask the"
            " maintainers which request they recorded",
        )
    assert stage.new_from is not None
    until = "" if stage.old_until is None else format_time(stage.old_until)
    if stage.stage in ("waiting", "overlap"):
        new = next(p for p in entry.tls_pins if p.pin == successor)
        old = next((p for p in entry.tls_pins if p.pin == own), None)
        switch = format_time(new.valid_from if old is None else switch_time(new, old))
        presents = (
            f"presents it since {switch}"
            if presented_pin(own, successor, entry.tls_pins, now) == successor
            else f"presents its current one until {switch}"
        )
        return ok(
            check,
            f"the next TLS certificate (pin {successor}) is listed from"
            f" {format_time(stage.new_from)}; the node {presents} (halfway through the"
            f" overlap, so that every partner has refreshed its directory); the old pin stays"
            f" valid until {until}; then run `ephyto node rotate-keys --finish`",
        )
    return warning(
        check,
        f"the overlap ended at {until}: the old TLS pin is no longer valid, the node presents"
        f" its next TLS certificate (pin {successor})",
        FINISH.format(dir=config.directory),
    )


# --- 4. the registry ----------------------------------------------------------------------


def registry_answer(
    url: str,
    cached: Directory | None,
    fetched: Directory | None,
    error: str | None,
    refused: str | None,
) -> Finding:
    """What the registry answered: unreachable, refused by the trust rules, or a version."""
    check = "registry"
    if error is not None:
        return problem(
            check,
            f"unreachable: {error}",
            f"check that this machine reaches {url} (DNS, firewall, proxy); the node goes"
            " on with its cached directory while the registry's timestamp stays valid (a"
            " day) and the directory has not expired",
        )
    if refused is not None or fetched is None:
        return problem(
            check,
            f"its directory is refused: {refused}",
            "tell the registry maintainers this message; check that the trust anchor is theirs",
        )
    if cached is None or fetched.version > cached.version:
        have = "none cached" if cached is None else f"the cache has {cached.version}"
        return warning(
            check,
            f"has version {fetched.version}, {have}",
            "the running node fetches it every refresh_seconds; if it is not running,"
            " start it (`ephyto node serve`)",
        )
    return ok(check, f"reachable; version {fetched.version}, the same as the cache")


def clock_skew(remote: datetime | None, local: datetime) -> Finding:
    """The registry's HTTP `Date` against this machine's clock (whole seconds)."""
    check = "clock"
    if remote is None:
        return warning(
            check,
            "the registry's answer had no usable Date header: the clock was not compared",
            "check that this machine's clock is kept by NTP (`timedatectl status`)",
        )
    skew = local - remote
    size = abs(skew)
    # The Date header counts whole seconds: one second of difference is no difference.
    ahead = "ahead of" if skew > timedelta(0) else "behind"
    text = f"this machine's clock is {size.total_seconds():.0f} s {ahead} the registry's"
    action = (
        "set the clock by NTP (`timedatectl set-ntp true`, or your NTP service): TLS, the"
        " directory's expiry and signed receipts depend on it"
    )
    if size > SKEW_PROBLEM:
        return problem(check, text, action)
    if size > SKEW_WARNING:
        return warning(check, text, action)
    return ok(check, f"within {max(size.total_seconds(), 1):.0f} s of the registry's")


# --- 5. partners and the hub ----------------------------------------------------------------

Outcome = Literal["reachable", "pin mismatch", "refused us", "tls failed", "unreachable"]


@dataclass(frozen=True, slots=True)
class Target:
    """A partner or the hub to connect to; no pins: none valid now (not probed)."""

    check: str  # "partner NL", "hub"
    who: str  # "NL (NVWA)", "the hub (Test Hub)"
    endpoint: str
    pins: frozenset[str]
    is_hub: bool = False

    @property
    def host(self) -> str:
        return (urlsplit(self.endpoint).hostname or "").strip("[]")

    @property
    def port(self) -> int:
        return urlsplit(self.endpoint).port or 443


def targets(directory: Directory, own_country: str, now: datetime) -> list[Target]:
    """Every active partner with an endpoint, then the hub if the directory lists one."""
    found = []
    for entry in directory.nppos:
        if entry.country == own_country or entry.status != "active" or entry.endpoint is None:
            continue
        pins = frozenset(p.pin for p in entry.tls_pins if p.valid_at(now))
        found.append(
            Target(f"partner {entry.country}", f"{entry.country} ({entry.name})",
                   entry.endpoint, pins)
        )  # fmt: skip
    if directory.hub is not None:
        hub = directory.hub
        pins = frozenset(p.pin for p in hub.tls_pins if p.valid_at(now))
        found.append(Target("hub", f"the hub ({hub.name})", hub.endpoint, pins, is_hub=True))
    return found


def no_pin(target: Target) -> Finding:
    return problem(
        target.check,
        f"{target.who} has no TLS pin valid now in the directory: it cannot be reached",
        "check this machine's clock; otherwise ask the registry maintainers",
    )


def connection(target: Target, outcome: Outcome, reason: str) -> Finding:
    """How a TLS connection to `target` (pinned to its directory pins) went."""
    who, where = target.who, target.endpoint
    if outcome == "reachable":
        return ok(target.check, f"{where}: TLS with the listed key, our certificate accepted")
    if outcome == "pin mismatch":
        return problem(
            target.check,
            f"{where} answers with a TLS key the directory does not list for {who}: {reason}",
            f"ask the IT team of {who} whether they changed their TLS key (it needs a new"
            " enrolment) or whether something else answers at that address; nothing was sent",
        )
    if outcome == "refused us":
        return problem(
            target.check,
            f"{where}: {who} does not accept this node's certificate ({reason})",
            f"if this node is listed in the directory (see above), the copy of {who} is"
            " older: ask their IT team to check their directory refresh",
        )
    if outcome == "tls failed":
        return problem(
            target.check,
            f"{where}: the TLS handshake failed ({reason})",
            f"ask the IT team of {who} to check their TLS setup; if the reason names a"
            " certificate, their node may not accept ours yet (an older directory)",
        )
    return problem(
        target.check,
        f"{where} unreachable: {reason}",
        f"check this machine's outgoing firewall and DNS for {where}; if they are fine,"
        f" ask the IT team of {who} whether their node is up (deliveries wait in the outbox,"
        " or go through the hub)",
    )


# --- helpers --------------------------------------------------------------------------------


def _spki(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _same_url(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.rstrip("/").lower() == b.rstrip("/").lower()


def _days(delta: timedelta) -> str:
    days = delta.days
    return f"{days} day{'s' if days != 1 else ''}" if days else _hours(delta)


def _hours(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    if hours:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{int(delta.total_seconds() // 60)} minutes"
