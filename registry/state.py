"""The registry's state on disk (the shell): maintainers, enrolled NPPOs, published versions.

Layout of a registry directory (docs/maintainers.md):

    maintainers/maintainers.json  the maintainer set: threshold and public keys (the trust
                                  anchor node operators configure; Part C `maintainers`)
    maintainers/<keyid>.key       a maintainer's Ed25519 private key, PKCS#8 PEM, 0600
    nppos/<CC>.json               each enrolled NPPO's request, the exact bytes received
    queue/<CC>.json               a request awaiting approvals: when, by whom, its exact text
    approvals/<sha256>/<keyid>.json  a maintainer's signed approval of the request with
                                  that SHA-256 (one file per maintainer: one counts once)
    rejected/<CC>-<sha>.json      a rejected queue entry, kept for the record
    status/<CC>.json              a maintainer's signed decision: suspended or revoked
                                  (absent: active), replaced atomically
    rotations/<CC>-<n>.json       a maintainer's signed record of an NPPO's key rotation
                                  n = 1, 2, ...: the request, valid_from, old_until
    published/<version>.json      every signed directory version, never changed or removed
    current.json                  a copy of the newest published version (replaced atomically)
    timestamp/<keyid>.key, timestamp.json  the online timestamp key(s) and the newest signed
                                  timestamp naming current.json (registry/timestamp.py)
    audit.log                     append-only JSON lines: time, action, actor, details,
                                  hash-chained (prev) and signed by the maintainer's key

Files are written once (O_EXCL) except current.json, hub.json, status/ and the queue
(an entry leaves it when approved or rejected), so two maintainers racing to enrol
one country or to publish one version cannot both succeed. Everything is recomputed from
the files (requests re-verified on each read), so a hand-edited file is caught, not trusted.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto.canonical import canonical_bytes
from node.crypto.ids import key_id
from node.directory import (
    Directory,
    DirectoryError,
    HubEntry,
    MaintainerKey,
    MaintainerSet,
    TlsPin,
    sign_directory,
    verify_signatures,
)
from node.directory.model import Status
from node.directory.signing import parse_signed
from node.errors import EphytoError
from node.fileio import exclusive_lock, write_atomic, write_exclusive
from node.hub.request import HubRequest, verify_hub_request
from node.identity.enrolment import EnrolmentRequest, format_time, parse_time, verify_request
from node.identity.keys import load_signing_key, private_key_pem
from node.identity.rotation import RotationRequest, verify_rotation_request
from registry.codelists import directory_members, write_published
from registry.endpoints import (
    RecordedEndpoint,
    all_signing_keys,
    current_endpoint,
    record_change,
    recorded_changes,
)
from registry.governance import (
    ChainReport,
    Signer,
    audit_line,
    check_reason,
    sign_statement,
    verify_chain,
    verify_statement,
)
from registry.maintainer_set import (
    describe_change,
    every_key,
    held_keys,
    json_file,
    read_pending,
    read_set,
    retire,
    retired_sets,
    write_pending,
)
from registry.numbered import numbered_files, write_next
from registry.proposal import require_node_acceptance
from registry.publish import (
    CLOCK_SKEW,
    DEFAULT_VALIDITY,
    MAX_REQUEST_AGE,
    EnrolmentRefused,
    KeyRotation,
    RegistryError,
    check_admissible,
    check_hub_admissible,
    next_directory,
)
from registry.schemas import schemas as schema_versions
from registry.timestamp import create_key as create_timestamp_key
from registry.timestamp import resign as resign_timestamp
from registry.timestamp import timestamp_keys

MAINTAINERS_FILE: Final = "maintainers.json"
AUDIT_FILE: Final = "audit.log"
CURRENT_FILE: Final = "current.json"
HUB_FILE: Final = "hub.json"
_VERSION_FILE = re.compile(r"([1-9][0-9]{0,18})\.json")
_COUNTRY_FILE = re.compile(r"([A-Z]{2})\.json")
ROTATIONS_DIR: Final = "rotations"
MIN_OVERLAP: Final = timedelta(minutes=1)
MAX_OVERLAP: Final = timedelta(days=90)
_KEYID_FILE = re.compile(r"([0-9a-f]{32})\.json")
LOCK_FILE: Final = ".lock"
Lifecycle = Literal["suspend", "reinstate", "revoke"]
_DONE: Final = {"suspend": "suspended", "reinstate": "reinstated", "revoke": "revoked again"}


class NotARegistryError(RegistryError):
    """The directory holds no registry: run `ephyto registry init` first."""


class RegistryExistsError(RegistryError):
    """`init` on a directory that already holds a registry: it is never overwritten."""


class RegistryState:
    """One registry directory; every method reads the files afresh."""

    def __init__(self, root: Path) -> None:
        """Open the registry at `root`; NotARegistryError when it was never initialised."""
        self.root = root
        if not (root / "maintainers" / MAINTAINERS_FILE).is_file():
            raise NotARegistryError(
                f"{root} holds no registry (no maintainers/{MAINTAINERS_FILE}):"
                " run `ephyto registry init` or pass --dir"
            )

    @classmethod
    def init(
        cls,
        root: Path,
        *,
        maintainer: str | Sequence[str],
        threshold: int,
        now: datetime,
        actor: str,
    ) -> RegistryState:
        """Create a registry with a new key per maintainer; RegistryExistsError, RegistryError.

        `threshold` of the maintainers must approve an enrolment and sign a directory.
        """
        names = [maintainer] if isinstance(maintainer, str) else list(maintainer)
        if len(set(names)) != len(names):
            raise RegistryError("each --maintainer needs a name of its own")
        if not 1 <= threshold <= len(names):
            raise RegistryError(
                f"threshold {threshold} needs 1 to {len(names)} (the number of --maintainer"
                " names, each of which gets a key)"
            )
        keys = [Ed25519PrivateKey.generate() for _ in names]
        publics = [key.public_key().public_bytes_raw() for key in keys]
        anchor = MaintainerSet(
            threshold,
            tuple(MaintainerKey(n, key_id(p), p) for n, p in zip(names, publics, strict=True)),
        )
        # Round-trip through the strict parser, so init never writes what nodes refuse.
        try:
            MaintainerSet.from_plain(anchor.to_plain())
        except DirectoryError as exc:
            raise RegistryError(f"maintainer names {names}: {exc}") from None
        maintainers = root / "maintainers"
        if maintainers.exists():
            raise RegistryExistsError(f"{maintainers} already exists: choose another --dir")
        for sub, mode in (("", 0o755), ("maintainers", 0o700), ("nppos", 0o755)):
            (root / sub).mkdir(mode=mode, parents=True, exist_ok=sub != "maintainers")
        (root / "published").mkdir(mode=0o755, exist_ok=True)
        for key, public in zip(keys, publics, strict=True):
            write_exclusive(maintainers / f"{key_id(public)}.key", private_key_pem(key), 0o600)
        # The anchor goes last: its presence marks a complete registry.
        write_exclusive(maintainers / MAINTAINERS_FILE, json_file(anchor.to_plain()), 0o644)
        state = cls(root)
        # The online key that re-signs timestamp.json (registry/timestamp.py); after the
        # anchor, so a crash before it leaves a registry that publishes without one.
        timestamp_key = create_timestamp_key(root)
        state.audit(
            "init",
            actor,
            now,
            {
                "threshold": threshold,
                "maintainers": [key_id(p) for p in publics],
                "timestamp_key": timestamp_key,
            },
        )
        return state

    @property
    def maintainers(self) -> MaintainerSet:
        """The maintainer set from maintainers.json; RegistryError when it is damaged."""
        path = self.root / "maintainers" / MAINTAINERS_FILE
        return read_set(path, path.read_bytes())

    def private_keys(self) -> list[Ed25519PrivateKey]:
        """The maintainer private keys present here (of keys in the set); RegistryError."""
        keys = []
        for entry in self.maintainers.keys:
            path = self.root / "maintainers" / f"{entry.key_id}.key"
            if not path.exists():
                continue  # another maintainer's key, held on their own machine
            key = load_signing_key(path.read_bytes(), str(path))
            if key.public_key().public_bytes_raw() != entry.public_key:
                raise RegistryError(f"{path} is not the key {entry.key_id} of {entry.name}")
            keys.append(key)
        return keys

    def signer(self, name: str, key_path: Path | None = None) -> Signer:
        """Maintainer `name` with their private key (default maintainers/<key id>.key).

        RegistryError when `name` is no maintainer of this registry or the key is not
        theirs; nothing is signed for a name that is not in the maintainer set.
        """
        maintainers = self.maintainers
        entry = next((k for k in maintainers.keys if k.name == name), None)
        if entry is None:
            known = ", ".join(k.name for k in maintainers.keys)
            raise RegistryError(f"{name!r} is not a maintainer of this registry ({known})")
        path = key_path or self.root / "maintainers" / f"{entry.key_id}.key"
        if not path.is_file():
            raise RegistryError(
                f"the key of maintainer {name} ({entry.key_id}) is not at {path}: pass --key"
            )
        key = load_signing_key(path.read_bytes(), str(path))
        if key.public_key().public_bytes_raw() != entry.public_key:
            raise RegistryError(f"{path} is not the key {entry.key_id} of {name}")
        return Signer(entry, key)

    def local_signers(self) -> list[Signer]:
        """The maintainers whose private key is held in maintainers/, in the set's order."""
        held = {key.public_key().public_bytes_raw(): key for key in self.private_keys()}
        return [
            Signer(entry, held[entry.public_key])
            for entry in self.maintainers.keys
            if entry.public_key in held
        ]

    def default_signer(self) -> Signer | None:
        """Who signs an audit entry no maintainer was named for: the first key held here."""
        signers = self.local_signers()
        return signers[0] if signers else None

    def enrolled(self) -> dict[str, tuple[EnrolmentRequest, bytes]]:
        """Country -> (verified request, bytes as received); RegistryError on a bad file."""
        result = {}
        for path in sorted((self.root / "nppos").iterdir()):
            match = _COUNTRY_FILE.fullmatch(path.name)
            if match is None:
                continue
            raw = path.read_bytes()
            try:
                request = verify_request(raw)
            except EphytoError as exc:
                raise RegistryError(f"{path} no longer verifies: {exc}") from None
            if request.country != match[1]:
                raise RegistryError(f"{path} holds the request of {request.country}")
            result[request.country] = (request, raw)
        return result

    def enrol(self, raw: bytes, now: datetime, actor: str) -> EnrolmentRequest:
        """`registry add`: verify a request and enrol it at once, approved by every maintainer
        whose key is held here; InputError (bad request, refused), nothing written.

        The single-maintainer shortcut of `queue` + `approve`: refused (RegistryError) when
        the keys held here are fewer than the threshold.
        """
        request = verify_request(raw)
        with self._locked():
            signers = self.local_signers()
            threshold = self.maintainers.threshold
            if len(signers) < threshold:
                raise RegistryError(
                    f"`add` needs the keys of {threshold} maintainers here, {len(signers)} held:"
                    " use `ephyto registry enrol` and have the maintainers `approve`"
                )
            self._check_queueable(request, raw, now)
            for signer in signers:
                self._write_approval(request, raw, now, signer)
            self._admit(request, raw)
            details = _request_details(request, raw)
            details["approved_by"] = [s.name for s in signers]
            self.audit("enrol", actor, now, details, signers[0] if signers else None)
        return request

    def queue(
        self, raw: bytes, now: datetime, actor: str, signer: Signer | None = None
    ) -> EnrolmentRequest:
        """`registry enrol`: verify a request and queue it for the maintainers' approvals.

        InputError (malformed, tampered, refused): nothing is written.
        """
        request = verify_request(raw)
        with self._locked():
            self._check_queueable(request, raw, now)
            queue = self.root / "queue"
            queue.mkdir(mode=0o755, exist_ok=True)
            entry = {
                "queued": format_time(now),
                "actor": actor,
                "request": raw.decode("utf-8"),
            }
            path = queue / f"{request.country}.json"
            try:
                write_exclusive(path, canonical_bytes(entry), 0o644)
            except FileExistsError:
                raise RegistryError(f"{path} appeared meanwhile: another enrolment ran") from None
            # Queueing decides nothing: signed only when a maintainer is named.
            self.audit(
                "queue", actor, now, _request_details(request, raw), signer, sign=signer is not None
            )
        return request

    def _check_queueable(self, request: EnrolmentRequest, raw: bytes, now: datetime) -> None:
        cc = request.country
        if self.statuses().get(cc, ("active",))[0] == "revoked":
            raise EnrolmentRefused(f"{cc} was revoked, and revocation is final: nothing changed")
        queued = self.queued()
        if cc in queued:
            if queued[cc].raw == raw:
                raise EnrolmentRefused(f"{cc} is already queued with this very request")
            raise EnrolmentRefused(
                f"a request for {cc} is already queued: approve or reject it first"
            )
        enrolled = self.enrolled()
        check_admissible(request, raw, enrolled, now)
        self._check_pin_free(request.tls_pin, enrolled)

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

    def queued(self) -> dict[str, QueuedRequest]:
        """Country -> the queued request (re-verified); RegistryError on a damaged file."""
        result: dict[str, QueuedRequest] = {}
        queue = self.root / "queue"
        if not queue.is_dir():
            return result
        for path in sorted(queue.iterdir()):
            match = _COUNTRY_FILE.fullmatch(path.name)
            if match is None:
                continue
            try:
                entry = json.loads(path.read_bytes())
                raw = entry["request"].encode("utf-8")
                queued_at, by = str(entry["queued"]), str(entry["actor"])
                request = verify_request(raw)
            except (ValueError, KeyError, TypeError, AttributeError, EphytoError) as exc:
                raise RegistryError(f"{path} no longer verifies: {exc}") from None
            if request.country != match[1]:
                raise RegistryError(f"{path} holds the request of {request.country}")
            result[request.country] = QueuedRequest(request, raw, queued_at, by)
        return result

    def approvals(self, raw: bytes) -> dict[str, Approval]:
        """Key id -> the maintainers' verified approvals of the request `raw`."""
        folder = self.root / "approvals" / _sha256(raw)
        result: dict[str, Approval] = {}
        if not folder.is_dir():
            return result
        maintainers = self.statement_maintainers()  # a retired maintainer's too
        for path in sorted(folder.iterdir()):
            match = _KEYID_FILE.fullmatch(path.name)
            if match is None:
                continue
            body, key = verify_statement(path.read_bytes(), maintainers, str(path))
            if (
                body.get("type") != "ephyto-registry-approval"
                or body.get("request_sha256") != _sha256(raw)
                or key.key_id != match[1]
            ):
                raise RegistryError(f"{path} is not an approval of this request by {match[1]}")
            result[key.key_id] = Approval(key.name, key.key_id, str(body.get("time")))
        return result

    def approve(self, country: str, now: datetime, actor: str, signer: Signer) -> Approved:
        """Record `signer`'s signed approval of the request queued for `country`; when the
        approvals reach the threshold, enrol it (the next publish lists it).

        RegistryError (not queued, approved twice by one maintainer, refused): nothing written.
        """
        with self._locked():
            queued = self._queued_entry(country)
            request, raw = queued.request, queued.raw
            # Only the current maintainers' approvals count toward the current threshold.
            current = self.maintainers
            existing = {k: a for k, a in self.approvals(raw).items() if current.key(k) is not None}
            if signer.key_id in existing:
                raise RegistryError(
                    f"{signer.name} has already approved {country} (an approval counts once):"
                    " nothing changed"
                )
            threshold = self.maintainers.threshold
            count = len(existing) + 1
            admitted = count >= threshold
            if admitted:
                enrolled = self.enrolled()
                check_admissible(request, raw, enrolled, now, check_age=False)
                self._check_pin_free(request.tls_pin, enrolled)
            self._write_approval(request, raw, now, signer)
            if admitted:
                self._admit(request, raw)
                (self.root / "queue" / f"{country}.json").unlink()
            names = sorted([a.name for a in existing.values()] + [signer.name])
            self.audit(
                "approve",
                actor,
                now,
                {
                    "country": country,
                    "request_sha256": _sha256(raw),
                    "approvals": count,
                    "threshold": threshold,
                    "approved_by": names,
                    "enrolled": admitted,
                },
                signer,
            )
        return Approved(request, tuple(names), threshold, admitted)

    def reject(
        self, country: str, reason: str, now: datetime, actor: str, signer: Signer
    ) -> EnrolmentRequest:
        """Take `country`'s request off the queue (kept in rejected/), the reason logged."""
        reason = check_reason(reason)
        with self._locked():
            queued = self._queued_entry(country)
            rejected = self.root / "rejected"
            rejected.mkdir(mode=0o755, exist_ok=True)
            sha = _sha256(queued.raw)
            os.replace(
                self.root / "queue" / f"{country}.json", rejected / f"{country}-{sha[:16]}.json"
            )
            # The approvals go with it (the audit log keeps them): if the same request is
            # queued again, the maintainers approve it afresh.
            shutil.rmtree(self.root / "approvals" / sha, ignore_errors=True)
            self.audit(
                "reject",
                actor,
                now,
                {
                    "country": country,
                    "name": queued.request.name,
                    "request_sha256": sha,
                    "reason": reason,
                },
                signer,
            )
        return queued.request

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
            match = _COUNTRY_FILE.fullmatch(path.name)
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
        with self._locked():
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
        if not isinstance(country, str) or not _COUNTRY_FILE.fullmatch(f"{country}.json"):
            raise RegistryError("the rotation request names no country code")
        now = now.replace(microsecond=0)
        with self._locked():
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
                    "request_sha256": _sha256(raw),
                },
                signer,
            )
        return rotation

    def endpoint_changes(self) -> dict[str, list[RecordedEndpoint]]:
        """Country -> its recorded endpoint changes, oldest first, each re-verified."""
        enrolled, maintainers = self.enrolled(), self.statement_maintainers()
        rotations = _key_rotations(self._rotations(enrolled, maintainers))
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
        with self._locked():
            enrolled, maintainers = self.enrolled(), self.statement_maintainers()
            rotations = _key_rotations(self._rotations(enrolled, maintainers))
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
                    "request_sha256": _sha256(raw),
                },
                signer,
            )
        return recorded

    def _queued_entry(self, country: str) -> QueuedRequest:
        queued = self.queued()
        if country in queued:
            return queued[country]
        if country in self.enrolled():
            raise RegistryError(f"{country} is already enrolled: no request of it is queued")
        raise RegistryError(f"no request for {country!r} is queued (see `ephyto registry pending`)")

    def _write_approval(
        self, request: EnrolmentRequest, raw: bytes, now: datetime, signer: Signer
    ) -> None:
        folder = self.root / "approvals" / _sha256(raw)
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        statement = {
            "type": "ephyto-registry-approval",
            "country": request.country,
            "request_sha256": _sha256(raw),
            "signing_key_id": request.signing_key_id,
            "tls_pin": request.tls_pin,
            "time": format_time(now),
        }
        path = folder / f"{signer.key_id}.json"
        try:
            write_exclusive(path, sign_statement(statement, signer), 0o644)
        except FileExistsError:
            raise RegistryError(
                f"{signer.name} has already approved {request.country}: nothing changed"
            ) from None

    def _admit(self, request: EnrolmentRequest, raw: bytes) -> None:
        path = self.root / "nppos" / f"{request.country}.json"
        try:
            write_exclusive(path, raw, 0o644)
        except FileExistsError:
            raise RegistryError(f"{path} appeared meanwhile: another enrolment of it ran") from None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # One change at a time: two maintainers approving at once cannot both enrol.
        with exclusive_lock(self.root / LOCK_FILE, 0o644):
            yield

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
                "request_sha256": _sha256(raw),
            },
        )
        return request

    def versions(self) -> list[int]:
        """The published versions, ascending."""
        found = (_VERSION_FILE.fullmatch(p.name) for p in (self.root / "published").iterdir())
        return sorted(int(m[1]) for m in found if m is not None)

    def version_bytes(self, version: int) -> bytes | None:
        """The exact signed bytes of `version`, or None when it was never published."""
        try:
            return (self.root / "published" / f"{version}.json").read_bytes()
        except FileNotFoundError:
            return None

    def current_bytes(self) -> bytes | None:
        """The newest published version's bytes, or None before the first publish."""
        try:
            return (self.root / CURRENT_FILE).read_bytes()
        except FileNotFoundError:
            return None

    def current(self) -> Directory | None:
        """The newest published directory, checked against the maintainers; RegistryError."""
        data = self.current_bytes()
        if data is None:
            return None
        try:
            return verify_signatures(data, self.maintainers)
        except DirectoryError as exc:
            raise RegistryError(f"{self.root / CURRENT_FILE}: {exc}") from None

    def publish(
        self,
        now: datetime,
        actor: str,
        *,
        code_lists: Mapping[str, str] | None = None,
        validity: timedelta = DEFAULT_VALIDITY,
    ) -> tuple[Directory, bytes]:
        """Sign and publish the next version; RegistryError when it cannot (nothing written).

        With a pending maintainer-set change the keys held here must meet the threshold
        of the current set and of the new one (or use propose, sign, publish --signed).
        """
        keys = self._publish_keys()
        directory = self.build_next(now, code_lists=code_lists, validity=validity)
        try:
            data = sign_directory(directory, keys)
        except DirectoryError as exc:
            raise RegistryError(f"the directory would not be valid: {exc}") from None
        # Checked as a node will check it, by the same code: the rotation rule included.
        require_node_acceptance(data, self.maintainers, self.current_bytes(), now)
        self.record_published(directory, data, now, actor)
        return directory, data

    def next_maintainers(self) -> MaintainerSet:
        """The set the next directory carries: the pending change, else the current set."""
        return read_pending(self.root / "maintainers") or self.maintainers

    def statement_maintainers(self) -> MaintainerSet:
        """Every key of the current and retired sets, for checking statements and audit
        lines: what a maintainer signed before a rotation retired them stays valid."""
        folder = self.root / "maintainers"
        return every_key([self.maintainers, *reversed(retired_sets(folder))])

    def _publish_keys(self) -> list[Ed25519PrivateKey]:
        current, new = self.maintainers, self.next_maintainers()
        keys = held_keys(self.root / "maintainers", [current, new])
        held = {key_id(k.public_key().public_bytes_raw()) for k in keys}
        for label, maintainers in (("", current), (" of the new maintainer set", new)):
            count = len(held & {k.key_id for k in maintainers.keys})
            if count < maintainers.threshold:
                raise RegistryError(
                    f"{count} maintainer keys{label} here, {maintainers.threshold} needed to"
                    " sign: run `ephyto registry propose` and have the maintainers sign it"
                    " with `ephyto registry sign` on their own machines"
                )
        return keys

    def build_next(
        self,
        now: datetime,
        *,
        code_lists: Mapping[str, str] | None = None,
        validity: timedelta = DEFAULT_VALIDITY,
    ) -> Directory:
        """The next version as `publish` builds it from the files, unsigned; RegistryError.

        Deterministic for a given `now` and `validity`: `publish --signed` rebuilds a
        proposal this way to prove the registry has not changed since it was proposed.
        """
        maintainers = self.next_maintainers()
        previous = self.current()
        if previous is not None and self.versions()[-1:] != [previous.version]:
            raise RegistryError(f"{self.root / CURRENT_FILE} is not the newest published version")
        # Read and verified once here: rotations and endpoint changes are checked against
        # the enrolments and the maintainers' keys.
        enrolled, signers = self.enrolled(), self.statement_maintainers()
        requests = [request for request, _ in enrolled.values()]
        statuses = {cc: record[0] for cc, record in self.statuses().items()}
        rotations = _key_rotations(self._rotations(enrolled, signers))
        endpoints = {
            cc: chain[-1].change.endpoint
            for cc, chain in self._endpoint_changes(enrolled, rotations, signers).items()
        }
        kept, files = directory_members(self.root)
        directory = next_directory(
            requests,
            maintainers,
            previous,
            now,
            code_lists=kept if code_lists is None else code_lists,
            validity=validity,
            hub=_hub_entry(self.hub()),
            statuses=statuses,
            rotations=rotations,
            endpoints=endpoints,
            timestamp_keys=timestamp_keys(self.root),
        )
        # The registry's own code lists (registry/codelists.py) unless the caller names
        # versions (then no files: nodes have nothing to fetch); the schema versions always.
        if code_lists is not None:
            files = ()
        return replace(directory, code_list_files=files, schemas=schema_versions(self))

    def record_published(
        self,
        directory: Directory,
        data: bytes,
        now: datetime,
        actor: str,
        *,
        via: str | None = None,
    ) -> None:
        """Write `data` (checked by the caller) as the next version; a maintainer-set
        change it carries becomes effective (the old set kept as maintainers.<n>.json)."""
        write_published(self.root, directory.code_list_files)  # before a node can see them
        path = self.root / "published" / f"{directory.version}.json"
        try:
            write_exclusive(path, data, 0o644)
        except FileExistsError:
            raise RegistryError(f"{path} appeared meanwhile: another publish ran") from None
        write_atomic(self.root / CURRENT_FILE, data, 0o644)
        # After current.json: it verifies against the old set and the new one alike, so a
        # crash between the two files leaves a registry that still opens.
        old = self.maintainers
        if directory.maintainers != old:
            folder = self.root / "maintainers"
            kept = retire(folder, old)
            write_atomic(
                folder / MAINTAINERS_FILE, json_file(directory.maintainers.to_plain()), 0o644
            )
            write_pending(folder, None)
            self.audit(
                "maintainers-rotated",
                actor,
                now,
                {
                    "version": directory.version,
                    "changes": describe_change(old, directory.maintainers),
                    "threshold": directory.maintainers.threshold,
                    "maintainers": [k.key_id for k in directory.maintainers.keys],
                    "previous_set": kept.name,
                },
            )
        signed_by = sorted(parse_signed(data).signers(every_key([old, directory.maintainers])))
        self.audit(
            "publish",
            actor,
            now,
            {
                "version": directory.version,
                "expires": format_time(directory.expires),
                "nppos": [n.country for n in directory.nppos],
                "not_active": {
                    n.country: n.status for n in directory.nppos if n.status != "active"
                },
                "hub": None if directory.hub is None else directory.hub.tls_pins[0].pin,
                "sha256": _sha256(data),
                "signed_by": signed_by,
                **({"via": via} if via else {}),
            },
        )
        # Nodes that trust the previous version learn of this one through the timestamp.
        resign_timestamp(self.root, now)

    def audit(
        self,
        action: str,
        actor: str,
        now: datetime,
        details: dict[str, Any],
        signer: Signer | None = None,
        *,
        sign: bool = True,
    ) -> None:
        """Append one line to audit.log (O_APPEND, never rewritten), chained to the line
        before and signed by `signer` (default: the first maintainer key held here; none
        with `sign=False`), then fsync. An exclusive lock keeps the read of the last line
        and the append together."""
        if signer is None and sign:
            signer = self.default_signer()
        entry = {
            "time": format_time(now.replace(microsecond=0)),
            "action": action,
            "actor": actor,
            "details": details,
        }
        fd = os.open(self.root / AUDIT_FILE, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            lines = _read_fd(fd).splitlines()
            line = audit_line(entry, lines[-1] if lines else None, signer)
            os.write(fd, line + b"\n")  # one write of one line
            os.fsync(fd)
        finally:
            os.close(fd)  # releases the lock

    def audit_lines(self) -> list[bytes]:
        """The audit log's lines as written, oldest first."""
        try:
            data = (self.root / AUDIT_FILE).read_bytes()
        except FileNotFoundError:
            return []
        return [line for line in data.split(b"\n") if line]

    def audit_entries(self) -> list[dict[str, Any]]:
        """The audit log, oldest first."""
        return [json.loads(line) for line in self.audit_lines()]

    def verify_audit(self) -> ChainReport:
        """The audit log's chain and signatures checked: where it breaks, if it does."""
        return verify_chain(self.audit_lines(), self.statement_maintainers())


@dataclass(frozen=True, slots=True)
class Rotation:
    """A recorded key rotation: the NPPO's verified request, from when its new keys are
    valid, until when its old ones still are, and the maintainer who recorded it."""

    request: RotationRequest
    valid_from: datetime
    old_until: datetime
    maintainer: str


@dataclass(frozen=True, slots=True)
class QueuedRequest:
    """An enrolment request awaiting the maintainers' approvals."""

    request: EnrolmentRequest
    raw: bytes
    queued: str  # RFC 3339 time
    actor: str


@dataclass(frozen=True, slots=True)
class Approval:
    """One maintainer's verified approval of a queued request."""

    name: str
    key_id: str
    time: str


@dataclass(frozen=True, slots=True)
class Approved:
    """The outcome of `approve`: who has approved, and whether it is now enrolled."""

    request: EnrolmentRequest
    approved_by: tuple[str, ...]
    threshold: int
    enrolled: bool


def _read_fd(fd: int) -> bytes:
    chunks, offset = [], 0
    while chunk := os.pread(fd, 1 << 16, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _hub_entry(request: HubRequest | None) -> HubEntry | None:
    """The directory's hub entry; its pin carries the certificate, as an NPPO's does."""
    if request is None:
        return None
    pin = TlsPin(
        request.tls_pin,
        request.valid_from,
        request.valid_until,
        certificate=request.certificate_pem,
    )
    return HubEntry(request.name, request.endpoint.url, (pin,))


def _request_details(request: EnrolmentRequest, raw: bytes) -> dict[str, Any]:
    return {
        "country": request.country,
        "name": request.name,
        "endpoint": request.endpoint.url if request.endpoint else None,
        "signing_key_id": request.signing_key_id,
        "encryption_key_id": request.encryption_key_id,
        "tls_pin": request.tls_pin,
        "valid_until": format_time(request.valid_until),
        "request_sha256": _sha256(raw),
    }


def _key_rotations(rotations: Mapping[str, list[Rotation]]) -> dict[str, list[KeyRotation]]:
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


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
