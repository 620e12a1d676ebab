"""Registry governance: maintainers' signed statements and the hash-chained audit log.

Pure: values, keys and bytes in; values, bytes or a RegistryError out. Files are the
shell's (registry.audit, registry.onboarding, registry.lifecycle).

- A **statement** (an approval of an enrolment request, a lifecycle decision) is
  `{"statement": {..., "maintainer": <key id>}, "sig": <base64>}`: the maintainer's
  Ed25519 signature over STATEMENT_DOMAIN followed by the canonical bytes of
  `statement`. It is checked against the registry's maintainer set every time it is read.
- An **audit entry** is one canonical JSON line `{"time", "action", "actor", "details",
  "prev"[, "maintainer", "sig"]}`. `prev` is the SHA-256 (hex) of the line before it, as
  written (GENESIS for the first line), so an entry altered, removed or inserted breaks
  the chain at the next line. `sig`, when present, is the signature of `maintainer` over
  AUDIT_DOMAIN followed by the canonical bytes of the entry without `sig`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto.canonical import CanonicalJsonError, canonical_bytes
from node.crypto.ids import key_id
from node.directory import MaintainerKey, MaintainerSet
from registry.publish import RegistryError

# Distinct domains: a statement, an audit entry and a directory signature never stand in
# for one another.
STATEMENT_DOMAIN: Final = b"ephyto-registry-statement-v1\x00"
AUDIT_DOMAIN: Final = b"ephyto-registry-audit-v1\x00"
GENESIS: Final = "0" * 64
MAX_REASON_CHARS: Final = 500


@dataclass(frozen=True, slots=True)
class Signer:
    """A maintainer able to sign here: their entry in the set and their private key."""

    maintainer: MaintainerKey
    private_key: Ed25519PrivateKey

    @property
    def name(self) -> str:
        return self.maintainer.name

    @property
    def key_id(self) -> str:
        return self.maintainer.key_id


def check_reason(text: str) -> str:
    """A reason as recorded: trimmed, 1 to 500 characters, no control characters."""
    reason = text.strip()
    if not reason or len(reason) > MAX_REASON_CHARS:
        raise RegistryError(f"a reason must be 1 to {MAX_REASON_CHARS} characters")
    if any(unicodedata.category(c) == "Cc" for c in reason):
        raise RegistryError("a reason must not contain control characters (one line)")
    return reason


def sign_statement(statement: dict[str, Any], signer: Signer) -> bytes:
    """The canonical bytes of `statement` (with `maintainer` set) signed by `signer`."""
    body = {**statement, "maintainer": signer.key_id}
    sig = signer.private_key.sign(STATEMENT_DOMAIN + canonical_bytes(body))
    return canonical_bytes({"statement": body, "sig": _b64(sig)})


def verify_statement(
    data: bytes, maintainers: MaintainerSet, where: str
) -> tuple[dict[str, Any], MaintainerKey]:
    """The statement in `data` and its signer, if a maintainer of the set signed it."""
    try:
        doc = json.loads(data)
        if canonical_bytes(doc) != data:
            raise ValueError("not canonical JSON")
        if not isinstance(doc, dict) or set(doc) != {"statement", "sig"}:
            raise ValueError("not a signed statement")
        body = doc["statement"]
        if not isinstance(body, dict) or not isinstance(body.get("maintainer"), str):
            raise ValueError("no maintainer")
        sig = _unb64(doc["sig"])
    except (ValueError, UnicodeDecodeError, CanonicalJsonError, binascii.Error) as exc:
        raise RegistryError(f"{where}: damaged ({exc})") from None
    key = maintainers.key(body["maintainer"])
    if key is None:
        raise RegistryError(f"{where}: signed by {body['maintainer']}, not a maintainer key")
    try:
        key.ed25519().verify(sig, STATEMENT_DOMAIN + canonical_bytes(body))
    except InvalidSignature:
        raise RegistryError(f"{where}: the signature of {key.name} does not verify") from None
    return body, key


def audit_line(entry: dict[str, Any], previous_line: bytes | None, signer: Signer | None) -> bytes:
    """The audit line (no newline) of `entry` after `previous_line`, signed if `signer`."""
    chained = {**entry, "prev": GENESIS if previous_line is None else _sha256(previous_line)}
    if signer is None:
        return canonical_bytes(chained)
    chained["maintainer"] = signer.key_id
    sig = signer.private_key.sign(AUDIT_DOMAIN + canonical_bytes(chained))
    return canonical_bytes({**chained, "sig": _b64(sig)})


@dataclass(slots=True)
class ChainReport:
    """What `verify_chain` found: counts, the head hash, and every break (line numbers)."""

    entries: int = 0
    signed: int = 0
    unchained: int = 0  # lines written before chaining existed, at the start of the log
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)


def verify_chain(lines: Sequence[bytes], maintainers: MaintainerSet) -> ChainReport:
    """Check every line's `prev` and signature; problems name the line (1-based)."""
    report = ChainReport(entries=len(lines))
    chained_seen = False
    for number, line in enumerate(lines, start=1):
        report.head = _sha256(line)
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError):
            report.problems.append(f"line {number}: not a JSON object (altered)")
            continue
        if "prev" not in entry:
            if chained_seen:
                report.problems.append(
                    f"line {number}: has no `prev` after chained lines (inserted or altered)"
                )
            else:
                report.unchained += 1
            continue
        chained_seen = True
        expected = GENESIS if number == 1 else _sha256(lines[number - 2])
        if entry["prev"] != expected:
            before = (
                "it is the first line, yet it does not start the chain"
                if number == 1
                else (f"line {number - 1} was altered, or lines were removed or inserted before it")
            )
            report.problems.append(
                f"line {number}: `prev` is not the SHA-256 of the line before: {before}"
            )
        if "sig" in entry:
            problem = _check_entry_signature(entry, line, maintainers)
            if problem:
                report.problems.append(f"line {number}: {problem}")
            else:
                report.signed += 1
    return report


def _check_entry_signature(
    entry: dict[str, Any], line: bytes, maintainers: MaintainerSet
) -> str | None:
    unsigned = {k: v for k, v in entry.items() if k != "sig"}
    try:
        if canonical_bytes(entry) != line:
            return "not in canonical form (altered)"
        sig = _unb64(entry["sig"])
        message = AUDIT_DOMAIN + canonical_bytes(unsigned)
    except (ValueError, CanonicalJsonError, binascii.Error):
        return "damaged signature (altered)"
    key = maintainers.key(str(entry.get("maintainer")))
    if key is None:
        return f"signed by {entry.get('maintainer')!r}, not a maintainer key"
    try:
        key.ed25519().verify(sig, message)
    except InvalidSignature:
        return f"the signature of {key.name} does not verify (altered)"
    return None


def signer_key_id(private_key: Ed25519PrivateKey) -> str:
    return key_id(private_key.public_key().public_bytes_raw())


def sha256_hex(data: bytes) -> str:
    return _sha256(data)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError("signature is not a string")
    return base64.b64decode(value, validate=True)
