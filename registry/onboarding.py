"""Onboarding an NPPO: its enrolment request queued, approved by a threshold of the
maintainers (approvals/<sha256>/<keyid>.json, each a signed statement) and enrolled, or
rejected (kept in rejected/). `enrol` is the shortcut when the keys held here suffice.

The request itself is made by `ephyto node init` (node/identity/enrolment.py); what the
registry admits is registry/publish.py's rule, checked here against every party on record.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from node.fileio import write_exclusive
from node.identity.enrolment import EnrolmentRequest, format_time, verify_request
from registry.governance import Signer, check_reason, sha256_hex, sign_statement, verify_statement
from registry.lifecycle import LifecycleStore
from registry.nppos import QueuedRequest
from registry.publish import EnrolmentRefused, RegistryError, check_admissible

_KEYID_FILE: Final = re.compile(r"([0-9a-f]{32})\.json")


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


class OnboardingStore(LifecycleStore):
    """The enrolment workflow of a registry: enrol, queue, approve, reject."""

    def enrol(self, raw: bytes, now: datetime, actor: str) -> EnrolmentRequest:
        """`registry add`: verify a request and enrol it at once, approved by every maintainer
        whose key is held here; InputError (bad request, refused), nothing written.

        The single-maintainer shortcut of `queue` + `approve`: refused (RegistryError) when
        the keys held here are fewer than the threshold.
        """
        request = verify_request(raw)
        with self.locked():
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
        with self.locked():
            self._check_queueable(request, raw, now)
            self._write_queued(request, raw, now, actor)
            # Queueing decides nothing: signed only when a maintainer is named.
            self.audit(
                "queue", actor, now, _request_details(request, raw), signer, sign=signer is not None
            )
        return request

    def approvals(self, raw: bytes) -> dict[str, Approval]:
        """Key id -> the maintainers' verified approvals of the request `raw`."""
        folder = self.root / "approvals" / sha256_hex(raw)
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
                or body.get("request_sha256") != sha256_hex(raw)
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
        with self.locked():
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
                    "request_sha256": sha256_hex(raw),
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
        with self.locked():
            queued = self._queued_entry(country)
            rejected = self.root / "rejected"
            rejected.mkdir(mode=0o755, exist_ok=True)
            sha = sha256_hex(queued.raw)
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
        folder = self.root / "approvals" / sha256_hex(raw)
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        statement = {
            "type": "ephyto-registry-approval",
            "country": request.country,
            "request_sha256": sha256_hex(raw),
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


def _request_details(request: EnrolmentRequest, raw: bytes) -> dict[str, Any]:
    return {
        "country": request.country,
        "name": request.name,
        "endpoint": request.endpoint.url if request.endpoint else None,
        "signing_key_id": request.signing_key_id,
        "encryption_key_id": request.encryption_key_id,
        "tls_pin": request.tls_pin,
        "valid_until": format_time(request.valid_until),
        "request_sha256": sha256_hex(raw),
    }
