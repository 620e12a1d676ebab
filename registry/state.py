"""The registry's state on disk (the shell): maintainers, enrolled NPPOs, published versions.

Layout of a registry directory (docs/maintainers.md):

    maintainers/maintainers.json  the maintainer set: threshold and public keys (the trust
                                  anchor node operators configure; Part C `maintainers`)
    maintainers/<keyid>.key       a maintainer's Ed25519 private key, PKCS#8 PEM, 0600
    nppos/<CC>.json               each enrolled NPPO's request, the exact bytes received
    published/<version>.json      every signed directory version, never changed or removed
    current.json                  a copy of the newest published version (replaced atomically)
    audit.log                     append-only JSON lines: time, action, actor, details

Files are written once (O_EXCL) except current.json, so two maintainers racing to enrol
one country or to publish one version cannot both succeed. Everything is recomputed from
the files (requests re-verified on each read), so a hand-edited file is caught, not trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

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
from node.errors import EphytoError
from node.hub.request import HubRequest, verify_hub_request
from node.identity.enrolment import EnrolmentRequest, format_time, verify_request
from node.identity.keys import load_signing_key, private_key_pem
from node.identity.store import write_exclusive
from registry.publish import (
    DEFAULT_VALIDITY,
    EnrolmentRefused,
    RegistryError,
    check_admissible,
    check_hub_admissible,
    next_directory,
)

MAINTAINERS_FILE: Final = "maintainers.json"
AUDIT_FILE: Final = "audit.log"
CURRENT_FILE: Final = "current.json"
HUB_FILE: Final = "hub.json"
_VERSION_FILE = re.compile(r"([1-9][0-9]{0,18})\.json")
_COUNTRY_FILE = re.compile(r"([A-Z]{2})\.json")


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
        cls, root: Path, *, maintainer: str, threshold: int, now: datetime, actor: str
    ) -> RegistryState:
        """Create a registry with one new maintainer key; RegistryExistsError, RegistryError."""
        if threshold != 1:
            # Needs as many keys as the threshold, each with its own maintainer: governance.
            raise RegistryError(
                f"threshold {threshold} needs {threshold} maintainer keys; this release makes"
                " one: use --threshold 1"
            )
        key = Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes_raw()
        anchor = MaintainerSet(threshold, (MaintainerKey(maintainer, key_id(public), public),))
        # Round-trip through the strict parser, so init never writes what nodes refuse.
        try:
            MaintainerSet.from_plain(anchor.to_plain())
        except DirectoryError as exc:
            raise RegistryError(f"maintainer name {maintainer!r}: {exc}") from None
        maintainers = root / "maintainers"
        if maintainers.exists():
            raise RegistryExistsError(f"{maintainers} already exists: choose another --dir")
        for sub, mode in (("", 0o755), ("maintainers", 0o700), ("nppos", 0o755)):
            (root / sub).mkdir(mode=mode, parents=True, exist_ok=sub != "maintainers")
        (root / "published").mkdir(mode=0o755, exist_ok=True)
        write_exclusive(maintainers / f"{key_id(public)}.key", private_key_pem(key), 0o600)
        # The anchor goes last: its presence marks a complete registry.
        write_exclusive(maintainers / MAINTAINERS_FILE, _json_file(anchor.to_plain()), 0o644)
        state = cls(root)
        state.audit("init", actor, now, {"threshold": threshold, "maintainers": [key_id(public)]})
        return state

    @property
    def maintainers(self) -> MaintainerSet:
        """The maintainer set from maintainers.json; RegistryError when it is damaged."""
        path = self.root / "maintainers" / MAINTAINERS_FILE
        try:
            return MaintainerSet.from_plain(json.loads(path.read_bytes()))
        except (ValueError, DirectoryError) as exc:
            raise RegistryError(f"{path}: not a maintainer set: {exc}") from None

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
        """Verify and store a request; InputError (bad request, refused), nothing written."""
        request = verify_request(raw)
        check_admissible(request, raw, self.enrolled(), now)
        hub = self.hub()
        if hub is not None and hub.tls_pin == request.tls_pin:
            raise EnrolmentRefused(f"TLS pin {request.tls_pin} is the hub's")
        path = self.root / "nppos" / f"{request.country}.json"
        try:
            write_exclusive(path, raw, 0o644)
        except FileExistsError:
            raise RegistryError(f"{path} appeared meanwhile: another enrolment of it ran") from None
        self.audit("enrol", actor, now, _request_details(request, raw))
        return request

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
        _replace(self.root / HUB_FILE, raw)
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
        code_lists: Mapping[str, str],
        validity: timedelta = DEFAULT_VALIDITY,
    ) -> tuple[Directory, bytes]:
        """Sign and publish the next version; RegistryError when it cannot (nothing written)."""
        maintainers, keys = self.maintainers, self.private_keys()
        if len(keys) < maintainers.threshold:
            raise RegistryError(
                f"{len(keys)} maintainer keys here, {maintainers.threshold} needed to sign"
            )
        previous = self.current()
        if previous is not None and self.versions()[-1:] != [previous.version]:
            raise RegistryError(f"{self.root / CURRENT_FILE} is not the newest published version")
        requests = [request for request, _ in self.enrolled().values()]
        directory = next_directory(
            requests,
            maintainers,
            previous,
            now,
            code_lists=code_lists,
            validity=validity,
            hub=_hub_entry(self.hub()),
        )
        try:
            data = sign_directory(directory, keys)
        except DirectoryError as exc:
            raise RegistryError(f"the directory would not be valid: {exc}") from None
        path = self.root / "published" / f"{directory.version}.json"
        try:
            write_exclusive(path, data, 0o644)
        except FileExistsError:
            raise RegistryError(f"{path} appeared meanwhile: another publish ran") from None
        _replace(self.root / CURRENT_FILE, data)
        self.audit(
            "publish",
            actor,
            now,
            {
                "version": directory.version,
                "expires": format_time(directory.expires),
                "nppos": [n.country for n in directory.nppos],
                "hub": None if directory.hub is None else directory.hub.tls_pins[0].pin,
                "sha256": _sha256(data),
            },
        )
        return directory, data

    def audit(self, action: str, actor: str, now: datetime, details: dict[str, Any]) -> None:
        """Append one line to audit.log (opened O_APPEND, never rewritten), then fsync."""
        line = canonical_bytes(
            {
                "time": format_time(now.replace(microsecond=0)),
                "action": action,
                "actor": actor,
                "details": details,
            }
        )
        fd = os.open(self.root / AUDIT_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line + b"\n")  # one write of one line: appends never interleave
            os.fsync(fd)
        finally:
            os.close(fd)

    def audit_entries(self) -> list[dict[str, Any]]:
        """The audit log, oldest first."""
        try:
            text = (self.root / AUDIT_FILE).read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line]


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


def _json_file(value: object) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True).encode("utf-8") + b"\n"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _replace(path: Path, data: bytes) -> None:
    # Readers (the web server) see the old file or the new one, never half of one.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    write_exclusive(tmp, data, 0o644)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
