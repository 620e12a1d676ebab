"""The shell of `ephyto node hsm-import`: put the node's current signing key into a PKCS#11
token, and point node.toml at it.

The key enrolled with the registry stays the same (partners verify the same public key),
only where it lives changes: the token stores it as sensitive and not extractable, so
from then on it signs there and cannot be read back. The key file is left where it is,
for the operator to move to an offline backup: deleting the only copy of a key is a
decision this command does not take.

Checked before anything is written: the token, the PIN and the label (no object of that
label yet); after the import, a signature made through the token must verify with the
enrolled public key before node.toml changes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

from node.fileio import write_atomic
from node.identity.config import CONFIG_FILE, dump_config, load_config
from node.identity.key_files import load_current_signing_key
from node.identity.keyring import signing_id
from node.identity.passphrase import node_passphrase, read_secret
from node.identity.pkcs11_signer import TokenKeyError, open_token_key, token_error_text
from node.identity.protection import Pkcs11KeyRef

ED25519_OID = "1.3.101.112"  # RFC 8410: CKA_EC_PARAMS of an Ed25519 key


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The key now in the token, and the file that still holds a copy of it."""

    signing_key_id: str
    key_file: Path


def import_signing_key(node_dir: Path, ref: Pkcs11KeyRef, *, cwd: Path) -> ImportResult:
    """Store the node's current signing key (its file, decrypted with the node's
    passphrase) in the token `ref` names, then record `ref` in node.toml.

    Raises ConfigError (node.toml, the key file, the passphrase), TokenKeyError (the
    module, token, PIN, a label in use, a token that cannot store an Ed25519 key);
    node.toml is unchanged unless the whole import succeeded.
    """
    config_path = node_dir / CONFIG_FILE
    config = load_config(config_path)
    if config.keys.signing_pkcs11 is not None:
        raise TokenKeyError(
            f"{config_path} names [keys.signing_pkcs11] already: the signing key is in a"
            " token; nothing changed"
        )
    key = load_current_signing_key(config, node_passphrase(config))
    pin = read_secret(ref.pin, prefix="pin", base=cwd)
    _store(ref, key.private_bytes_raw(), key.public_key().public_bytes_raw(), pin)
    recorded = _relative_to(ref, cwd)
    token_key = open_token_key(recorded, base=config.directory)
    if token_key.public_key() != key.public_key():
        raise TokenKeyError(f"{token_key.name}: the token's key is not the node's signing key")
    updated = replace(config, keys=replace(config.keys, signing_pkcs11=recorded))
    write_atomic(config_path, dump_config(updated).encode("utf-8"), 0o600)
    return ImportResult(signing_id(key), config.path(config.keys.signing))


def _store(ref: Pkcs11KeyRef, seed: bytes, public: bytes, pin: bytes) -> None:
    try:
        import pkcs11
        from pkcs11 import Attribute, KeyType, ObjectClass
        from pkcs11.util.ec import encode_named_curve_parameters
    except ImportError:
        raise TokenKeyError(
            "python-pkcs11 is not installed: pip install 'ephyto-exchange[hsm]'"
        ) from None
    name = f'PKCS#11 token "{ref.token}"'
    params = encode_named_curve_parameters(ED25519_OID)
    common = {
        Attribute.KEY_TYPE: KeyType.EC_EDWARDS,
        Attribute.TOKEN: True,
        Attribute.LABEL: ref.key_label,
        # CKA_ID pairs the private and public object for tools that match by id.
        Attribute.ID: hashlib.sha256(public).digest()[:8],
        Attribute.EC_PARAMS: params,
    }
    try:
        token = pkcs11.lib(ref.module).get_token(token_label=ref.token)
        with token.open(rw=True, user_pin=pin.decode("utf-8", "surrogateescape")) as session:
            taken = list(session.get_objects({Attribute.LABEL: ref.key_label}))
            if taken:
                raise TokenKeyError(
                    f'{name}: holds an object labelled "{ref.key_label}" already: choose'
                    " another --key-label; nothing changed"
                )
            session.create_object(
                {
                    **common,
                    Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,  # never readable from the token again
                    Attribute.EXTRACTABLE: False,
                    Attribute.SIGN: True,
                    Attribute.VALUE: seed,
                }
            )
            session.create_object(
                {
                    **common,
                    Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                    Attribute.VERIFY: True,
                    Attribute.EC_POINT: b"\x04\x20" + public,
                }
            )
    except pkcs11.NoSuchToken:
        raise TokenKeyError(f"{name}: no token with that label in {ref.module}") from None
    except pkcs11.PKCS11Error as e:
        raise TokenKeyError(f"{name}: cannot store the key: {token_error_text(e)}") from None


def _relative_to(ref: Pkcs11KeyRef, cwd: Path) -> Pkcs11KeyRef:
    """`ref` with a PIN file path as node.toml reads it (absolute: resolved from `cwd`)."""
    if ref.pin.kind != "file":
        return ref
    return replace(ref, pin=replace(ref.pin, value=str((cwd / ref.pin.value).resolve())))
