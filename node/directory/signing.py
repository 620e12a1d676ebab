"""The directory's wire form and the maintainers' signatures over it.

Wire form: canonical JSON `{"signatures": [{"keyid", "sig"}], "signed": {...}}`. Each
signature is Ed25519 over DOMAIN + the exact bytes of "signed" as received; the whole
document must be canonical, so those bytes are the canonical encoding of "signed" and
there is one byte form to sign. Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto.canonical import CanonicalJsonError, canonical_bytes
from node.crypto.ids import key_id
from node.directory.errors import MalformedDirectory, ThresholdNotMet, TooLarge
from node.directory.fields import _KEYID_RE, _b64d, _b64e, _list, _obj, _str, load_canonical_json
from node.directory.model import Directory, MaintainerSet

# A signature over a directory can never be replayed as an envelope or receipt signature.
DOMAIN: Final = b"ephyto-directory-v1\x00"
# ~200 NPPOs with a few keys each is well under 1 MiB; the cap bounds parsing and verifying.
DEFAULT_MAX_BYTES: Final = 2 * 1024 * 1024
_MAX_SIGNATURES: Final = 256


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature entry: the signer's key id and the raw 64-byte Ed25519 signature."""

    key_id: str
    sig: bytes


@dataclass(frozen=True, slots=True)
class SignedDirectory:
    """A parsed, not yet verified document: its content, the bytes signed, the signatures."""

    directory: Directory
    signed_bytes: bytes
    signatures: tuple[Signature, ...]

    def signers(self, maintainers: MaintainerSet) -> frozenset[str]:
        """The distinct key ids of `maintainers` with a valid signature here."""
        return valid_signers(self.signatures, maintainers, signing_input(self.signed_bytes))


def valid_signers(
    signatures: Iterable[Signature], keys: MaintainerSet, message: bytes
) -> frozenset[str]:
    """The distinct key ids of `keys` with a valid signature over `message` among
    `signatures`. Unknown keys are ignored, and a key counts once however often it signed."""
    valid: set[str] = set()
    for signature in signatures:
        key = keys.key(signature.key_id)
        if key is None or key.key_id in valid:
            continue
        try:
            key.ed25519().verify(signature.sig, message)
        except InvalidSignature:
            continue
        valid.add(key.key_id)
    return frozenset(valid)


def signing_input(signed_bytes: bytes) -> bytes:
    """The exact message a maintainer signs: DOMAIN followed by the bytes of "signed"."""
    return DOMAIN + signed_bytes


def sign_directory(
    directory: Directory | Mapping[str, Any], maintainer_private_keys: Iterable[Ed25519PrivateKey]
) -> bytes:
    """The wire bytes of `directory` signed by each key; MalformedDirectory if it is invalid."""
    plain = directory.to_plain() if isinstance(directory, Directory) else directory
    # Parse what will be signed, so the registry can never publish what nodes refuse.
    signed_bytes = Directory.from_plain(plain).to_signed_bytes()
    if canonical_bytes(plain) != signed_bytes:
        raise MalformedDirectory("signed: the content does not survive a parse unchanged")
    return _assemble(signed_bytes, _sign(signing_input(signed_bytes), maintainer_private_keys, ()))


def add_signatures(
    data: bytes,
    maintainer_private_keys: Iterable[Ed25519PrivateKey],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bytes:
    """`data` with signatures by more keys (maintainers sign one after another)."""
    doc = parse_signed(data, max_bytes=max_bytes)
    return _assemble(
        doc.signed_bytes,
        _sign(signing_input(doc.signed_bytes), maintainer_private_keys, doc.signatures),
    )


def verify_signatures(
    data: bytes, maintainers: MaintainerSet, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> Directory:
    """The directory in `data` if a threshold of `maintainers` signed it.

    Raises TooLarge, MalformedDirectory or ThresholdNotMet. Checks no version or expiry:
    TrustedDirectory does.
    """
    doc = parse_signed(data, max_bytes=max_bytes)
    require_threshold(doc, maintainers, "the given maintainers")
    return doc.directory


def parse_signed(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> SignedDirectory:
    """Parse the wire form strictly, verifying nothing; TooLarge, MalformedDirectory."""
    if len(data) > max_bytes:
        raise TooLarge(f"directory is {len(data)} bytes, more than the limit of {max_bytes}")
    try:
        value = load_canonical_json(data, "directory")
    except MalformedDirectory:
        _explain_non_canonical(data)
        raise
    doc = _obj(value, "directory", {"signed", "signatures"})
    entries = _list(doc["signatures"], "signatures")
    if len(entries) > _MAX_SIGNATURES:
        raise MalformedDirectory(f"signatures: more than {_MAX_SIGNATURES}")
    signatures = tuple(_signature(e, f"signatures[{i}]") for i, e in enumerate(entries))
    # The whole document is canonical, so this is byte for byte the "signed" received.
    signed_bytes = canonical_bytes(doc["signed"])
    return SignedDirectory(Directory.from_plain(doc["signed"]), signed_bytes, signatures)


def require_threshold(doc: SignedDirectory, maintainers: MaintainerSet, whose: str) -> None:
    """Raise ThresholdNotMet unless `maintainers.threshold` of them signed `doc`."""
    count = len(doc.signers(maintainers))
    if count < maintainers.threshold:
        raise ThresholdNotMet(
            f"directory version {doc.directory.version} has {count} valid signatures by {whose},"
            f" {maintainers.threshold} needed"
        )


def _explain_non_canonical(data: bytes) -> None:
    # Name the part that matters: a non-canonical "signed" makes the signed bytes ambiguous.
    try:
        signed = canonical_bytes(json.loads(data.decode("utf-8"))["signed"])
    except (ValueError, KeyError, TypeError, RecursionError, CanonicalJsonError):
        return  # the original error says it better
    if signed not in data:
        raise MalformedDirectory('"signed" is not in canonical JSON form (sorted keys, no spaces)')


def _signature(value: object, path: str) -> Signature:
    doc = _obj(value, path, {"keyid", "sig"})
    kid = _str(doc["keyid"], f"{path}.keyid", 32)
    if not _KEYID_RE.fullmatch(kid):
        raise MalformedDirectory(f"{path}.keyid: {kid!r} is not 32 lowercase hex digits")
    return Signature(kid, _b64d(doc["sig"], f"{path}.sig", 64))


def _sign(
    message: bytes, keys: Iterable[Ed25519PrivateKey], existing: Iterable[Signature]
) -> list[Signature]:
    # `message`: the domain and the signed bytes (signing_input; the timestamp's own domain).
    by_key = {s.key_id: s for s in existing}
    for private in keys:
        kid = key_id(private.public_key().public_bytes_raw())
        by_key[kid] = Signature(kid, private.sign(message))
    # Sorted by key id: the same keys give the same bytes (Ed25519 is deterministic).
    return sorted(by_key.values(), key=lambda s: s.key_id)


def _assemble(signed_bytes: bytes, signatures: list[Signature]) -> bytes:
    sigs = [{"keyid": s.key_id, "sig": _b64e(s.sig)} for s in signatures]
    # Keys sort "signatures" before "signed"; "signed" goes in as the very bytes signed.
    return b'{"signatures":' + canonical_bytes(sigs) + b',"signed":' + signed_bytes + b"}"
