"""Endpoint changes: an enrolled NPPO moves its direct endpoint or goes hub-only.

The NPPO asks with `ephyto node change-endpoint` (a request signed by its current
signing key, node.identity.endpoint_change); a maintainer records it with
`ephyto registry set-endpoint REQUEST`, and the next publish lists the new endpoint.
Each change is kept as `endpoints/<CC>-<n>.json`, a maintainer's signed statement
holding the NPPO's request, re-verified whenever it is read, like key rotations.

Shell: files under the registry root. The rules are the pure functions at the bottom.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from node.directory.model import MaintainerSet, Status
from node.errors import EphytoError
from node.identity.endpoint_change import (
    EndpointChange,
    endpoint_change_country,
    verify_endpoint_change,
)
from node.identity.enrolment import EnrolmentRequest, format_time, parse_time
from registry.governance import Signer, sign_statement, verify_statement
from registry.numbered import numbered_files, write_next
from registry.publish import CLOCK_SKEW, MAX_REQUEST_AGE, KeyRotation, RegistryError, nppo_entry

ENDPOINTS_DIR: Final = "endpoints"
STATEMENT_TYPE: Final = "ephyto-registry-endpoint"


@dataclass(frozen=True, slots=True)
class RecordedEndpoint:
    """A recorded endpoint change: the verified request, when recorded and by whom."""

    change: EndpointChange
    recorded: datetime
    maintainer: str


def recorded_changes(
    root: Path,
    maintainers: MaintainerSet,
    enrolled: Mapping[str, tuple[EnrolmentRequest, bytes]],
    signing_keys: Mapping[str, Sequence[bytes]],
) -> dict[str, list[RecordedEndpoint]]:
    """Country -> its endpoint changes, oldest first; RegistryError on a bad file.

    Each statement must be signed by one of `maintainers`; `signing_keys` holds every
    signing key each NPPO has had (a change stays valid after the key that signed it
    retired).
    """
    result: dict[str, list[RecordedEndpoint]] = {}
    files = numbered_files(root / ENDPOINTS_DIR, enrolled, "endpoint changes")
    for country, paths in files.items():
        chain = []
        for path in paths:
            body, key = verify_statement(path.read_bytes(), maintainers, str(path))
            if body.get("type") != STATEMENT_TYPE or body.get("country") != country:
                raise RegistryError(f"{path} is not an endpoint change of {country}")
            try:
                change = verify_endpoint_change(
                    str(body["request"]).encode(), signing_keys.get(country, ())
                )
                recorded = parse_time(str(body["time"]), f"{path}: time")
            except (EphytoError, KeyError) as exc:
                raise RegistryError(f"{path} no longer verifies: {exc}") from None
            chain.append(RecordedEndpoint(change, recorded, key.name))
        result[country] = chain
    return result


def record_change(
    root: Path,
    raw: bytes,
    *,
    now: datetime,
    signer: Signer,
    enrolled: Mapping[str, tuple[EnrolmentRequest, bytes]],
    statuses: Mapping[str, Status],
    rotations: Mapping[str, Sequence[KeyRotation]],
    earlier: Mapping[str, Sequence[RecordedEndpoint]],
) -> tuple[RecordedEndpoint, Path]:
    """Verify `raw` and write its signed statement; RegistryError (nothing written) when it
    is refused. The caller holds the registry lock and writes the audit entry."""
    try:
        country = endpoint_change_country(raw)
    except EphytoError as exc:
        raise RegistryError(f"endpoint change refused: {exc}") from None
    if country not in enrolled:
        raise RegistryError(f"{country} is not an enrolled NPPO: nothing to change")
    if statuses.get(country) == "revoked":
        raise RegistryError(f"{country} is revoked: its endpoint cannot change")
    request = enrolled[country][0]
    chain = earlier.get(country, ())
    try:
        change = verify_endpoint_change(
            raw, signing_keys_valid_at(request, rotations.get(country, ()), now)
        )
    except EphytoError as exc:
        raise RegistryError(f"endpoint change refused: {exc}") from None
    previous = chain[-1].change if chain else None
    check_change(change, request, previous, now)
    recorded = RecordedEndpoint(change, now.replace(microsecond=0), signer.name)
    statement = {
        "type": STATEMENT_TYPE,
        "country": country,
        "request": raw.decode("ascii"),
        "time": format_time(recorded.recorded),
    }
    data = sign_statement(statement, signer)
    path = write_next(root / ENDPOINTS_DIR, country, len(chain) + 1, data, "change")
    return recorded, path


# --- the rules (pure) ----------------------------------------------------------------------


def check_change(
    change: EndpointChange,
    enrolment: EnrolmentRequest,
    previous: EndpointChange | None,
    now: datetime,
) -> None:
    """Refuse (RegistryError) a verified change the registry must not record now."""
    cc = change.country
    if change.created > now + CLOCK_SKEW or now - change.created > MAX_REQUEST_AGE:
        raise RegistryError(
            f"the endpoint change for {cc} was created {format_time(change.created)}: not"
            f" fresh (within {MAX_REQUEST_AGE.days} days): ask the NPPO for a new one"
        )
    # A replayed older request must not move the endpoint back.
    if previous is not None and change.created <= previous.created:
        raise RegistryError(
            f"the endpoint change for {cc} was created {format_time(change.created)}, not"
            f" after the one recorded last ({format_time(previous.created)}): a replay?"
        )
    current = current_endpoint(enrolment, previous)
    if change.endpoint == current:
        shown = "hub only" if current is None else current
        raise RegistryError(f"{cc} is already listed as {shown}: nothing to change")


def current_endpoint(enrolment: EnrolmentRequest, last: EndpointChange | None) -> str | None:
    """The endpoint to publish: the last change's, else the enrolment's (None: hub only)."""
    if last is not None:
        return last.endpoint
    return enrolment.endpoint.url if enrolment.endpoint else None


def signing_keys_valid_at(
    enrolment: EnrolmentRequest, rotations: Sequence[KeyRotation], at: datetime
) -> list[bytes]:
    """The NPPO's signing keys the next directory lists as valid at `at` (both during a
    rotation's overlap)."""
    entry = nppo_entry(enrolment, "active", rotations)
    return [k.public_key for k in entry.keys if k.kind == "signing" and k.valid_at(at)]


def all_signing_keys(enrolment: EnrolmentRequest, rotations: Sequence[KeyRotation]) -> list[bytes]:
    """Every signing key the NPPO has had, to re-verify changes signed before a rotation."""
    return [enrolment.signing_key, *(r.signing_key for r in rotations)]


def describe(change: EndpointChange) -> str:
    """One line for `registry show` and the CLI."""
    where = "hub only" if change.endpoint is None else change.endpoint
    return f"{where} (requested {format_time(change.created)}, key {change.current_key_id})"
