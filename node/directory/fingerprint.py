"""The maintainer-set fingerprint: what an operator confirms by another channel.

A node trusts a registry only through its maintainers' keys. When a node finds a
registry by discovery, the keys arrive over the same untrusted network, so the
operator confirms them by a short value read out by a maintainer (phone, letter):
`sha256:` + the lowercase hex SHA-256 of the canonical JSON bytes of the maintainer
set (`MaintainerSet.to_plain()`, docs/protocol.md Part C). Every key, name and the
threshold are covered, so a different set can only match by a SHA-256 collision.

Pure: values in, values or InputError out.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from node.crypto.canonical import canonical_bytes
from node.directory.errors import BadSignature
from node.directory.model import Directory, MaintainerSet
from node.directory.signing import DEFAULT_MAX_BYTES, parse_signed, verify_signatures
from node.errors import InputError

PREFIX: Final = "sha256:"
HEX_DIGITS: Final = 64
# What an operator must type at least when confirming by hand: 64 bits, so a rogue set
# would need a second preimage of that length, not a chance match of a few digits.
MIN_CONFIRM_DIGITS: Final = 16
FINGERPRINT_RE: Final = re.compile(r"sha256:[0-9a-f]{64}")
# Spaces, colons and dashes are how people group digits when they write them down.
_SEPARATORS: Final = re.compile(r"[\s:-]+")


class MalformedFingerprint(InputError):
    """Text that is not a maintainer-set fingerprint (or a long enough start of one)."""


class FingerprintMismatch(BadSignature):
    """The directory's maintainer set is not the one the operator confirmed: not trusted."""


def maintainer_fingerprint(maintainers: MaintainerSet) -> str:
    """`sha256:<64 lowercase hex digits>` over the canonical JSON of the maintainer set."""
    digest = hashlib.sha256(canonical_bytes(maintainers.to_plain())).hexdigest()
    return PREFIX + digest


def format_fingerprint(fingerprint: str) -> str:
    """The fingerprint for reading aloud: `sha256: 1a2b 3c4d ...` in groups of four digits."""
    digits = _digits_of(fingerprint)
    return PREFIX + " " + " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))


def parse_fingerprint(text: str, *, min_digits: int = HEX_DIGITS) -> str:
    """The hex digits an operator gave (a whole fingerprint, or its start); MalformedFingerprint.

    Accepts `sha256:` or not, upper or lower case, and digits grouped by spaces, colons or
    dashes (`format_fingerprint` output pasted back). Returns lowercase hex only, at least
    `min_digits` and at most 64 of them.
    """
    body = text.strip()
    if body[: len(PREFIX)].lower() == PREFIX:
        body = body[len(PREFIX) :]
    digits = _SEPARATORS.sub("", body).lower()
    if not digits or any(c not in "0123456789abcdef" for c in digits):
        raise MalformedFingerprint(
            f"{_shown(text)} is not a fingerprint: expected sha256: and hex digits"
        )
    if len(digits) > HEX_DIGITS:
        raise MalformedFingerprint(f"{_shown(text)} has more than {HEX_DIGITS} hex digits")
    if len(digits) < min_digits:
        what = "all 64" if min_digits >= HEX_DIGITS else f"at least the first {min_digits}"
        raise MalformedFingerprint(
            f"{_shown(text)} has {len(digits)} hex digits: give {what} digits of the fingerprint"
        )
    return digits


def confirms(digits: str, fingerprint: str) -> bool:
    """Whether the operator's digits (from parse_fingerprint) are the start of `fingerprint`."""
    return len(digits) >= MIN_CONFIRM_DIGITS and _digits_of(fingerprint).startswith(digits)


def directory_confirmed_by(
    data: bytes, digits: str, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[Directory, str]:
    """The directory in `data` and its fingerprint, if the operator's digits confirm its set.

    Bootstrapping trust from nothing but the operator's word: the directory's own
    maintainer set must have the confirmed fingerprint, and a threshold of that set must
    have signed the document. Raises TooLarge, MalformedDirectory, FingerprintMismatch
    (checked first: no signature work for a set nobody vouched for) or ThresholdNotMet.
    """
    claimed = parse_signed(data, max_bytes=max_bytes).directory.maintainers
    fingerprint = maintainer_fingerprint(claimed)
    if not confirms(digits, fingerprint):
        raise FingerprintMismatch(
            f"the directory's maintainer set has fingerprint {fingerprint}, not the one"
            f" confirmed ({digits[:16]}...)"
        )
    return verify_signatures(data, claimed, max_bytes=max_bytes), fingerprint


def _digits_of(fingerprint: str) -> str:
    if not FINGERPRINT_RE.fullmatch(fingerprint):
        raise MalformedFingerprint(f"{_shown(fingerprint)} is not sha256:<64 hex digits>")
    return fingerprint[len(PREFIX) :]


def _shown(text: str) -> str:
    # Typed or announced text goes into an error line: bounded and escaped.
    return repr(text[:80] + ("..." if len(text) > 80 else ""))
