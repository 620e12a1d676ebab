"""The NPPOs on record: enrolled (nppos/<CC>.json, the request's exact bytes) and awaiting
approval (queue/<CC>.json: when, by whom, the request's exact text), read and written.

The files every other store reads: lifecycle statements are about enrolled NPPOs, and
publication lists them. The workflow that moves a request from the queue to nppos/ is
registry/onboarding.py's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from node.crypto.canonical import canonical_bytes
from node.errors import EphytoError
from node.fileio import write_exclusive
from node.identity.enrolment import EnrolmentRequest, format_time, verify_request
from registry.layout import COUNTRY_FILE, RegistryFiles
from registry.publish import RegistryError


@dataclass(frozen=True, slots=True)
class QueuedRequest:
    """An enrolment request awaiting the maintainers' approvals."""

    request: EnrolmentRequest
    raw: bytes
    queued: str  # RFC 3339 time
    actor: str


class NppoStore(RegistryFiles):
    """The enrolled and the queued requests of a registry directory."""

    def enrolled(self) -> dict[str, tuple[EnrolmentRequest, bytes]]:
        """Country -> (verified request, bytes as received); RegistryError on a bad file."""
        result = {}
        for path in sorted((self.root / "nppos").iterdir()):
            match = COUNTRY_FILE.fullmatch(path.name)
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

    def queued(self) -> dict[str, QueuedRequest]:
        """Country -> the queued request (re-verified); RegistryError on a damaged file."""
        result: dict[str, QueuedRequest] = {}
        queue = self.root / "queue"
        if not queue.is_dir():
            return result
        for path in sorted(queue.iterdir()):
            match = COUNTRY_FILE.fullmatch(path.name)
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

    def _write_queued(
        self, request: EnrolmentRequest, raw: bytes, now: datetime, actor: str
    ) -> None:
        # Written once: a second enrolment of the country racing this one fails here.
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

    def _admit(self, request: EnrolmentRequest, raw: bytes) -> None:
        path = self.root / "nppos" / f"{request.country}.json"
        try:
            write_exclusive(path, raw, 0o644)
        except FileExistsError:
            raise RegistryError(f"{path} appeared meanwhile: another enrolment of it ran") from None
