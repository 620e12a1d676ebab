"""What the registry admits and publishes: enrolment rules and the next directory version.

Pure: verified requests, the maintainer set, the previous version and `now` in; a
Directory out, or a RegistryError saying what to do; and the check a node applies to the
signed result. Signing and files are the shell's (registry.publication).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization

# What a node of this release speaks: declared on the node side, listed for every NPPO.
from node.certificate.versions import SCHEMA_VERSIONS
from node.crypto.ids import key_id, tls_pin
from node.directory import (
    Directory,
    DirectoryError,
    HubEntry,
    KeyEntry,
    MaintainerSet,
    NppoEntry,
    TlsPin,
    TrustedDirectory,
)
from node.directory.model import Status
from node.errors import EphytoError, InputError
from node.hub.request import HubRequest
from node.identity.enrolment import EnrolmentRequest, format_time

# After TUF's split: the threshold-signed directory lives long, so maintainers sign only
# for changes (or every ~80 days), and the online timestamp (registry/timestamp.py) keeps
# nodes current daily. Per registry: registry/settings.py.
DEFAULT_VALIDITY: Final = timedelta(days=90)
# A registry without a timestamp role has only the directory's own expiry to tell nodes
# they are current: it stays short and the registry re-publishes often.
VALIDITY_WITHOUT_TIMESTAMP: Final = timedelta(days=7)
MAX_VALIDITY: Final = timedelta(days=366)
# A request is made by `ephyto node init` and sent on; one older than this is stale.
MAX_REQUEST_AGE: Final = timedelta(days=30)
# Clocks differ: a request "created" a little in the future is still accepted.
CLOCK_SKEW: Final = timedelta(minutes=5)


class _Enrolled:
    """Stands for "the endpoint the enrolment request gave" (None already means hub only)."""


_ENROLLED_ENDPOINT: Final = _Enrolled()


class RegistryError(EphytoError):
    """Base of the registry's refusals; the message says what was wrong and what to do."""


class EnrolmentRefused(RegistryError, InputError):
    """A verified request the registry will not admit (duplicate, stale, conflicting)."""


def check_admissible(
    request: EnrolmentRequest,
    raw: bytes,
    enrolled: Mapping[str, tuple[EnrolmentRequest, bytes]],
    now: datetime,
    *,
    check_age: bool = True,
) -> None:
    """Refuse (EnrolmentRefused) a verified `request` the registry must not enrol now.

    `enrolled` maps each enrolled country to its request and the exact bytes received.
    An enrolled country changes through its own signed requests (key rotation, endpoint
    change; registry.lifecycle, registry.endpoints), never through a second enrolment:
    refused here, never silently applied. `check_age=False`
    when admitting a request queued earlier (its age was checked when it was queued).
    """
    cc = request.country
    if cc in enrolled:
        if enrolled[cc][1] == raw:
            raise EnrolmentRefused(
                f"{cc} is already enrolled with this very request: nothing to do"
            )
        raise EnrolmentRefused(
            f"{cc} is already enrolled with other keys or details: nothing was changed. An"
            " enrolled NPPO changes keys with `ephyto node rotate-keys` (then `registry"
            " rotate`) and its endpoint with `ephyto node change-endpoint` (then `registry"
            " set-endpoint`)"
        )
    if check_age and request.created > now + CLOCK_SKEW:
        raise EnrolmentRefused(
            f"the request for {cc} was created at {format_time(request.created)}, in the"
            " future: check the clocks of the node and the registry"
        )
    if check_age and now - request.created > MAX_REQUEST_AGE:
        raise EnrolmentRefused(
            f"the request for {cc} was created at {format_time(request.created)}, more than"
            f" {MAX_REQUEST_AGE.days} days ago: ask the NPPO for a fresh request"
        )
    if request.valid_until <= now:
        raise EnrolmentRefused(
            f"the keys of {cc} expired at {format_time(request.valid_until)}: ask for new keys"
        )
    for other, (existing, _) in enrolled.items():
        # One pin names one NPPO (a TLS client is known by its pin), and one key one owner.
        if existing.tls_pin == request.tls_pin:
            raise EnrolmentRefused(f"TLS pin {request.tls_pin} is already enrolled for {other}")
        shared = {existing.signing_key_id, existing.encryption_key_id} & {
            request.signing_key_id,
            request.encryption_key_id,
        }
        if shared:
            raise EnrolmentRefused(f"key {min(shared)} is already enrolled for {other}")


def check_hub_admissible(
    request: HubRequest,
    current: HubRequest | None,
    enrolled: Mapping[str, tuple[EnrolmentRequest, bytes]],
    now: datetime,
) -> None:
    """Refuse (EnrolmentRefused) a verified hub request the registry must not record now.

    Replacing the hub (a new certificate, a move) is allowed: there is one hub entry and
    the maintainer who records it decides; the audit log keeps every change.
    """
    if current is not None and current.body == request.body:
        raise EnrolmentRefused("the hub is already recorded with this very request: nothing to do")
    if request.created > now + CLOCK_SKEW:
        raise EnrolmentRefused(
            f"the hub request was created at {format_time(request.created)}, in the future:"
            " check the clocks of the hub and the registry"
        )
    if now - request.created > MAX_REQUEST_AGE:
        raise EnrolmentRefused(
            f"the hub request was created at {format_time(request.created)}, more than"
            f" {MAX_REQUEST_AGE.days} days ago: ask the hub operator for a fresh one"
        )
    if request.valid_until <= now:
        raise EnrolmentRefused(
            f"the hub's certificate expired at {format_time(request.valid_until)}"
        )
    for country, (existing, _) in enrolled.items():
        # A TLS client is known by its pin: the hub's must never name an NPPO.
        if existing.tls_pin == request.tls_pin:
            raise EnrolmentRefused(f"TLS pin {request.tls_pin} is already enrolled for {country}")


def next_directory(
    requests: Iterable[EnrolmentRequest],
    maintainers: MaintainerSet,
    previous: Directory | None,
    now: datetime,
    *,
    code_lists: Mapping[str, str],
    validity: timedelta = DEFAULT_VALIDITY,
    hub: HubEntry | None = None,
    statuses: Mapping[str, Status] | None = None,
    rotations: Mapping[str, Sequence[KeyRotation]] | None = None,
    endpoints: Mapping[str, str | None] | None = None,
    timestamp_keys: MaintainerSet | None = None,
) -> Directory:
    """The directory version after `previous`: issued `now`, expiring `now + validity`.

    Raises RegistryError for a validity out of range. The result is checked again by
    `sign_directory`, which refuses (MalformedDirectory) anything a node would refuse.
    `statuses` gives the status of a suspended or revoked country (default: active).
    `endpoints` gives the endpoint of a country that changed it since enrolment (None:
    hub only). `timestamp_keys`: the online keys that sign timestamp.json (None: no
    timestamp role, as a registry made before timestamps).
    """
    if not timedelta(minutes=1) <= validity <= MAX_VALIDITY:
        raise RegistryError(
            f"a directory must be valid for 1 minute to {MAX_VALIDITY.days} days, not {validity}"
        )
    issued = now.replace(microsecond=0)  # the wire form counts whole seconds
    version = 1 if previous is None else previous.version + 1
    if previous is not None and issued < previous.issued:
        raise RegistryError(
            f"the clock reads {format_time(issued)}, before version {previous.version} was"
            f" issued ({format_time(previous.issued)}): check the clock"
        )
    return Directory(
        version=version,
        issued=issued,
        expires=issued + validity,
        maintainers=maintainers,
        nppos=tuple(
            sorted(
                (
                    nppo_entry(
                        r,
                        (statuses or {}).get(r.country, "active"),
                        (rotations or {}).get(r.country, ()),
                        (endpoints or {}).get(r.country, _ENROLLED_ENDPOINT),
                    )
                    for r in requests
                ),
                key=lambda n: n.country,
            )
        ),
        hub=hub,
        code_lists=tuple(sorted(code_lists.items())),
        timestamp_keys=timestamp_keys,
    )


def require_node_acceptance(
    data: bytes, current: MaintainerSet, current_bytes: bytes | None, now: datetime
) -> Directory:
    """`data` checked as a node trusting the registry's newest version would check it."""
    trusted = trusted_directory(current, current_bytes)
    try:
        return trusted.update(data, now)
    except DirectoryError as exc:
        raise RegistryError(f"a node would refuse this directory: {exc}") from None


def trusted_directory(current: MaintainerSet, current_bytes: bytes | None) -> TrustedDirectory:
    """A node's view seeded with the registry's newest version (`current_bytes`, None before
    the first) or only its anchor `current`; RegistryError when that version is damaged."""
    try:
        return TrustedDirectory(current, current_bytes)
    except DirectoryError as exc:
        raise RegistryError(f"the newest published version is damaged: {exc}") from None


@dataclass(frozen=True, slots=True)
class KeyRotation:
    """A recorded key rotation: new keys valid from `valid_from`, the keys before them
    until `old_until` (the overlap in which both verify)."""

    signing_key: bytes
    encryption_key: bytes
    valid_from: datetime
    old_until: datetime
    # A rotation of version 2 renews the window and the TLS key; None: version 1, the
    # window ends where the one before it did, and the TLS key stays.
    valid_until: datetime | None = None
    tls_certificate: x509.Certificate | None = None


def nppo_entry(
    request: EnrolmentRequest,
    status: Status = "active",
    rotations: Sequence[KeyRotation] = (),
    endpoint: str | _Enrolled | None = _ENROLLED_ENDPOINT,
) -> NppoEntry:
    """The directory entry of an enrolled NPPO: `status`, its keys for their window.

    Each rotation (oldest first) caps the keys before it at its `old_until` and adds its
    new keys from its `valid_from` to its `valid_until` (a version 1 rotation: to the end
    of the window before it); one that rotates the TLS key does the same with the pins.
    `endpoint` replaces the enrolment's (None: hub only); by default the enrolment's stands.
    """
    window_end = request.valid_until
    window = (request.valid_from, window_end)
    keys = [
        KeyEntry("signing", request.signing_key, request.signing_key_id, *window),
        KeyEntry("encryption", request.encryption_key, request.encryption_key_id, *window),
    ]
    # Listed even without an endpoint: the hub knows its TLS clients by this pin.
    pins = [TlsPin(request.tls_pin, *window, certificate=_pem(request.tls_certificate))]
    for rotation in rotations:
        keys[-2:] = [_capped(k, rotation.old_until) for k in keys[-2:]]
        window_end = rotation.valid_until or window_end
        new_window = (rotation.valid_from, window_end)
        keys.append(
            KeyEntry("signing", rotation.signing_key, key_id(rotation.signing_key), *new_window)
        )
        keys.append(
            KeyEntry(
                "encryption", rotation.encryption_key, key_id(rotation.encryption_key), *new_window
            )
        )
        if rotation.tls_certificate is not None:
            pins[-1] = _capped(pins[-1], rotation.old_until)
            certificate = rotation.tls_certificate
            pins.append(TlsPin(tls_pin(certificate), *new_window, _pem(certificate)))
    return NppoEntry(
        country=request.country,
        name=request.name,
        status=status,
        endpoint=(request.endpoint.url if request.endpoint else None)
        if isinstance(endpoint, _Enrolled)
        else endpoint,
        keys=tuple(keys),
        tls_pins=tuple(pins),
        schema_versions=SCHEMA_VERSIONS,
    )


_Windowed = TypeVar("_Windowed", KeyEntry, TlsPin)


def _capped(entry: _Windowed, until: datetime) -> _Windowed:
    return replace(entry, valid_until=min(entry.valid_until, until))


def parse_duration(text: str) -> timedelta:
    """`7d`, `36h`, `90m` or `600s` as a timedelta; RegistryError otherwise."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise RegistryError(f"{text!r} is not a duration such as 7d, 36h, 90m or 600s")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


_DURATION: Final = re.compile(r"([0-9]{1,6})([dhms])")
_UNITS: Final = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)
