"""The shell around the next keys: a running node reloads them, an operator promotes them.

- `reload_keys`: after a directory refresh, when the directory lists a key of ours the
  running node does not hold (the registry published a rotation made by `rotate-keys`
  while it ran), read node.toml and its key files again and hold what matches.
- `reload_tls`: after every directory refresh, the same for the TLS key and certificate,
  and the choice of the one the node presents (it changes halfway through the overlap).
- `finish_rotation` (`ephyto node rotate-keys --finish`): once the overlap is over, move
  the next keys (and the next TLS key and certificate) into the current slots, keep the
  old private keys in keys/retired/, and drop `next_*` from node.toml, so that the next
  `rotate-keys` can run.

The decisions are pure (node.identity.keyring, node.identity.tls_choice); this module
reads and writes the files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from node.crypto.ids import tls_pin
from node.directory import Directory, DirectoryError
from node.directory.model import KeyEntry
from node.errors import ConfigError, EphytoError
from node.fileio import write_atomic, write_exclusive
from node.identity.config import CONFIG_FILE, NodeConfig, dump_config, load_config
from node.identity.enrolment import format_time
from node.identity.key_files import load_current_signing_key, read_key_file
from node.identity.keyring import (
    HeldKeys,
    Keyring,
    Listed,
    encryption_id,
    listed_name,
    merged,
    rotation_stage,
    signing_id,
    unheld,
)
from node.identity.keys import (
    KeyFileError,
    is_encrypted_pem,
    load_certificate,
    load_encryption_key,
    load_signing_key,
    load_tls_key,
)
from node.identity.passphrase import node_passphrase
from node.identity.store import (
    NEXT_ENCRYPTION,
    NEXT_SIGNING,
    NEXT_TLS_CERTIFICATE,
    NEXT_TLS_KEY,
    ROTATION_FILE,
)
from node.identity.tls_choice import HeldTls, TlsHolder, TlsIdentity, presented, unheld_pins

log = logging.getLogger(__name__)

RETIRED_DIR = "keys/retired"


class RotationFinishError(EphytoError):
    """`rotate-keys --finish` cannot run now; the message says why and what to do."""


def load_held_keys(
    config: NodeConfig, *, held: HeldKeys | None = None, passphrase: bytes | None = None
) -> HeldKeys:
    """The keys node.toml names (current, and next when a rotation is under way), key
    files decrypted with the passphrase of `[keys]` (read from its source unless given)
    and the signing key in a token when `[keys.signing_pkcs11]` names one (the token key
    of `held`, the keys a running node holds, is reused).

    Raises KeyFileError (a ConfigError) naming the file that is missing or wrong, and
    ConfigError for a passphrase or token that cannot be read.
    """
    keys = config.keys
    if passphrase is None:
        passphrase = node_passphrase(config)
    held_signing = None if held is None else held.signing[held.signing_id]
    signing = load_current_signing_key(config, passphrase, held=held_signing)
    encryption_path = config.path(keys.encryption)
    encryption = load_encryption_key(
        read_key_file(encryption_path), str(encryption_path), passphrase
    )
    next_signing = next_encryption = None
    if keys.next_signing is not None:
        path = config.path(keys.next_signing)
        next_signing = load_signing_key(read_key_file(path), str(path), passphrase)
    if keys.next_encryption is not None:
        path = config.path(keys.next_encryption)
        next_encryption = load_encryption_key(read_key_file(path), str(path), passphrase)
    return HeldKeys.of(signing, encryption, next_signing, next_encryption)


def tls_identity(
    certificate: Path,
    cert_data: bytes,
    key: Path,
    key_data: bytes,
    passphrase: bytes | None = None,
) -> TlsIdentity:
    """The identity in these file contents, the certificate checked to be the key's: a
    certificate for another key would fail every handshake, and name a pin partners
    would be told to trust for nothing. KeyFileError naming the files.

    The identity carries `passphrase` only when the key file is encrypted: `ssl` refuses
    a password for a plain key no more than cryptography does, but it needs none."""
    tls_key = load_tls_key(key_data, str(key), passphrase)
    cert = load_certificate(cert_data, str(certificate))
    if cert.public_key() != tls_key.public_key():
        raise KeyFileError(f"{certificate} is not the certificate of the TLS key {key}")
    password = passphrase if is_encrypted_pem(key_data) else None
    return TlsIdentity(certificate, key, tls_pin(cert), password)


def load_tls_identity(certificate: Path, key: Path, passphrase: bytes | None = None) -> TlsIdentity:
    """`tls_identity` of the two files; KeyFileError naming the one missing or wrong."""
    cert_data = read_key_file(certificate, "certificate")
    return tls_identity(certificate, cert_data, key, read_key_file(key), passphrase)


def load_held_tls(config: NodeConfig, passphrase: bytes | None = None) -> HeldTls:
    """The TLS identities node.toml names (current, and next while the TLS key rotates),
    the keys decrypted with `passphrase` (by default the one `[keys]` names).

    Raises KeyFileError (a ConfigError) naming the file that is missing or wrong, and
    ConfigError when node.toml names only one of next_tls_key and next_tls_certificate
    or its passphrase cannot be read.
    """
    if passphrase is None:
        passphrase = node_passphrase(config)
    return HeldTls(_current_tls(config, passphrase), _next_tls(config, passphrase))


def _current_tls(config: NodeConfig, passphrase: bytes | None) -> TlsIdentity:
    keys = config.keys
    return load_tls_identity(
        config.path(keys.tls_certificate), config.path(keys.tls_key), passphrase
    )


def _next_tls_paths(config: NodeConfig) -> tuple[Path, Path] | None:
    """The next TLS (certificate, key) node.toml names; None when it names neither;
    ConfigError when it names one without the other."""
    keys = config.keys
    if keys.next_tls_key is None and keys.next_tls_certificate is None:
        return None
    if keys.next_tls_key is None or keys.next_tls_certificate is None:
        raise ConfigError(
            f"{config.directory / CONFIG_FILE}: [keys] names one of next_tls_key and"
            " next_tls_certificate without the other: name both (a rotation is under way)"
            " or neither"
        )
    return config.path(keys.next_tls_certificate), config.path(keys.next_tls_key)


def _next_tls(config: NodeConfig, passphrase: bytes | None) -> TlsIdentity | None:
    paths = _next_tls_paths(config)
    return None if paths is None else load_tls_identity(*paths, passphrase)


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
        loaded = load_held_keys(load_config(config_path), held=keyring.held)
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
    _log_once(
        keyring,
        f"the directory lists key(s) {', '.join(sorted(k.key_id for k in missing))} of this"
        f" node that it does not hold, so partners may seal to a key it cannot open: {why}",
    )


def _log_once(holder: Keyring | TlsHolder, message: str) -> None:
    """Log `message` unless it is the last one logged for `holder`: the refresh runs every
    minute, the operator needs the line once per new situation."""
    if message != holder.warned:
        holder.warned = message
        log.warning("%s", message)


def reload_tls(
    holder: TlsHolder, config_path: Path, country: str, directory: Directory, now: datetime
) -> bool:
    """Read the TLS identities node.toml names while the TLS key rotates, and present the
    one `node.identity.tls_choice.presented` picks by `directory`; True when the presented
    identity changed.

    Runs after each directory refresh, never on a connection. It reads files while the
    node holds a next identity or the directory lists a pin of ours it lacks, and nothing
    otherwise: once a rotation is under way `rotate-keys --finish` may move the files
    while the node runs, and the node follows them to the current slots at the next
    refresh. Never raises: a file missing or wrong is logged (once) and the node goes on
    presenting what it presents, so the operator can repair the files.
    """
    try:
        entry = directory.nppo(country)
    except DirectoryError:
        return False
    held, problem = holder.held, ""
    if held.next is not None or unheld_pins(entry.tls_pins, held, now):
        held, problem = _reread_tls(held, config_path)
        if not problem and (missing := unheld_pins(entry.tls_pins, held, now)):
            problem = (
                f"the directory lists TLS pin(s) {', '.join(sorted(p.pin for p in missing))}"
                " of this node, which partners expect from halfway through the overlap, but"
                " node.toml names no TLS certificate with that pin: restore the next TLS key"
                " and certificate of the rotation request the registry recorded"
                " (keys/tls.next.key, keys/tls.next.crt) and set [keys] next_tls_key,"
                " next_tls_certificate in node.toml, or ask the registry maintainers which"
                " request they recorded"
            )
    before = holder.presented
    choice = presented(held, entry.tls_pins, now)
    holder.held = held
    if problem:
        _log_once(holder, f"{problem}; presenting {choice.certificate} (pin {choice.pin})")
    else:
        holder.warned = ""
    if choice == before:
        return False
    holder.presented = choice
    if choice.pin != before.pin:
        log.info(
            "directory version %d: %s now presents its TLS certificate %s (pin %s) instead of"
            " pin %s",
            directory.version, country, choice.certificate, choice.pin, before.pin,
        )  # fmt: skip
    return True


def _reread_tls(held: HeldTls, config_path: Path) -> tuple[HeldTls, str]:
    """The TLS identities node.toml names now, each loaded on its own, and what failed
    ("" when nothing did).

    A current identity that does not load leaves the one held (there is nothing better to
    present); a next one that does not load is dropped, so that the node never presents a
    certificate it cannot load, nor one that is not its key's.
    """
    cannot = "cannot read the TLS key and certificate named in node.toml: "
    try:
        config = load_config(config_path)
        passphrase = node_passphrase(config)
    except (ConfigError, OSError) as e:
        return held, cannot + str(e)
    problems = []
    try:
        current = _current_tls(config, passphrase)
    except ConfigError as e:
        current, problems = held.current, [str(e)]
    try:
        next_ = _next_tls(config, passphrase)
    except ConfigError as e:
        next_ = None
        problems.append(str(e))
    return HeldTls(current, next_), cannot + "; ".join(problems) if problems else ""


# --- rotate-keys --finish ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FinishResult:
    """What `finish_rotation` did: the keys now current, and where the old ones are kept."""

    signing_key_id: str
    encryption_key_id: str
    retired: tuple[Path, ...]
    # The TLS pin now current when the rotation moved the TLS key too; None: it stayed (a
    # rotation made before the TLS key rotated).
    tls_pin: str | None = None


@dataclass(frozen=True, slots=True)
class _Move:
    """One file of the rotation: its current slot, the next file, and both contents."""

    current: Path
    next: Path
    data: tuple[bytes, bytes]  # (current, next)
    mode: int
    # Its name in keys/retired/; None when the current slot holds the next content already
    # (moved by a run cut short, after its old content was kept there).
    retired_as: str | None


@dataclass(frozen=True, slots=True)
class _TlsRotation:
    """The TLS key and certificate of a rotation, as `finish_rotation` moves them."""

    old_pin: str | None  # None: the certificate was moved already
    new_pin: str
    moves: tuple[_Move, _Move]  # the key first, then the certificate


def finish_rotation(node_dir: Path, directory: Directory, *, now: datetime) -> FinishResult:
    """Make the next keys (and the next TLS key and certificate, when node.toml names
    them) the current ones, once `directory` (the node's trusted copy) no longer lists the
    old keys or the old TLS pin as valid.

    Raises RotationFinishError (nothing changed) when no rotation is pending, the registry
    has not published the next keys, the directory lists other keys, or the overlap is
    still running; KeyFileError when a key or certificate file is missing or wrong.

    Each step leaves a consistent node, and a run cut short is finished by running again:
    1. the old private keys (and the old TLS certificate) are copied to keys/retired/ (new
       files, mode 0600; 0644 for the certificate);
    2. the next files are written over the current ones (atomic replace; the TLS key
       before its certificate, so that a run cut short between the two still finds the
       old pin in the current certificate);
    3. node.toml is rewritten without `next_*` (atomic replace);
    4. the next files are removed, and rotation-request.json (copied to keys/retired/
       with the old keys: it names what they were retired for).
    A file whose current slot already holds the next content was moved by a run cut
    short: its old content is in keys/retired/ already, and the overlap was checked then.
    """
    config_path = node_dir / CONFIG_FILE
    config = load_config(config_path)
    keys = config.keys
    if keys.next_signing is None or keys.next_encryption is None:
        return _leftovers(config)
    if keys.signing_pkcs11 is not None:
        # Finishing moves key files into the current slots and keeps the old ones; the
        # token's key is no file, and which label comes next is the operator's choice.
        raise RotationFinishError(
            f"{config_path} names [keys.signing_pkcs11]: --finish moves key files. Remove"
            f" that table, put the current signing key file back at {config.path(keys.signing)}"
            " (from its offline backup), run --finish, then `ephyto node hsm-import` the new"
            ' key under a new label (docs/operations.md, "Protecting private keys");'
            " nothing changed"
        )
    passphrase = node_passphrase(config)
    paths = {
        "signing": (config.path(keys.signing), config.path(keys.next_signing)),
        "encryption": (config.path(keys.encryption), config.path(keys.next_encryption)),
    }
    data = {kind: (read_key_file(a), read_key_file(b)) for kind, (a, b) in paths.items()}
    (sign_now, sign_next), (enc_now, enc_next) = paths["signing"], paths["encryption"]
    signing = [
        load_signing_key(data["signing"][0], str(sign_now), passphrase),
        load_signing_key(data["signing"][1], str(sign_next), passphrase),
    ]
    encryption = [
        load_encryption_key(data["encryption"][0], str(enc_now), passphrase),
        load_encryption_key(data["encryption"][1], str(enc_next), passphrase),
    ]
    ids = {
        "signing": (signing_id(signing[0]), signing_id(signing[1])),
        "encryption": (encryption_id(encryption[0]), encryption_id(encryption[1])),
    }
    tls = _tls_rotation(config, passphrase)
    # A kind whose current file already holds the next key was moved by a run cut short;
    # its old key is in keys/retired/ already.
    old_ids = {old for old, new in ids.values() if old != new}
    next_ids = {new for _, new in ids.values()}
    try:
        entry = directory.nppo(config.country)
    except DirectoryError as e:
        raise RotationFinishError(f"{e}: nothing to finish against; nothing changed") from None
    # A rotation that leaves the TLS key alone is judged by the keys only: its one pin is
    # neither old nor next.
    listed: Sequence[Listed] = entry.keys
    if tls is not None:
        listed = (*entry.keys, *entry.tls_pins)
        next_ids.add(tls.new_pin)
        if tls.old_pin is not None and tls.old_pin != tls.new_pin:
            old_ids.add(tls.old_pin)
    if old_ids:
        _check_due(config, listed, old_ids, next_ids, directory.version, now)

    moves = [
        _Move(*paths[kind], data[kind], 0o600, None if old == new else f"{kind}-{old}.key")
        for kind, (old, new) in ids.items()
    ]
    if tls is not None:
        moves.extend(tls.moves)
    retired_dir = config.path(RETIRED_DIR)
    retired: list[Path] = []
    for move in moves:
        if move.retired_as is None:
            continue
        # The old private keys are kept, not deleted. Stored messages hold the opened
        # payload, so nothing stored needs the old encryption key; but an envelope sealed
        # to it before the rotation was published may still wait at the hub or in a
        # partner's retry queue, and only this key opens it. Deleting key material cannot
        # be undone: when to destroy retired keys is the NPPO's decision.
        retired_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = retired_dir / move.retired_as
        _write_once(target, move.data[0], move.mode)
        retired.append(target)
    # The request goes with them (it names the keys it retired), out of the way of the
    # next `rotate-keys`, which never overwrites a file.
    request = node_dir / ROTATION_FILE
    if request.is_file():
        retired_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_once(_retired_request(config, ids["signing"][1]), request.read_bytes(), 0o644)
    for move in moves:
        if move.retired_as is not None:
            write_atomic(move.current, move.data[1], move.mode)
    updated = replace(
        config,
        keys=replace(
            keys,
            next_signing=None,
            next_encryption=None,
            next_tls_key=None,
            next_tls_certificate=None,
        ),
    )
    write_atomic(config_path, dump_config(updated).encode("utf-8"), 0o600)
    for move in moves:
        move.next.unlink(missing_ok=True)
    request.unlink(missing_ok=True)
    return FinishResult(
        ids["signing"][1],
        ids["encryption"][1],
        tuple(retired),
        None if tls is None else tls.new_pin,
    )


def _tls_rotation(config: NodeConfig, passphrase: bytes | None) -> _TlsRotation | None:
    """The TLS files to move, when node.toml names a next TLS key and certificate (None:
    a rotation made before the TLS key rotated). KeyFileError for a file missing or
    wrong, RotationFinishError (nothing changed) for a state no finish leaves."""
    keys = config.keys
    try:
        paths = _next_tls_paths(config)
    except ConfigError as e:
        raise RotationFinishError(f"{e}; nothing changed") from None
    if paths is None:
        return None
    key = config.path(keys.tls_key), paths[1]
    cert = config.path(keys.tls_certificate), paths[0]
    key_data = read_key_file(key[0]), read_key_file(key[1])
    cert_data = read_key_file(cert[0], "certificate"), read_key_file(cert[1], "certificate")
    new_pin = tls_identity(cert[1], cert_data[1], key[1], key_data[1], passphrase).pin
    key_moved, cert_moved = key_data[0] == key_data[1], cert_data[0] == cert_data[1]
    if cert_moved and not key_moved:
        raise RotationFinishError(
            f"{cert[0]} holds the next TLS certificate but {key[0]} is not the next TLS key"
            f" ({key[1]}): no finish leaves that (it moves the key first); restore {key[0]}"
            " from backup and run again; nothing changed"
        )
    if cert_moved:
        return _TlsRotation(None, new_pin, (
            _Move(*key, key_data, 0o600, None), _Move(*cert, cert_data, 0o644, None),
        ))  # fmt: skip
    if key_moved:  # cut short between the key and its certificate
        old_pin = tls_pin(load_certificate(cert_data[0], str(cert[0])))
    else:
        old_pin = tls_identity(cert[0], cert_data[0], key[0], key_data[0], passphrase).pin
    name = "tls-" + old_pin.removeprefix("sha256:")
    return _TlsRotation(old_pin, new_pin, (
        _Move(*key, key_data, 0o600, None if key_moved else f"{name}.key"),
        _Move(*cert, cert_data, 0o644, f"{name}.crt"),
    ))  # fmt: skip


def _check_due(
    config: NodeConfig,
    keys: Sequence[Listed],
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
        listed_text = ", ".join(listed_name(k) for k in stage.foreign)
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
            " to the old keys (and know this node by its old TLS pin) until then; run"
            " `ephyto node rotate-keys --finish` after that" + unchanged
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
    keys = config.keys
    pairs = (
        (config.path(keys.signing), config.path(NEXT_SIGNING)),
        (config.path(keys.encryption), config.path(NEXT_ENCRYPTION)),
        (config.path(keys.tls_key), config.path(NEXT_TLS_KEY)),
        (config.path(keys.tls_certificate), config.path(NEXT_TLS_CERTIFICATE)),
    )
    left = [n for c, n in pairs if n.exists() and _same_file_bytes(c, n)]
    passphrase = node_passphrase(config)
    held = load_held_keys(config, passphrase=passphrase)
    request = config.directory / ROTATION_FILE
    if request.exists() and _same_file_bytes(_retired_request(config, held.signing_id), request):
        left.append(request)
    if not left:
        raise RotationFinishError(
            f"{config.directory / CONFIG_FILE} names no next keys: no rotation to finish"
            " (start one with `ephyto node rotate-keys`)"
        )
    tls = None
    if config.path(NEXT_TLS_CERTIFICATE) in left:  # the TLS key rotated with the others
        tls = load_tls_identity(pairs[3][0], pairs[2][0], passphrase).pin
    for path in left:
        os.unlink(path)
    return FinishResult(held.signing_id, held.encryption_id, (), tls)


def _same_file_bytes(a: Path, b: Path) -> bool:
    try:
        return a.read_bytes() == b.read_bytes()
    except OSError:
        return False
