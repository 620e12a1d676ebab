"""A directory version proposed, signed in turn on the maintainers' own machines, published.

`propose` builds the next version exactly as `publish` would and writes it, signed by the
keys held at the registry (possibly none), to `proposed/<version>.json`. Each maintainer
adds their signature with `ephyto registry sign` where their key lives (a file travels,
the key does not). `publish --signed` accepts the file only if its "signed" bytes are the
registry's proposal byte for byte, the registry would still build exactly those bytes
(nothing was approved, suspended or rotated meanwhile), and it passes the very rules a
node applies (node/directory/trust.py): a threshold of the current maintainer set and
of the set it carries. Why files signed in turn: docs/adr/0007-maintainer-signing-in-turn.md.

The functions above the shell marker are pure (bytes, values and `now` in); the shell
functions below take the registry's publication store (registry/publication.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from node.crypto.canonical import canonical_bytes
from node.crypto.ids import key_id
from node.directory import (
    Directory,
    DirectoryError,
    MaintainerKey,
    MaintainerSet,
    RotationGap,
    sign_directory,
)
from node.directory.fields import _b64e
from node.directory.signing import SignedDirectory, parse_signed
from node.fileio import write_atomic
from node.identity.enrolment import format_time
from registry.maintainer_set import describe_change, describe_set, held_keys
from registry.publish import RegistryError, trusted_directory

if TYPE_CHECKING:
    from registry.publication import PublicationStore

PROPOSED_DIR: Final = "proposed"


class StaleProposal(RegistryError):
    """The registry's state changed after the proposal was made: propose again."""


# --- pure -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignatureCount:
    """How many distinct keys of a set validly signed, and whose."""

    maintainers: MaintainerSet
    signers: tuple[str, ...]  # names, in the set's order

    @property
    def count(self) -> int:
        return len(self.signers)

    @property
    def enough(self) -> bool:
        return self.count >= self.maintainers.threshold

    def line(self) -> str:
        names = ", ".join(self.signers) or "none"
        missing = [k.name for k in self.maintainers.keys if k.name not in self.signers]
        need = "" if self.enough else f"; not yet: {', '.join(missing)}"
        return f"{self.count} signed, {self.maintainers.threshold} needed ({names}{need})"


def count_signatures(doc: SignedDirectory, maintainers: MaintainerSet) -> SignatureCount:
    """The valid signatures of `maintainers` on `doc` (one per key, however often signed)."""
    valid = doc.signers(maintainers)
    return SignatureCount(maintainers, tuple(k.name for k in maintainers.keys if k.key_id in valid))


def directory_changes(previous: Directory | None, new: Directory) -> list[str]:
    """What `new` changes from `previous`, one line each, for a maintainer about to sign."""
    if previous is None:
        return ["the first version: everything is new"]
    lines: list[str] = []
    before = {n.country: n for n in previous.nppos}
    after = {n.country: n for n in new.nppos}
    for country in sorted(before.keys() | after.keys()):
        old, now = before.get(country), after.get(country)
        if old is None and now is not None:
            lines.append(f"NPPO {country} ({now.name}) added, {now.status}")
        elif now is None and old is not None:
            lines.append(f"NPPO {country} removed")
        elif old is not None and now is not None and old != now:
            if old.status != now.status:
                lines.append(f"NPPO {country}: status {old.status} -> {now.status}")
            old_ids = {k.key_id for k in old.keys}
            added = [k.key_id for k in now.keys if k.key_id not in old_ids]
            if added:
                lines.append(f"NPPO {country}: new keys {', '.join(added)}")
            if old.endpoint != now.endpoint:
                lines.append(f"NPPO {country}: endpoint {old.endpoint} -> {now.endpoint}")
            if {p.pin for p in old.tls_pins} != {p.pin for p in now.tls_pins}:
                lines.append(f"NPPO {country}: TLS pins changed")
            if (old.status, added, old.endpoint) == (now.status, [], now.endpoint):
                lines.append(f"NPPO {country}: key validity or details changed")
    if previous.hub != new.hub:
        name = "none" if new.hub is None else f"{new.hub.name} ({new.hub.tls_pins[0].pin})"
        lines.append(f"hub -> {name}")
    old_lists = dict(previous.code_lists)
    for name, version in new.code_lists:
        if old_lists.get(name) != version:
            lines.append(f"code list {name}: {old_lists.get(name, 'none')} -> {version}")
    if previous.schemas != new.schemas:
        shown = ", ".join(
            f"{s.version} from {format_time(s.valid_from)}"
            + ("" if s.valid_until is None else f" until {format_time(s.valid_until)}")
            for s in new.schemas
        )
        lines.append(f"schema versions: {shown or 'no constraint'}")
    if previous.timestamp_keys != new.timestamp_keys:
        lines.append("timestamp keys changed (the online key that signs timestamp.json)")
    lines += [f"maintainers: {c}" for c in describe_change(previous.maintainers, new.maintainers)]
    return lines or ["no change but the dates (a re-publication before expiry)"]


def summary_lines(
    doc: SignedDirectory,
    *,
    previous: Directory | None = None,
    previous_set: MaintainerSet | None = None,
) -> list[str]:
    """What a maintainer is asked to sign or publish, and the signatures it has."""
    d = doc.directory
    nppos = ", ".join(
        n.country if n.status == "active" else f"{n.country} ({n.status})" for n in d.nppos
    )
    hub = "none" if d.hub is None else f"{d.hub.name} at {d.hub.endpoint}"
    lines = [
        f"directory version {d.version}",
        f"  issued       {format_time(d.issued)}",
        f"  expires      {format_time(d.expires)}",
        f"  NPPOs        {nppos or 'none'}",
        f"  hub          {hub}",
        f"  maintainers  {describe_set(d.maintainers)}",
    ]
    if previous is not None or previous_set is None:
        changes = directory_changes(previous, d) if previous is not None else []
        lines += [f"  change       {c}" for c in changes]
    rotation = previous_set is not None and previous_set != d.maintainers
    if rotation and previous_set is not None:
        lines.append("  ROTATION     this version changes the maintainer set:")
        lines += [f"                 {c}" for c in describe_change(previous_set, d.maintainers)]
        lines.append(f"  signatures   current set {count_signatures(doc, previous_set).line()}")
        lines.append(f"               new set     {count_signatures(doc, d.maintainers).line()}")
    else:
        lines.append(f"  signatures   {count_signatures(doc, d.maintainers).line()}")
    return lines


def signer_entry(
    doc: SignedDirectory, signer_key_id: str, previous_set: MaintainerSet | None
) -> MaintainerKey:
    """The entry of the key about to sign `doc`: in the document's own set, or in the
    current set it rotates from. RegistryError (what to do) otherwise, or if it signed."""
    own = doc.directory.maintainers
    entry = own.key(signer_key_id) or (previous_set.key(signer_key_id) if previous_set else None)
    if entry is None:
        hint = (
            ""
            if previous_set is not None
            else "; if you are a maintainer of the current set signing a change of the"
            " maintainer set, pass --previous with the current maintainers.json or directory"
        )
        raise RegistryError(
            f"key {signer_key_id} is not in this directory's maintainer set"
            f" ({describe_set(own)}){hint}: nothing signed"
        )
    sets = [own] if previous_set is None else [own, previous_set]
    if any(signer_key_id in doc.signers(s) for s in sets):
        raise RegistryError(
            f"version {doc.directory.version} already holds a valid signature by {entry.name}"
            f" ({signer_key_id}); a key counts once: nothing changed"
        )
    return entry


def merge_signed(documents: Sequence[bytes]) -> bytes:
    """One document with the signatures of every copy of the same proposal.

    Maintainers may sign copies in parallel instead of in turn. RegistryError when the
    copies do not hold the same "signed" bytes (they are not the same proposal).
    """
    if not documents:
        raise ValueError("merge needs at least one document")
    docs = [_parse(data, f"file {i + 1}") for i, data in enumerate(documents)]
    first = docs[0]
    if any(doc.signed_bytes != first.signed_bytes for doc in docs[1:]):
        raise RegistryError(
            "the files hold different content: they are not copies of one proposal"
            " (sign the registry's current proposed/<version>.json)"
        )
    by_key: dict[tuple[str, bytes], None] = {}
    for doc in docs:
        for signature in doc.signatures:
            by_key.setdefault((signature.key_id, signature.sig), None)
    sigs = [{"keyid": kid, "sig": _b64e(sig)} for kid, sig in sorted(by_key)]
    # "signatures" sorts before "signed"; "signed" goes in as the very bytes signed.
    return b'{"signatures":' + canonical_bytes(sigs) + b',"signed":' + first.signed_bytes + b"}"


def check_publishable(
    data: bytes,
    *,
    current: MaintainerSet,
    current_bytes: bytes | None,
    proposed_bytes: bytes | None,
    rebuilt_signed: bytes,
    now: datetime,
) -> Directory:
    """The directory in `data` if the registry may publish it now; RegistryError otherwise.

    `current`: the registry's maintainer set; `current_bytes`: the newest published
    version (None before the first); `proposed_bytes`: proposed/<version>.json; and
    `rebuilt_signed`: the "signed" bytes the registry builds now for the proposal's
    `issued` and validity. The last check is the node's own (TrustedDirectory).
    """
    doc = _parse(data, "the signed file")
    version = doc.directory.version
    trusted = trusted_directory(current, current_bytes)
    expected = 1 if trusted.current is None else trusted.current.version + 1
    if version != expected:
        already = " (already published)" if version < expected else ""
        raise RegistryError(
            f"the file holds version {version}{already}, the next version is {expected}:"
            " run `ephyto registry propose` and sign what it writes"
        )
    if proposed_bytes is None:
        raise RegistryError(
            f"version {version} was never proposed here (no {PROPOSED_DIR}/{version}.json):"
            " run `ephyto registry propose` and sign what it writes"
        )
    if _parse(proposed_bytes, f"{PROPOSED_DIR}/{version}.json").signed_bytes != doc.signed_bytes:
        raise RegistryError(
            f"the file's content is not the registry's proposal {PROPOSED_DIR}/{version}.json"
            " (changed after it was proposed, or a copy of an older proposal): nothing"
            " published; have the maintainers sign the current proposal"
        )
    if rebuilt_signed != doc.signed_bytes:
        raise StaleProposal(
            f"the registry changed since version {version} was proposed (an approval,"
            " a status change, a key rotation, the hub or the maintainer set): nothing"
            " published; run `ephyto registry propose` again and have it signed"
        )
    for label, maintainers in _sets(current, doc.directory.maintainers):
        counted = count_signatures(doc, maintainers)
        if not counted.enough:
            raise RegistryError(
                f"version {version} has {counted.count} valid signatures of the {label}"
                f" maintainer set, {maintainers.threshold} needed ({counted.line()}):"
                " have more maintainers run `ephyto registry sign`"
            )
    try:
        return trusted.update(data, now)
    except RotationGap as exc:  # not reachable after the counts above; kept as a guard
        raise RegistryError(f"version {version} is not signed by the current set: {exc}") from None
    except DirectoryError as exc:
        raise RegistryError(f"a node would refuse version {version}: {exc}") from None


def _sets(current: MaintainerSet, own: MaintainerSet) -> list[tuple[str, MaintainerSet]]:
    return [("current", current)] if own == current else [("current", current), ("new", own)]


def _parse(data: bytes, where: str) -> SignedDirectory:
    try:
        return parse_signed(data)
    except DirectoryError as exc:
        raise RegistryError(f"{where} is not a directory document: {exc}") from None


# --- shell ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proposal:
    """What `propose` wrote: the file, its parsed form and the version it follows."""

    path: Path
    doc: SignedDirectory
    previous: Directory | None
    current_set: MaintainerSet


def propose(
    state: PublicationStore,
    now: datetime,
    actor: str,
    *,
    code_lists: Mapping[str, str] | None = None,
    validity: timedelta | None = None,
) -> Proposal:
    """Build the next version as `publish` would (`validity` None: the registry's setting),
    sign it with the keys held here, write proposed/<version>.json (replacing an older
    proposal of that version) and audit it."""
    current_set = state.maintainers
    directory = state.build_next(now, code_lists=code_lists, validity=validity)
    folder = state.root / "maintainers"
    keys = held_keys(folder, [current_set, directory.maintainers])
    try:
        data = sign_directory(directory, keys)
    except DirectoryError as exc:
        raise RegistryError(f"the directory would not be valid: {exc}") from None
    proposed = state.root / PROPOSED_DIR
    proposed.mkdir(mode=0o755, exist_ok=True)
    path = proposed / f"{directory.version}.json"
    write_atomic(path, data, 0o644)
    doc = parse_signed(data)
    state.audit(
        "propose",
        actor,
        now,
        {
            "version": directory.version,
            "expires": format_time(directory.expires),
            "signed_sha256": _sha256(doc.signed_bytes),
            "signed_by": sorted(key_id(k.public_key().public_bytes_raw()) for k in keys),
            "maintainers": describe_change(current_set, directory.maintainers),
        },
    )
    return Proposal(path, doc, state.current(), current_set)


def publish_signed(
    state: PublicationStore,
    documents: Sequence[bytes],
    now: datetime,
    actor: str,
    *,
    code_lists: Mapping[str, str] | None = None,
) -> tuple[Directory, bytes]:
    """Publish a proposal the maintainers signed in turn; RegistryError (nothing written)
    unless `check_publishable` accepts it."""
    data = merge_signed(documents)
    doc = _parse(data, "the signed file")
    version = doc.directory.version
    proposed_path = state.root / PROPOSED_DIR / f"{version}.json"
    try:
        proposed_bytes: bytes | None = proposed_path.read_bytes()
    except FileNotFoundError:
        proposed_bytes = None
    try:
        rebuilt = state.build_next(
            doc.directory.issued,
            code_lists=code_lists,
            validity=doc.directory.expires - doc.directory.issued,
        )
        rebuilt_signed = rebuilt.to_signed_bytes()
    except RegistryError:
        rebuilt_signed = b""  # cannot be rebuilt any more (the clock, a newer version)
    directory = check_publishable(
        data,
        current=state.maintainers,
        current_bytes=state.current_bytes(),
        proposed_bytes=proposed_bytes,
        rebuilt_signed=rebuilt_signed,
        now=now,
    )
    state.record_published(directory, data, now, actor, via="signed proposal")
    proposed_path.unlink(missing_ok=True)  # published now: no longer a proposal
    return directory, data


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
