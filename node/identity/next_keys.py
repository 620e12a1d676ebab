"""The shell around the next keys: a running node reloads them, an operator promotes them.

- `reload_keys`: after a directory refresh, when the directory lists a key of ours the
  running node does not hold (the registry published a rotation made by `rotate-keys`
  while it ran), read node.toml and its key files again and hold what matches.
- `finish_rotation` (`ephyto node rotate-keys --finish`): once the overlap is over, move
  the next keys into the current slots, keep the old private keys in keys/retired/, and
  drop `next_*` from node.toml, so that the next `rotate-keys` can run.

The decisions are pure (node.identity.keyring); this module reads and writes the files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from node.directory import Directory, DirectoryError
from node.directory.model import KeyEntry
from node.errors import ConfigError, EphytoError
from node.fileio import write_atomic, write_exclusive
from node.identity.config import CONFIG_FILE, NodeConfig, dump_config, load_config
from node.identity.enrolment import format_time
from node.identity.keyring import (
    HeldKeys,
    Keyring,
    encryption_id,
    merged,
    rotation_stage,
    signing_id,
    unheld,
)
from node.identity.keys import KeyFileError, load_encryption_key, load_signing_key
from node.identity.store import NEXT_ENCRYPTION, NEXT_SIGNING, ROTATION_FILE

log = logging.getLogger(__name__)

RETIRED_DIR = "keys/retired"


class RotationFinishError(EphytoError):
    """`rotate-keys --finish` cannot run now; the message says why and what to do."""


def read_key_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise KeyFileError(f"{path}: cannot read the key file: {e.strerror or e}") from None


def load_held_keys(config: NodeConfig) -> HeldKeys:
    """The keys node.toml names (current, and next when a rotation is under way).

    Raises KeyFileError (a ConfigError) naming the file that is missing or wrong.
    """
    keys = config.keys
    signing_path, encryption_path = config.path(keys.signing), config.path(keys.encryption)
    signing = load_signing_key(read_key_file(signing_path), str(signing_path))
    encryption = load_encryption_key(read_key_file(encryption_path), str(encryption_path))
    next_signing = next_encryption = None
    if keys.next_signing is not None:
        path = config.path(keys.next_signing)
        next_signing = load_signing_key(read_key_file(path), str(path))
    if keys.next_encryption is not None:
        path = config.path(keys.next_encryption)
        next_encryption = load_encryption_key(read_key_file(path), str(path))
    return HeldKeys.of(signing, encryption, next_signing, next_encryption)


def reload_keys(
    keyring: Keyring, config_path: Path, country: str, directory: Directory, now: datetime
) -> bool:
    """Hold the keys node.toml names that `directory` lists for `country`, if it lists one
    the node lacks; True when the held keys changed.

    Runs after each directory refresh, never on a request: without a key to look for it
    reads nothing. Never raises: a running node logs what is wrong and carries on with
    the keys it has (a partner sealing to a key it lacks gets a refusal, and the sender
    retries, so the operator can still repair the files).
    """
    try:
        entry = directory.nppo(country)
    except DirectoryError:
        return False
    missing = unheld(entry.keys, keyring.held, now)
    if not missing:
        keyring.warned = ""
        return False
    try:
        loaded = load_held_keys(load_config(config_path))
    except (ConfigError, OSError) as e:
        _warn_once(keyring, missing, f"cannot read the keys named in node.toml: {e}")
        return False
    before = keyring.held
    after = merged(before, loaded, entry.keys, now)
    changed = after.ids != before.ids or (after.signing_id, after.encryption_id) != (
        before.signing_id,
        before.encryption_id,
    )
    if changed:
        keyring.held = after
        added = sorted(after.ids - before.ids)
        log.info(
            "directory version %d lists new keys of %s: loaded %s from %s without a restart"
            " (signing keys held: %s; encryption keys held: %s)",
            directory.version, country, ", ".join(added) or "none", config_path,
            ", ".join(sorted(after.signing)), ", ".join(sorted(after.encryption)),
        )  # fmt: skip
    if still := unheld(entry.keys, after, now):
        _warn_once(
            keyring,
            still,
            "node.toml names no key file with that public key (checked "
            + ", ".join(sorted(loaded.ids))
            + "): restore the key files of the rotation request the registry recorded"
            " (keys/*.next.key) and set [keys] next_signing, next_encryption in node.toml,"
            " or ask the registry maintainers which request they recorded",
        )
    else:
        keyring.warned = ""
    return changed


def _warn_once(keyring: Keyring, missing: Sequence[KeyEntry], why: str) -> None:
    message = (
        f"the directory lists key(s) {', '.join(sorted(k.key_id for k in missing))} of this"
        f" node that it does not hold, so partners may seal to a key it cannot open: {why}"
    )
    if message != keyring.warned:
        keyring.warned = message
        log.warning("%s", message)


# --- rotate-keys --finish ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FinishResult:
    """What `finish_rotation` did: the keys now current, and where the old ones are kept."""

    signing_key_id: str
    encryption_key_id: str
    retired: tuple[Path, ...]


def finish_rotation(node_dir: Path, directory: Directory, *, now: datetime) -> FinishResult:
    """Make the next keys the current ones, once `directory` (the node's trusted copy) no
    longer lists the old keys as valid.

    Raises RotationFinishError (nothing changed) when no rotation is pending, the registry
    has not published the next keys, the directory lists other keys, or the overlap is
    still running; KeyFileError when a key file is missing or wrong.

    Each step leaves a consistent node, and a run cut short is finished by running again:
    1. the old private keys are copied to keys/retired/ (new files, mode 0600);
    2. the next keys are written over the current key files (atomic replace);
    3. node.toml is rewritten without `next_*` (atomic replace);
    4. the next key files are removed, and rotation-request.json (copied to keys/retired/
       with the old keys: it names what they were retired for).
    """
    config_path = node_dir / CONFIG_FILE
    config = load_config(config_path)
    keys = config.keys
    if keys.next_signing is None or keys.next_encryption is None:
        return _leftovers(config)
    paths = {
        "signing": (config.path(keys.signing), config.path(keys.next_signing)),
        "encryption": (config.path(keys.encryption), config.path(keys.next_encryption)),
    }
    data = {kind: (read_key_file(a), read_key_file(b)) for kind, (a, b) in paths.items()}
    (sign_now, sign_next), (enc_now, enc_next) = paths["signing"], paths["encryption"]
    signing = [
        load_signing_key(data["signing"][0], str(sign_now)),
        load_signing_key(data["signing"][1], str(sign_next)),
    ]
    encryption = [
        load_encryption_key(data["encryption"][0], str(enc_now)),
        load_encryption_key(data["encryption"][1], str(enc_next)),
    ]
    ids = {
        "signing": (signing_id(signing[0]), signing_id(signing[1])),
        "encryption": (encryption_id(encryption[0]), encryption_id(encryption[1])),
    }
    # A kind whose current file already holds the next key was moved by a run cut short;
    # its old key is in keys/retired/ already.
    old_ids = {old for old, new in ids.values() if old != new}
    next_ids = {new for _, new in ids.values()}
    try:
        entry = directory.nppo(config.country)
    except DirectoryError as e:
        raise RotationFinishError(f"{e}: nothing to finish against; nothing changed") from None
    if old_ids:
        _check_due(config, entry.keys, old_ids, next_ids, directory.version, now)

    retired_dir = config.path(RETIRED_DIR)
    retired: list[Path] = []
    for kind, (old, new) in ids.items():
        if old == new:
            continue
        # The old private keys are kept, not deleted. Stored messages hold the opened
        # payload, so nothing stored needs the old encryption key; but an envelope sealed
        # to it before the rotation was published may still wait at the hub or in a
        # partner's retry queue, and only this key opens it. Deleting key material cannot
        # be undone: when to destroy retired keys is the NPPO's decision.
        retired_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = retired_dir / f"{kind}-{old}.key"
        _write_once(target, data[kind][0], 0o600)
        retired.append(target)
    # The request goes with them (it names the keys it retired), out of the way of the
    # next `rotate-keys`, which never overwrites a file.
    request = node_dir / ROTATION_FILE
    if request.is_file():
        retired_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_once(_retired_request(config, ids["signing"][1]), request.read_bytes(), 0o644)
    for kind, (old, new) in ids.items():
        if old != new:
            write_atomic(paths[kind][0], data[kind][1], 0o600)
    updated = replace(config, keys=replace(keys, next_signing=None, next_encryption=None))
    write_atomic(config_path, dump_config(updated).encode("utf-8"), 0o600)
    for _, next_path in paths.values():
        next_path.unlink(missing_ok=True)
    request.unlink(missing_ok=True)
    return FinishResult(ids["signing"][1], ids["encryption"][1], tuple(retired))


def _check_due(
    config: NodeConfig,
    keys: Sequence[KeyEntry],
    old_ids: set[str],
    next_ids: set[str],
    version: int,
    now: datetime,
) -> None:
    stage = rotation_stage(keys, old_ids, next_ids, now)
    unchanged = "; nothing changed"
    if stage.stage == "unpublished":
        raise RotationFinishError(
            f"directory version {version} does not list the next keys of {config.country}"
            f" ({', '.join(sorted(next_ids))}) yet: send {config.directory / ROTATION_FILE}"
            " to the registry maintainer (`ephyto registry rotate`), wait for the publish"
            " and the node's refresh, and finish after the overlap" + unchanged
        )
    if stage.stage == "mismatch":
        listed_text = ", ".join(f"{k.kind} {k.key_id}" for k in stage.foreign)
        raise RotationFinishError(
            f"directory version {version} lists {listed_text} for {config.country}, not the"
            f" next key files ({', '.join(sorted(next_ids))}): restore the next key files of"
            " the rotation request the registry recorded, or ask the maintainers" + unchanged
        )
    if stage.stage == "waiting":
        assert stage.new_from is not None
        raise RotationFinishError(
            f"the next keys are valid only from {format_time(stage.new_from)}: finish after"
            " the overlap that follows" + unchanged
        )
    if stage.stage == "overlap":
        assert stage.old_until is not None
        raise RotationFinishError(
            f"the overlap runs until {format_time(stage.old_until)}: partners may still seal"
            " to the old keys until then; run `ephyto node rotate-keys --finish` after that"
            + unchanged
        )


def _retired_request(config: NodeConfig, new_signing_id: str) -> Path:
    return config.path(RETIRED_DIR) / f"rotation-request-{new_signing_id}.json"


def _write_once(path: Path, data: bytes, mode: int) -> None:
    """A new file; one already there with the same bytes is a run cut short."""
    try:
        write_exclusive(path, data, mode)
    except FileExistsError:
        if path.is_symlink() or path.read_bytes() != data:
            raise RotationFinishError(
                f"{path} already exists with other content: move it away and run again"
            ) from None


def _leftovers(config: NodeConfig) -> FinishResult:
    """No rotation pending: remove the next key files a finish cut short after node.toml
    left behind (they hold the current keys), or say there is nothing to finish."""
    pairs = (
        (config.path(config.keys.signing), config.path(NEXT_SIGNING)),
        (config.path(config.keys.encryption), config.path(NEXT_ENCRYPTION)),
    )
    left = [n for c, n in pairs if n.exists() and _same_file_bytes(c, n)]
    held = load_held_keys(config)
    request = config.directory / ROTATION_FILE
    if request.exists() and _same_file_bytes(_retired_request(config, held.signing_id), request):
        left.append(request)
    if not left:
        raise RotationFinishError(
            f"{config.directory / CONFIG_FILE} names no next keys: no rotation to finish"
            " (start one with `ephyto node rotate-keys`)"
        )
    for path in left:
        os.unlink(path)
    return FinishResult(held.signing_id, held.encryption_id, ())


def _same_file_bytes(a: Path, b: Path) -> bool:
    try:
        return a.read_bytes() == b.read_bytes()
    except OSError:
        return False
