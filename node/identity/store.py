"""The shell of `ephyto node init`: make an identity in memory, then write it to disk.

Everything is built and checked before the first file is written, so bad input leaves
no trace. Private files are created with O_EXCL and mode 0600 in the same system call,
so they are never readable by others, not even for an instant, and never overwritten.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from node.crypto.ids import tls_pin
from node.errors import EphytoError
from node.fileio import write_atomic, write_exclusive
from node.identity.config import CONFIG_FILE, dump_config, load_config, new_config
from node.identity.endpoint_change import build_endpoint_change
from node.identity.enrolment import build_request, check_country, check_name, parse_endpoint
from node.identity.key_files import load_signing_for_request
from node.identity.keys import (
    build_tls_certificate,
    certificate_pem,
    generate_keys,
    private_key_pem,
)
from node.identity.passphrase import node_passphrase
from node.identity.rotation import build_rotation_request

REQUEST_FILE = "enrolment-request.json"
DEFAULT_VALIDITY = timedelta(days=730)


class IdentityExistsError(EphytoError):
    """The directory already holds (part of) a node identity: it is never overwritten."""


@dataclass(frozen=True, slots=True)
class InitResult:
    """What `init_node` wrote, and the identifiers an operator checks with the registry."""

    directory: Path
    config: Path
    request: Path
    private_keys: tuple[Path, ...]
    certificate: Path
    signing_key_id: str
    encryption_key_id: str
    tls_pin: str


def init_node(
    directory: Path,
    *,
    country: str,
    name: str,
    endpoint: str | None,
    now: datetime,
    validity: timedelta = DEFAULT_VALIDITY,
) -> InitResult:
    """Create a node identity in `directory`.

    Raises InputError for bad values (nothing written), IdentityExistsError if any file
    of an identity is already there, OSError if the directory cannot be written.
    """
    country, name = check_country(country), check_name(name)
    ep = parse_endpoint(endpoint) if endpoint is not None else None
    start = now.replace(microsecond=0)  # X.509 and the request both count in seconds
    end = start + validity
    keys = generate_keys()
    certificate = build_tls_certificate(
        keys.tls,
        country=country,
        name=name,
        host=ep.host if ep else None,
        not_before=start,
        not_after=end,
    )
    request = build_request(
        keys,
        certificate,
        country=country,
        name=name,
        endpoint=ep.url if ep else None,
        created=start,
        valid_from=start,
        valid_until=end,
    )
    config = new_config(
        directory,
        country=country,
        name=name,
        endpoint=ep.url if ep else None,
        api_token=secrets.token_urlsafe(32),
    )
    # The config goes last: its presence marks a complete identity.
    files: list[tuple[Path, bytes, int]] = [
        (config.path(config.keys.signing), private_key_pem(keys.signing), 0o600),
        (config.path(config.keys.encryption), private_key_pem(keys.encryption), 0o600),
        (config.path(config.keys.tls_key), private_key_pem(keys.tls), 0o600),
        (config.path(config.keys.tls_certificate), certificate_pem(certificate), 0o644),
        (directory / REQUEST_FILE, request, 0o644),
        (directory / CONFIG_FILE, dump_config(config).encode("utf-8"), 0o600),
    ]
    if existing := [path for path, _, _ in files if path.exists() or path.is_symlink()]:
        raise IdentityExistsError(
            f"{existing[0]} already exists: {directory} holds a node identity, "
            "which is never overwritten (choose another --dir)"
        )
    write_all(directory, files)
    return InitResult(
        directory=directory,
        config=directory / CONFIG_FILE,
        request=directory / REQUEST_FILE,
        private_keys=tuple(path for path, _, _ in files[:3]),
        certificate=files[3][0],
        signing_key_id=keys.signing_key_id,
        encryption_key_id=keys.encryption_key_id,
        tls_pin=tls_pin(certificate),
    )


def write_all(directory: Path, files: list[tuple[Path, bytes, int]]) -> None:
    """Create every file (never overwriting one), or none of them."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        for path, data, mode in files:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                write_exclusive(path, data, mode)
            except FileExistsError:
                raise IdentityExistsError(
                    f"{path} appeared while writing: another init is running here"
                ) from None
            written.append(path)
    except BaseException:
        # Half an identity is worse than none: remove what this call wrote, so the
        # operator can simply run init again.
        for path in written:
            path.unlink(missing_ok=True)
        raise


ROTATION_FILE = "rotation-request.json"
ENDPOINT_CHANGE_FILE = "endpoint-change-request.json"
NEXT_SIGNING = "keys/signing.next.key"
NEXT_ENCRYPTION = "keys/encryption.next.key"
NEXT_TLS_KEY = "keys/tls.next.key"
NEXT_TLS_CERTIFICATE = "keys/tls.next.crt"


@dataclass(frozen=True, slots=True)
class RotateResult:
    """What `rotate_keys` wrote, and the new key ids an operator confirms with the registry."""

    request: Path
    private_keys: tuple[Path, ...]
    signing_key_id: str
    encryption_key_id: str
    tls_pin: str
    valid_until: datetime


def request_endpoint_change(directory: Path, endpoint: str | None, *, now: datetime) -> Path:
    """Write endpoint-change-request.json moving the node to `endpoint` (None: hub only),
    signed by its current signing key; replaces an earlier request file (a request only
    asks, and the registry refuses one older than the last it recorded). Returns its path.
    ConfigError/KeyFileError for a missing or broken identity, InputError for a bad URL."""
    config = load_config(directory / CONFIG_FILE)
    current = load_signing_for_request(config)  # a key file (maybe encrypted) or a token's
    request = build_endpoint_change(
        current, country=config.country, endpoint=endpoint, created=now.replace(microsecond=0)
    )
    path = directory / ENDPOINT_CHANGE_FILE
    write_atomic(path, request, 0o644)
    return path


def rotate_keys(
    directory: Path, *, now: datetime, validity: timedelta = DEFAULT_VALIDITY
) -> RotateResult:
    """Make the node's next signing, encryption and TLS keys (with the TLS key's
    self-signed certificate) and the rotation request, the new keys valid for `validity`.

    The request is signed by the current signing key. The node keeps using its current
    keys; node.toml gains `[keys] next_signing`, `next_encryption`, `next_tls_key` and
    `next_tls_certificate`. Raises IdentityExistsError when a rotation is already pending
    (nothing is overwritten), ConfigError for a missing or broken identity.
    """
    config_path = directory / CONFIG_FILE
    config = load_config(config_path)
    pending = (config.keys.next_signing, config.keys.next_encryption, config.keys.next_tls_key)
    if any(path is not None for path in pending):
        raise IdentityExistsError(
            f"{config_path} already names next keys: a rotation is pending"
            " (after the overlap, `ephyto node rotate-keys --finish` ends it; then start"
            " another)"
        )
    current = load_signing_for_request(config)  # a key file (maybe encrypted) or a token's
    # New key files are encrypted like the others when node.toml names a passphrase.
    passphrase = node_passphrase(config)
    start = now.replace(microsecond=0)
    end = start + validity
    keys = generate_keys()
    certificate = build_tls_certificate(
        keys.tls,
        country=config.country,
        name=config.name,
        host=config.endpoint.host if config.endpoint else None,
        not_before=start,
        not_after=end,
    )
    request = build_rotation_request(
        current, keys, certificate, country=config.country, created=start, valid_until=end
    )
    files: list[tuple[Path, bytes, int]] = [
        (config.path(NEXT_SIGNING), private_key_pem(keys.signing, passphrase), 0o600),
        (config.path(NEXT_ENCRYPTION), private_key_pem(keys.encryption, passphrase), 0o600),
        (config.path(NEXT_TLS_KEY), private_key_pem(keys.tls, passphrase), 0o600),
        (config.path(NEXT_TLS_CERTIFICATE), certificate_pem(certificate), 0o644),
        (directory / ROTATION_FILE, request, 0o644),
    ]
    if existing := [path for path, _, _ in files if path.exists() or path.is_symlink()]:
        raise IdentityExistsError(f"{existing[0]} already exists: it is never overwritten")
    write_all(directory, files)
    updated = replace(
        config,
        keys=replace(
            config.keys,
            next_signing=NEXT_SIGNING,
            next_encryption=NEXT_ENCRYPTION,
            next_tls_key=NEXT_TLS_KEY,
            next_tls_certificate=NEXT_TLS_CERTIFICATE,
        ),
    )
    try:
        write_atomic(config_path, dump_config(updated).encode("utf-8"), 0o600)
    except BaseException:
        for path, _, _ in files:
            path.unlink(missing_ok=True)
        raise
    return RotateResult(
        request=directory / ROTATION_FILE,
        private_keys=(files[0][0], files[1][0], files[2][0]),
        signing_key_id=keys.signing_key_id,
        encryption_key_id=keys.encryption_key_id,
        tls_pin=tls_pin(certificate),
        valid_until=end,
    )
