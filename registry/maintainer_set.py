"""Changing the maintainer set, as TUF rotates root (docs/maintainers.md, ADR 0007).

A change (add a key, remove one, a new threshold) is recorded as a **pending** set in
`maintainers/maintainers.pending.json`. It is not effective there: the next directory
carries it in `maintainers`, and that directory must be signed by a threshold of the
current set *and* of the new one (the rule nodes apply, node/directory/trust.py). Once
it is published the new set becomes `maintainers.json` and the old one is kept as
`maintainers.<n>.json` (n = 1, 2, ... in the order they were retired), so statements
and audit lines a former maintainer signed still verify.

The pure part (public entries, the set arithmetic, describing a change) does no I/O; the
few file helpers at the end take the `maintainers/` folder and are used by the shell
(registry.layout, registry.publication, registry.cli_signing).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.crypto.ids import key_id
from node.directory import DirectoryError, MaintainerKey, MaintainerSet
from node.fileio import write_atomic, write_exclusive
from node.identity.enrolment import b64_text
from node.identity.keys import load_signing_key
from registry.publish import RegistryError

PENDING_FILE: Final = "maintainers.pending.json"
PUBLIC_SUFFIX: Final = ".pub.json"
_RETIRED_FILE: Final = re.compile(r"maintainers\.([1-9][0-9]{0,5})\.json")
# A public entry is a few hundred bytes; anything much larger is not one.
MAX_PUBLIC_ENTRY_BYTES: Final = 4096


# --- pure: public entries -------------------------------------------------------------


def public_entry(name: str, public_key: bytes) -> bytes:
    """The file a new maintainer sends the registry: `{"name", "keyid", "public_key"}`.

    RegistryError when `name` is not a name the directory accepts (checked here, on the
    maintainer's machine, rather than later at the registry).
    """
    plain = {"name": name, "keyid": key_id(public_key), "public_key": b64_text(public_key)}
    data = json_file(plain)
    parse_public_entry(data, "the new key")  # refuses what the registry would refuse
    return data


def parse_public_entry(data: bytes, where: str) -> MaintainerKey:
    """The maintainer key in a public entry file; RegistryError saying what is wrong."""
    if len(data) > MAX_PUBLIC_ENTRY_BYTES:
        raise RegistryError(f"{where}: {len(data)} bytes, not a maintainer's public entry")
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{where}: not JSON ({exc})") from None
    try:
        # The directory's own strict parser: a key id that does not match its key, a bad
        # name or bad base64 is refused exactly as a node would refuse it.
        parsed = MaintainerSet.from_plain({"threshold": 1, "keys": [value]}, where)
    except DirectoryError as exc:
        raise RegistryError(
            f"{where}: not a maintainer's public entry ({exc}); make it with"
            " `ephyto registry keygen`"
        ) from None
    return parsed.keys[0]


# --- pure: the set arithmetic ------------------------------------------------------


def add_key(current: MaintainerSet, key: MaintainerKey) -> MaintainerSet:
    """`current` with `key` added (threshold unchanged); RegistryError for a duplicate."""
    for existing in current.keys:
        if existing.key_id == key.key_id:
            raise RegistryError(
                f"key {key.key_id} is already in the set, as {existing.name}: nothing changed"
            )
        if existing.name == key.name:
            raise RegistryError(
                f"a maintainer named {key.name!r} is already in the set ({existing.key_id}):"
                " each maintainer needs a name of their own (remove the old key first when"
                " a maintainer replaces their key)"
            )
    return _checked(MaintainerSet(current.threshold, (*current.keys, key)))


def remove_key(current: MaintainerSet, name: str) -> MaintainerSet:
    """`current` without maintainer `name`; RegistryError when the threshold could no
    longer be met by the keys that remain."""
    if all(k.name != name for k in current.keys):
        known = ", ".join(k.name for k in current.keys)
        raise RegistryError(f"{name!r} is not in the maintainer set ({known}): nothing changed")
    keys = tuple(k for k in current.keys if k.name != name)
    if len(keys) < current.threshold:
        raise RegistryError(
            f"removing {name} would leave {len(keys)} keys for a threshold of"
            f" {current.threshold}: lower the threshold first"
            f" (`ephyto registry maintainers threshold {max(len(keys), 1)}`) or add a key"
        )
    return _checked(MaintainerSet(current.threshold, keys))


def with_threshold(current: MaintainerSet, threshold: int) -> MaintainerSet:
    """`current` with a new threshold; RegistryError unless 1 <= threshold <= keys."""
    if not 1 <= threshold <= len(current.keys):
        raise RegistryError(
            f"threshold {threshold} needs 1 to {len(current.keys)} (the number of maintainer"
            " keys in the set): add keys first for a higher one"
        )
    if threshold == current.threshold:
        raise RegistryError(f"the threshold is already {threshold}: nothing changed")
    return _checked(MaintainerSet(threshold, current.keys))


def describe_change(old: MaintainerSet, new: MaintainerSet) -> list[str]:
    """One line per difference between two sets (empty when they are the same)."""
    old_ids = {k.key_id for k in old.keys}
    new_ids = {k.key_id for k in new.keys}
    lines = [f"add {k.name} ({k.key_id})" for k in new.keys if k.key_id not in old_ids]
    lines += [f"remove {k.name} ({k.key_id})" for k in old.keys if k.key_id not in new_ids]
    if old.threshold != new.threshold:
        lines.append(f"threshold {old.threshold} -> {new.threshold}")
    return lines


def describe_set(maintainers: MaintainerSet) -> str:
    """`2 of 3: alice (ab12...), bob (...), carol (...)`."""
    names = ", ".join(f"{k.name} ({k.key_id})" for k in maintainers.keys)
    return f"{maintainers.threshold} of {len(maintainers.keys)}: {names}"


def every_key(sets: Iterable[MaintainerSet]) -> MaintainerSet:
    """Every key of `sets` (first occurrence wins), as one set of threshold 1.

    For checking statements and audit lines: one signed while its maintainer was in the
    set stays valid after a rotation retired them. Never for a directory's signatures.
    """
    keys: dict[str, MaintainerKey] = {}
    for maintainers in sets:
        for key in maintainers.keys:
            keys.setdefault(key.key_id, key)
    return MaintainerSet(1, tuple(keys.values()))


def _checked(maintainers: MaintainerSet) -> MaintainerSet:
    # Round-trip through the strict parser: never record a set nodes would refuse.
    try:
        return MaintainerSet.from_plain(maintainers.to_plain())
    except DirectoryError as exc:
        raise RegistryError(f"the new maintainer set would not be valid: {exc}") from None


# --- shell: the files in maintainers/ ----------------------------------------------


def read_pending(folder: Path) -> MaintainerSet | None:
    """The pending set, or None; RegistryError when the file is damaged."""
    path = folder / PENDING_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return read_set(path, data)


def write_pending(folder: Path, maintainers: MaintainerSet | None) -> None:
    """Record `maintainers` as the pending set (None: drop the pending change)."""
    path = folder / PENDING_FILE
    if maintainers is None:
        path.unlink(missing_ok=True)
        return
    write_atomic(path, json_file(maintainers.to_plain()), 0o644)


def retired_sets(folder: Path) -> list[MaintainerSet]:
    """The sets rotations retired, oldest first (maintainers.<n>.json)."""
    found = []
    for path in folder.iterdir():
        match = _RETIRED_FILE.fullmatch(path.name)
        if match is not None:
            found.append((int(match[1]), path))
    return [read_set(path, path.read_bytes()) for _, path in sorted(found)]


def retire(folder: Path, old: MaintainerSet) -> Path:
    """Keep `old` as the next maintainers.<n>.json (never overwritten); its path."""
    numbers = [
        int(m[1]) for p in folder.iterdir() if (m := _RETIRED_FILE.fullmatch(p.name)) is not None
    ]
    path = folder / f"maintainers.{max(numbers, default=0) + 1}.json"
    write_exclusive(path, json_file(old.to_plain()), 0o644)
    return path


def held_keys(folder: Path, sets: Iterable[MaintainerSet]) -> list[Ed25519PrivateKey]:
    """The private keys in `folder` (<key id>.key) of any key in `sets`; RegistryError
    when a file there is not the key its name says."""
    keys: dict[str, Ed25519PrivateKey] = {}
    for maintainers in sets:
        for entry in maintainers.keys:
            path = folder / f"{entry.key_id}.key"
            if entry.key_id in keys or not path.exists():
                continue  # another maintainer's key, held on their own machine
            key = load_signing_key(path.read_bytes(), str(path))
            if key.public_key().public_bytes_raw() != entry.public_key:
                raise RegistryError(f"{path} is not the key {entry.key_id} of {entry.name}")
            keys[entry.key_id] = key
    return list(keys.values())


def read_set(path: Path, data: bytes) -> MaintainerSet:
    """The maintainer set in `data`, read from `path`; RegistryError naming it."""
    try:
        return MaintainerSet.from_plain(json.loads(data))
    except (ValueError, DirectoryError) as exc:
        raise RegistryError(f"{path}: not a maintainer set: {exc}") from None


def json_file(value: object) -> bytes:
    """How the registry writes its JSON files (maintainers.json and the rest): readable."""
    return json.dumps(value, indent=2, sort_keys=True).encode("utf-8") + b"\n"
