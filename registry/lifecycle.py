"""What happens to enrolled parties: signed statements about them, recorded for the next
publish. Status decisions (status/<CC>.json), key rotations (rotations/<CC>-<n>.json) and
endpoint changes (endpoints/, registry/endpoints.py), each a maintainer's signed record
holding the NPPO's own signed request where there is one; and the hub (hub.json).

One module because these records are checked against each other: a TLS pin names one
party across enrolments, rotations and the hub; a rotation or an endpoint change needs
the status and the keys the earlier records leave.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal, cast

from node.crypto.ids import key_id
from node.directory import MaintainerSet
from node.directory.model import Status
from node.errors import EphytoError
from node.fileio import write_atomic
from node.hub.request import HubRequest, verify_hub_request
from node.identity.enrolment import EnrolmentRequest, format_time, parse_time
from node.identity.rotation import RotationRequest, verify_rotation_request
from registry.endpoints import (
    RecordedEndpoint,
    all_signing_keys,
    current_endpoint,
    record_change,
    recorded_changes,
)
from registry.governance import Signer, check_reason, sha256_hex, sign_statement, verify_statement
from registry.layout import COUNTRY_FILE
from registry.nppos import NppoStore
from registry.numbered import numbered_files, write_next
from registry.publish import (
    CLOCK_SKEW,
    MAX_REQUEST_AGE,
    EnrolmentRefused,
    KeyRotation,
    RegistryError,
    check_hub_admissible,
)

HUB_FILE: Final = "hub.json"
ROTATIONS_DIR: Final = "rotations"
MIN_OVERLAP: Final = timedelta(minutes=1)
MAX_OVERLAP: Final = timedelta(days=90)
Lifecycle = Literal["suspend", "reinstate", "revoke"]
_DONE: Final = {"suspend": "suspended", "reinstate": "reinstated", "revoke": "revoked again"}


@dataclass(frozen=True, slots=True)
class Rotation:
    """A recorded key rotation: the NPPO's verified request, from when its new keys are
    valid, until when its old ones still are, and the maintainer who recorded it."""

    request: RotationRequest
    valid_from: datetime
    old_until: datetime
    maintainer: str


class LifecycleStore(NppoStore):
    """Status decisions, key rotations, endpoint changes and the hub of a registry."""

    def statuses(self) -> dict[str, tuple[Status, str, str, str]]:
        """Country -> (status, reason, time, maintainer name) for every country not active.

        Each record is a maintainer's signed statement, checked on every read.
        """
        folder = self.root / "status"
        result: dict[str, tuple[Status, str, str, str]] = {}
        if not folder.is_dir():
            return result
        maintainers = self.statement_maintainers()  # a retired maintainer's too
        for path in sorted(folder.iterdir()):
            match = COUNTRY_FILE.fullmatch(path.name)
            if match is None:
                continue
            body, key = verify_statement(path.read_bytes(), maintainers, str(path))
            status = body.get("status")
            if (
                body.get("type") != "ephyto-registry-status"
                or body.get("country") != match[1]
                or status not in ("active", "suspended", "revoked")
            ):
                raise RegistryError(f"{path} is not a status decision about {match[1]}")
            if status != "active":
                result[match[1]] = (
                    cast(Status, status),
                    str(body.get("reason")),
                    str(body.get("time")),
                    key.name,
                )
        return result

    def change_status(
        self,
        country: str,
        action: Lifecycle,
        reason: str | None,
        now: datetime,
        actor: str,
        signer: Signer,
    ) -> Status:
        """Suspend, reinstate or revoke an enrolled NPPO (effective at the next publish).

        RegistryError when the country is not enrolled or the change does not apply
        (revocation is final); nothing is written then. Returns the new status.
        """
        text = check_reason(reason) if reason is not None else None
        if action != "reinstate" and text is None:
            raise RegistryError(f"{action} needs --reason")
        with self.locked():
            if country not in self.enrolled():
                where = " (it is queued: approve it first)" if country in self.queued() else ""
                raise RegistryError(f"{country} is not an enrolled NPPO{where}: nothing changed")
            before: Status = self.statuses().get(country, ("active", "", "", ""))[0]
            if before == "revoked":
                raise RegistryError(
                    f"{country} is revoked, and revocation is final: it cannot be {_DONE[action]}"
                )
            after: Status
            if action == "suspend":
                if before == "suspended":
                    raise RegistryError(f"{country} is already suspended: nothing changed")
                after = "suspended"
            elif action == "reinstate":
                if before == "active":
                    raise RegistryError(f"{country} is active: nothing to reinstate")
                after = "active"
            else:
                after = "revoked"
            folder = self.root / "status"
            folder.mkdir(mode=0o755, exist_ok=True)
            statement = {
                "type": "ephyto-registry-status",
                "country": country,
                "status": after,
                "reason": text or "",
                "time": format_time(now),
            }
            write_atomic(folder / f"{country}.json", sign_statement(statement, signer), 0o644)
            self.audit(
                action,
                actor,
                now,
                {"country": country, "from": before, "to": after, "reason": text},
                signer,
            )
        return after

    def rotations(self) -> dict[str, list[Rotation]]:
        """Country -> its recorded key rotations, oldest first, each re-verified on read:
        a maintainer's signed record holding the NPPO's request, which must verify against
        the signing key current before it (the enrolled one, then each rotation's)."""
        if not (self.root / ROTATIONS_DIR).is_dir():
            return {}
        return self._rotations(self.enrolled(), self.statement_maintainers())

    def _rotations(
        self,
        enrolled: Mapping[str, tuple[EnrolmentRequest, bytes]],
        maintainers: MaintainerSet,
    ) -> dict[str, list[Rotation]]:
        # `rotations` with what the caller read already: each read verifies every file.
        # `maintainers`: the statement_maintainers(), a retired maintainer's keys too.
        folder = self.root / ROTATIONS_DIR
        result: dict[str, list[Rotation]] = {}
        for country, paths in numbered_files(folder, enrolled, "rotations").items():
            current = enrolled[country][0].signing_key
            chain: list[Rotation] = []
            for path in paths:
                body, key = verify_statement(path.read_bytes(), maintainers, str(path))
                if body.get("type") != "ephyto-registry-rotation" or body.get("country") != country:
                    raise RegistryError(f"{path} is not a key rotation of {country}")
                try:
                    request = verify_rotation_request(str(body["request"]).encode(), current)
                    valid_from = parse_time(str(body["valid_from"]), f"{path}: valid_from")
                    old_until = parse_time(str(body["old_until"]), f"{path}: old_until")
                except (EphytoError, KeyError) as exc:
                    raise RegistryError(f"{path} no longer verifies: {exc}") from None
                chain.append(Rotation(request, valid_from, old_until, key.name))
                current = request.signing_key
            result[country] = chain
        return result

    def rotate(
        self,
        raw: bytes,
        overlap: timedelta,
        now: datetime,
        actor: str,
        signer: Signer,
    ) -> Rotation:
        """Record an NPPO's key rotation (effective at the next publish): its new keys valid
        from `now`, its current keys until `now + overlap`. RegistryError (nothing written)
        when the request does not verify against the NPPO's current signing key."""
        if not MIN_OVERLAP <= overlap <= MAX_OVERLAP:
            raise RegistryError(
                f"the overlap must be 1 minute to {MAX_OVERLAP.days} days, not {overlap}"
            )
        try:
            country = json.loads(raw)["body"]["country"]
        except (ValueError, UnicodeDecodeError, KeyError, TypeError):
            raise RegistryError("the rotation request is not a rotation request (JSON)") from None
        if not isinstance(country, str) or not COUNTRY_FILE.fullmatch(f"{country}.json"):
            raise RegistryError("the rotation request names no country code")
        now = now.replace(microsecond=0)
        with self.locked():
            enrolled = self.enrolled()
            if country not in enrolled:
                raise RegistryError(f"{country} is not an enrolled NPPO: nothing to rotate")
            if self.statuses().get(country, ("active",))[0] == "revoked":
                raise RegistryError(f"{country} is revoked: its keys cannot be rotated")
            chains = self._rotations(enrolled, self.statement_maintainers())
            chain = chains.get(country, [])
            if chain and now < chain[-1].old_until:
                raise RegistryError(
                    f"the previous rotation of {country} overlaps until"
                    f" {format_time(chain[-1].old_until)}: rotate again after that"
                )
            current = chain[-1].request.signing_key if chain else enrolled[country][0].signing_key
            try:
                request = verify_rotation_request(raw, current)
            except EphytoError as exc:
                raise RegistryError(f"rotation request refused: {exc}") from None
            if request.created > now + CLOCK_SKEW or request.created < now - MAX_REQUEST_AGE:
                raise RegistryError(
                    f"the rotation request was created {format_time(request.created)}:"
                    " not fresh (ask the NPPO for a new one)"
                )
            first = enrolled[country][0]
            used = {first.signing_key, first.encryption_key}
            for earlier in chain:
                used |= {earlier.request.signing_key, earlier.request.encryption_key}
            if request.signing_key in used or request.encryption_key in used:
                raise RegistryError(f"the rotation request reuses a key {country} had before")
            if request.valid_until is not None and request.valid_until <= now + overlap:
                raise RegistryError(
                    f"the new keys are valid until {format_time(request.valid_until)}, not"
                    f" beyond the overlap ({format_time(now + overlap)}): ask the NPPO for a"
                    " request with a longer validity, or choose a shorter overlap"
                )
            if request.tls_pin is not None:
                try:
                    self._check_pin_free(request.tls_pin, enrolled, chains)
                except EnrolmentRefused as exc:
                    raise RegistryError(f"rotation request refused: {exc}") from None
            rotation = Rotation(request, now, now + overlap, signer.name)
            statement = {
                "type": "ephyto-registry-rotation",
                "country": country,
                "request": raw.decode("ascii"),
                "valid_from": format_time(rotation.valid_from),
                "old_until": format_time(rotation.old_until),
            }
            data = sign_statement(statement, signer)
            write_next(self.root / ROTATIONS_DIR, country, len(chain) + 1, data, "rotation")
            self.audit(
                "rotate",
                actor,
                now,
                {
                    "country": country,
                    "old_signing_key_id": key_id(current),
                    "signing_key_id": request.signing_key_id,
                    "encryption_key_id": request.encryption_key_id,
                    "tls_pin": request.tls_pin,
                    "valid_from": format_time(rotation.valid_from),
                    "old_until": format_time(rotation.old_until),
                    "valid_until": None
                    if request.valid_until is None
                    else format_time(request.valid_until),
                    "request_sha256": sha256_hex(raw),
                },
                signer,
            )
        return rotation

    def endpoint_changes(self) -> dict[str, list[RecordedEndpoint]]:
        """Country -> its recorded endpoint changes, oldest first, each re-verified."""
        enrolled, maintainers = self.enrolled(), self.statement_maintainers()
        rotations = key_rotations(self._rotations(enrolled, maintainers))
        return self._endpoint_changes(enrolled, rotations, maintainers)

    def _endpoint_changes(
        self,
        enrolled: Mapping[str, tuple[EnrolmentRequest, bytes]],
        rotations: Mapping[str, Sequence[KeyRotation]],
        maintainers: MaintainerSet,
    ) -> dict[str, list[RecordedEndpoint]]:
        # `endpoint_changes` with what the caller read already (see _rotations).
        keys = {
            cc: all_signing_keys(request, rotations.get(cc, ()))
            for cc, (request, _) in enrolled.items()
        }
        return recorded_changes(self.root, maintainers, enrolled, keys)

    def change_endpoint(
        self, raw: bytes, now: datetime, actor: str, signer: Signer
    ) -> RecordedEndpoint:
        """Record an NPPO's signed endpoint change, effective at the next publish;
        RegistryError (nothing written) when it is refused."""
        with self.locked():
            enrolled, maintainers = self.enrolled(), self.statement_maintainers()
            rotations = key_rotations(self._rotations(enrolled, maintainers))
            earlier = self._endpoint_changes(enrolled, rotations, maintainers)
            recorded, path = record_change(
                self.root,
                raw,
                now=now,
                signer=signer,
                enrolled=enrolled,
                statuses={cc: record[0] for cc, record in self.statuses().items()},
                rotations=rotations,
                earlier=earlier,
            )
            change = recorded.change
            chain = earlier.get(change.country, [])
            self.audit(
                "set-endpoint",
                actor,
                now,
                {
                    "country": change.country,
                    "from": current_endpoint(
                        enrolled[change.country][0], chain[-1].change if chain else None
                    ),
                    "to": change.endpoint,
                    "signed_by_key_id": change.current_key_id,
                    "statement": path.name,
                    "request_sha256": sha256_hex(raw),
                },
                signer,
            )
        return recorded

    def hub(self) -> HubRequest | None:
        """The hub's request as recorded (re-verified), or None; RegistryError when damaged."""
        path = self.root / HUB_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return verify_hub_request(raw)
        except EphytoError as exc:
            raise RegistryError(f"{path} no longer verifies: {exc}") from None

    def set_hub(self, raw: bytes, now: datetime, actor: str) -> HubRequest:
        """Verify a hub request and record it as the hub (replacing any before); InputError.

        The next `publish` lists it. Nothing is written when the request is refused.
        """
        request = verify_hub_request(raw)
        check_hub_admissible(request, self.hub(), self.enrolled(), now)
        write_atomic(self.root / HUB_FILE, raw, 0o644)
        self.audit(
            "set-hub",
            actor,
            now,
            {
                "name": request.name,
                "endpoint": request.endpoint.url,
                "tls_pin": request.tls_pin,
                "valid_until": format_time(request.valid_until),
                "request_sha256": sha256_hex(raw),
            },
        )
        return request

    def _check_pin_free(
        self,
        pin: str,
        enrolled: Mapping[str, tuple[EnrolmentRequest, bytes]],
        chains: Mapping[str, list[Rotation]] | None = None,
    ) -> None:
        """EnrolmentRefused when `pin` is any party's, now or before: a TLS client is
        known by its pin, so one pin must only ever name one party."""
        if chains is None:
            chains = self._rotations(enrolled, self.statement_maintainers())
        used = {request.tls_pin: cc for cc, (request, _) in enrolled.items()}
        for cc, chain in chains.items():
            used |= {r.request.tls_pin: cc for r in chain if r.request.tls_pin is not None}
        hub = self.hub()
        if hub is not None:
            used[hub.tls_pin] = "the hub"
        if (holder := used.get(pin)) is not None:
            raise EnrolmentRefused(f"TLS pin {pin} is already enrolled for {holder}")


def key_rotations(rotations: Mapping[str, list[Rotation]]) -> dict[str, list[KeyRotation]]:
    """Country -> its rotations as the directory lists them (registry.publish)."""
    return {
        cc: [
            KeyRotation(
                r.request.signing_key,
                r.request.encryption_key,
                r.valid_from,
                r.old_until,
                valid_until=r.request.valid_until,
                tls_certificate=r.request.tls_certificate,
            )
            for r in chain
        ]
        for cc, chain in rotations.items()
    }
