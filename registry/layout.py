"""A registry directory on disk: its layout, its one lock, its maintainers' keys, its audit.

Layout of a registry directory (docs/maintainers.md), and the module that owns each part:

    maintainers/maintainers.json  the maintainer set: threshold and public keys (the trust
                                  anchor node operators configure; Part C `maintainers`)
    maintainers/<keyid>.key       a maintainer's Ed25519 private key, PKCS#8 PEM, 0600
                                  (this module; the set's changes: registry/maintainer_set.py)
    nppos/<CC>.json               each enrolled NPPO's request, the exact bytes received
    queue/<CC>.json               a request awaiting approvals: when, by whom, its exact text
                                  (both registry/nppos.py)
    approvals/<sha256>/<keyid>.json  a maintainer's signed approval of the request with
                                  that SHA-256 (one file per maintainer: one counts once)
    rejected/<CC>-<sha>.json      a rejected queue entry, kept for the record
                                  (both registry/onboarding.py)
    status/<CC>.json              a maintainer's signed decision: suspended or revoked
                                  (absent: active), replaced atomically
    rotations/<CC>-<n>.json       a maintainer's signed record of an NPPO's key rotation
                                  n = 1, 2, ...: the request, valid_from, old_until
    endpoints/, hub.json          endpoint changes (registry/endpoints.py) and the hub's
                                  request (all registry/lifecycle.py)
    published/<version>.json      every signed directory version, never changed or removed
    current.json                  a copy of the newest published version (replaced atomically)
                                  (both registry/publication.py)
    timestamp/<keyid>.key, timestamp.json  the online timestamp key(s) and the newest signed
                                  timestamp naming current.json (registry/timestamp.py)
    codelists/, schemas.json      code lists and schema versions (registry/codelists.py,
                                  registry/schemas.py)
    settings.json                 the maintainers' settings: how long a published directory
                                  is valid (registry/settings.py), replaced atomically
    audit.log                     append-only JSON lines: time, action, actor, details,
                                  hash-chained (prev) and signed by the maintainer's key
                                  (registry/audit.py)

Files are written once (O_EXCL) except current.json, hub.json, status/, settings.json and
the queue (an entry leaves it when approved or rejected), so two maintainers racing to
enrol one country or to publish one version cannot both succeed. Everything is recomputed
from the files (requests re-verified on each read), so a hand-edited file is caught, not
trusted.

`RegistryFiles` is the base of the registry's stores (nppos, lifecycle, onboarding,
publication, settings_store), combined in registry/state.py; code lists and schemas work
on it directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto.ids import key_id
from node.directory import DirectoryError, MaintainerKey, MaintainerSet
from node.fileio import exclusive_lock, write_exclusive
from node.identity.keys import load_signing_key, private_key_pem
from registry import audit as audit_log
from registry.governance import ChainReport, Signer
from registry.maintainer_set import every_key, json_file, read_pending, read_set, retired_sets
from registry.publish import RegistryError
from registry.settings import Settings, check_directory_days, write_settings
from registry.timestamp import create_key as create_timestamp_key

MAINTAINERS_FILE: Final = "maintainers.json"
LOCK_FILE: Final = ".lock"
# A file named for one country: nppos/, queue/, status/.
COUNTRY_FILE: Final = re.compile(r"([A-Z]{2})\.json")


class NotARegistryError(RegistryError):
    """The directory holds no registry: run `ephyto registry init` first."""


class RegistryExistsError(RegistryError):
    """`init` on a directory that already holds a registry: it is never overwritten."""


class RegistryFiles:
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
        directory_days: int | None = None,
    ) -> Self:
        """Create a registry with a new key per maintainer; RegistryExistsError, RegistryError.

        `threshold` of the maintainers must approve an enrolment and sign a directory.
        `directory_days`: how long each published version is valid (None: the default,
        registry/settings.py), recorded in settings.json.
        """
        if directory_days is not None:
            check_directory_days(directory_days)
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
        if directory_days is not None:
            write_settings(root, Settings(directory_days=directory_days))
        state.audit(
            "init",
            actor,
            now,
            {
                "threshold": threshold,
                "maintainers": [key_id(p) for p in publics],
                "timestamp_key": timestamp_key,
                **({} if directory_days is None else {"directory_days": directory_days}),
            },
        )
        return state

    @property
    def maintainers(self) -> MaintainerSet:
        """The maintainer set from maintainers.json; RegistryError when it is damaged."""
        path = self.root / "maintainers" / MAINTAINERS_FILE
        return read_set(path, path.read_bytes())

    def next_maintainers(self) -> MaintainerSet:
        """The set the next directory carries: the pending change, else the current set."""
        return read_pending(self.root / "maintainers") or self.maintainers

    def statement_maintainers(self) -> MaintainerSet:
        """Every key of the current and retired sets, for checking statements and audit
        lines: what a maintainer signed before a rotation retired them stays valid."""
        folder = self.root / "maintainers"
        return every_key([self.maintainers, *reversed(retired_sets(folder))])

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

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the registry's one lock: one change at a time, so two maintainers approving
        at once cannot both enrol. Not reentrant: take it once per change."""
        with exclusive_lock(self.root / LOCK_FILE, 0o644):
            yield

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
        """Append one signed, chained line to audit.log (registry/audit.py), signed by
        `signer` (default: the first maintainer key held here; none with `sign=False`)."""
        if signer is None and sign:
            signer = self.default_signer()
        audit_log.append(self.root, action, actor, now, details, signer)

    def audit_lines(self) -> list[bytes]:
        """The audit log's lines as written, oldest first."""
        return audit_log.lines(self.root)

    def audit_entries(self) -> list[dict[str, Any]]:
        """The audit log, oldest first."""
        return audit_log.entries(self.root)

    def verify_audit(self) -> ChainReport:
        """The audit log's chain and signatures checked: where it breaks, if it does."""
        return audit_log.verify(self.root, self.statement_maintainers())
