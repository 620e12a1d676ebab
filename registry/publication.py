"""Publishing the directory: the next version built from the files, signed by the keys held
here, checked as a node checks it, and written as published/<version>.json and
current.json; the maintainer-set change it carries made effective.

What goes into a version is registry/publish.py's pure rule; this module reads its inputs
(enrolments, lifecycle records, code lists, schema versions) and writes its outputs.
`propose` and `publish --signed` (registry/proposal.py) build and record through it too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto.ids import key_id
from node.directory import (
    Directory,
    DirectoryError,
    HubEntry,
    TlsPin,
    sign_directory,
    verify_signatures,
)
from node.directory.signing import parse_signed
from node.fileio import write_atomic, write_exclusive
from node.hub.request import HubRequest
from node.identity.enrolment import format_time
from registry.codelists import directory_members, write_published
from registry.governance import sha256_hex
from registry.layout import MAINTAINERS_FILE
from registry.lifecycle import LifecycleStore, key_rotations
from registry.maintainer_set import (
    describe_change,
    every_key,
    held_keys,
    json_file,
    retire,
    write_pending,
)
from registry.publish import (
    RegistryError,
    next_directory,
    require_node_acceptance,
)
from registry.schemas import schemas as schema_versions
from registry.settings import directory_validity
from registry.timestamp import resign as resign_timestamp
from registry.timestamp import timestamp_keys

CURRENT_FILE: Final = "current.json"
_VERSION_FILE: Final = re.compile(r"([1-9][0-9]{0,18})\.json")


class PublicationStore(LifecycleStore):
    """The published versions of a registry, and publishing the next one."""

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
        validity: timedelta | None = None,
    ) -> tuple[Directory, bytes]:
        """Sign and publish the next version; RegistryError when it cannot (nothing written).

        `validity` (None: the registry's setting, registry/settings.py) counts from `now`.
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

    def build_next(
        self,
        now: datetime,
        *,
        code_lists: Mapping[str, str] | None = None,
        validity: timedelta | None = None,
    ) -> Directory:
        """The next version as `publish` builds it from the files, unsigned; RegistryError.

        Deterministic for a given `now` and `validity`: `publish --signed` rebuilds a
        proposal this way to prove the registry has not changed since it was proposed.
        `validity` None: the registry's setting (registry/settings.py).
        """
        if validity is None:
            validity = directory_validity(self.root)
        maintainers = self.next_maintainers()
        previous = self.current()
        if previous is not None and self.versions()[-1:] != [previous.version]:
            raise RegistryError(f"{self.root / CURRENT_FILE} is not the newest published version")
        # Read and verified once here: rotations and endpoint changes are checked against
        # the enrolments and the maintainers' keys.
        enrolled, signers = self.enrolled(), self.statement_maintainers()
        requests = [request for request, _ in enrolled.values()]
        statuses = {cc: record[0] for cc, record in self.statuses().items()}
        rotations = key_rotations(self._rotations(enrolled, signers))
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
                "sha256": sha256_hex(data),
                "signed_by": signed_by,
                **({"via": via} if via else {}),
            },
        )
        # Nodes that trust the previous version learn of this one through the timestamp.
        resign_timestamp(self.root, now)

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
