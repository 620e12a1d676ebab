"""Keys at rest: the `[keys]` passphrase and PKCS#11 settings, reading a passphrase from
its source, and encrypted key files (node.identity.protection, .passphrase, .keys)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from node.errors import ConfigError
from node.identity.config import dump_config, new_config, parse_config
from node.identity.keys import (
    KeyFileError,
    encrypted_pem,
    generate_keys,
    is_encrypted_pem,
    load_encryption_key,
    load_signing_key,
    load_tls_key,
    private_key_pem,
)
from node.identity.passphrase import SecretSourceError, read_secret
from node.identity.protection import Pkcs11KeyRef, SecretSource

BASE = """version = 1
country = "NL"
name = "NVWA"
api_token = "{token}"
database_url = "sqlite+aiosqlite:///n.db"

[listen]
host = "127.0.0.1"
port = 9443

[keys]
signing = "keys/signing.key"
encryption = "keys/encryption.key"
tls_key = "keys/tls.key"
tls_certificate = "keys/tls.crt"
""".format(token="t" * 43)


def parse(extra: str, tmp_path: Path) -> Pkcs11KeyRef | SecretSource | None:
    config = parse_config(BASE + extra, source="n.toml", directory=tmp_path)
    return config.keys.signing_pkcs11 or config.keys.passphrase


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('passphrase_file = "/etc/ephyto/pass"', SecretSource("file", "/etc/ephyto/pass")),
        ('passphrase_env = "EPHYTO_KEY_PASSPHRASE"', SecretSource("env", "EPHYTO_KEY_PASSPHRASE")),
        ('passphrase_credential = "ephyto-keys"', SecretSource("credential", "ephyto-keys")),
    ],
)  # fmt: skip
def test_each_passphrase_source_parses_and_round_trips(
    tmp_path: Path, line: str, expected: SecretSource
) -> None:
    config = parse_config(BASE + line + "\n", source="n.toml", directory=tmp_path)
    assert config.keys.passphrase == expected
    again = parse_config(dump_config(config), source="n.toml", directory=tmp_path)
    assert again == config


def test_no_passphrase_is_the_default_and_dumps_nothing(tmp_path: Path) -> None:
    config = new_config(tmp_path, country="NL", name="NVWA", endpoint=None, api_token="t" * 43)
    assert config.keys.passphrase is None and config.keys.signing_pkcs11 is None
    keys = dump_config(config).split("[keys]")[1].split("[registry]")[0]
    assert "passphrase" not in keys and "pkcs11" not in keys


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('passphrase_file = "p"\npassphrase_env = "X"\n',
         r"keys\.passphrase_file and passphrase_env: name one source"),
        ('passphrase_env = "1BAD NAME"\n', r"keys\.passphrase_env: '1BAD NAME' is not an env"),
        ('passphrase_credential = "../etc/shadow"\n', r"is not a systemd credential name"),
        ('passphrase_credential = ".."\n', r"is not a systemd credential name"),
        ('passphrase_file = ""\n', r"keys\.passphrase_file: expected a file path"),
        ("passphrase_env = 3\n", r"keys\.passphrase_env: expected a string"),
        ('passphrase = "hunter2"\n', r"keys\.passphrase: unknown key"),
        ('[keys.signing_pkcs11]\nmodule = "/m.so"\ntoken = "t"\nkey_label = "k"\n',
         r"keys\.signing_pkcs11\.pin_file, pin_env or pin_credential: missing"),
        ('[keys.signing_pkcs11]\nmodule = "/m.so"\ntoken = ""\nkey_label = "k"\npin_env = "P"\n',
         r"keys\.signing_pkcs11\.token: must not be empty"),
        ('[keys.signing_pkcs11]\nmodule = "/m.so"\ntoken = "t"\npin_env = "P"\n',
         r"keys\.signing_pkcs11\.key_label: missing"),
        ('[keys.signing_pkcs11]\nmodule = "/m.so"\ntoken = "t"\nkey_label = "k"\npin_env = "P"\n'
         'pin = "1234"\n', r"keys\.signing_pkcs11\.pin: unknown key"),
        ('signing_pkcs11 = "yes"\n', r"keys\.signing_pkcs11: expected a table"),
    ],
)  # fmt: skip
def test_bad_protection_settings_are_config_errors_naming_the_key(
    tmp_path: Path, extra: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(extra, tmp_path)


def test_pkcs11_table_parses_and_round_trips(tmp_path: Path) -> None:
    extra = (
        '[keys.signing_pkcs11]\nmodule = "/usr/lib/softhsm/libsofthsm2.so"\ntoken = "NL"\n'
        'key_label = "nl-signing"\npin_credential = "hsm-pin"\n'
    )
    config = parse_config(BASE + extra, source="n.toml", directory=tmp_path)
    assert config.keys.signing_pkcs11 == Pkcs11KeyRef(
        "/usr/lib/softhsm/libsofthsm2.so", "NL", "nl-signing", SecretSource("credential", "hsm-pin")
    )
    assert parse_config(dump_config(config), source="n.toml", directory=tmp_path) == config


# --- reading a secret --------------------------------------------------------------------


def test_a_passphrase_file_is_read_without_its_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "p").write_bytes(b"correct horse\n")
    assert read_secret(SecretSource("file", "p"), prefix="passphrase", base=tmp_path) == (
        b"correct horse"
    )
    (tmp_path / "q").write_bytes(b"  spaces kept  \r\n")
    assert read_secret(SecretSource("file", str(tmp_path / "q")), prefix="x", base=Path("/")) == (
        b"  spaces kept  "
    )


def test_env_and_credential_sources_read_what_they_name(tmp_path: Path) -> None:
    env = {"KEYPASS": "s3cret"}
    assert read_secret(SecretSource("env", "KEYPASS"), prefix="p", base=tmp_path, environ=env) == (
        b"s3cret"
    )
    (tmp_path / "ephyto-keys").write_bytes(b"from systemd")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    source = SecretSource("credential", "ephyto-keys")
    assert read_secret(source, prefix="p", base=Path("/"), environ=env) == b"from systemd"


@pytest.mark.parametrize(
    ("source", "environ", "message"),
    [
        (SecretSource("env", "NOPE"), {}, r'passphrase_env "NOPE": the environment variable NOPE'),
        (SecretSource("env", "EMPTY"), {"EMPTY": ""}, r'passphrase_env "EMPTY": the passphrase is'),
        (SecretSource("credential", "c"), {}, r"CREDENTIALS_DIRECTORY is not set: systemd sets it"),
        (SecretSource("credential", "absent"), {"CREDENTIALS_DIRECTORY": "/nonexistent"},
         r'passphrase_credential "absent": cannot read /nonexistent/absent'),
        (SecretSource("file", "missing"), {}, r'passphrase_file "missing": cannot read'),
        (SecretSource("file", "empty"), {}, r"the passphrase is empty"),
        (SecretSource("file", "newline"), {}, r"the passphrase is empty"),
        (SecretSource("file", "big"), {}, r"holds more than 4096 bytes: not a passphrase"),
        (SecretSource("file", "folder"), {}, r'passphrase_file "folder": cannot read'),
    ],
)  # fmt: skip
def test_a_secret_that_cannot_be_read_is_a_one_line_error_without_the_secret(
    tmp_path: Path, source: SecretSource, environ: dict[str, str], message: str
) -> None:
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "newline").write_bytes(b"\n")
    (tmp_path / "big").write_bytes(b"k" * 5000)
    (tmp_path / "folder").mkdir()
    with pytest.raises(SecretSourceError, match=message) as caught:
        read_secret(source, prefix="passphrase", base=tmp_path, environ=environ)
    assert "\n" not in str(caught.value)
    assert "kkkk" not in str(caught.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_an_unreadable_passphrase_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p"
    path.write_bytes(b"x")
    path.chmod(0)
    with pytest.raises(SecretSourceError, match="Permission denied"):
        read_secret(SecretSource("file", "p"), prefix="passphrase", base=tmp_path)


# --- encrypted key files -----------------------------------------------------------------


def test_every_kind_of_key_loads_encrypted_and_plain() -> None:
    keys = generate_keys()
    secret = b"correct horse battery staple"
    signing = private_key_pem(keys.signing, secret)
    assert signing.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert is_encrypted_pem(signing) and not is_encrypted_pem(private_key_pem(keys.signing))
    assert load_signing_key(signing, "s", secret).public_key() == keys.signing.public_key()
    encryption = private_key_pem(keys.encryption, secret)
    assert load_encryption_key(encryption, "e", secret).public_key() == (
        keys.encryption.public_key()
    )
    tls = private_key_pem(keys.tls, secret)
    assert load_tls_key(tls, "t", secret).public_key() == keys.tls.public_key()
    # A plain key beside a configured passphrase still loads: conversion may be partial.
    assert load_tls_key(private_key_pem(keys.tls), "t", secret).public_key() == (
        keys.tls.public_key()
    )
    assert load_signing_key(encrypted_pem(private_key_pem(keys.signing), "s", secret), "s", secret)


def test_a_wrong_or_missing_passphrase_names_the_file() -> None:
    keys = generate_keys()
    pem = private_key_pem(keys.signing, b"right")
    with pytest.raises(KeyFileError, match=r"^keys/signing\.key: the passphrase does not decrypt"):
        load_signing_key(pem, "keys/signing.key", b"wrong")
    with pytest.raises(
        KeyFileError, match=r"^keys/signing\.key: the key is encrypted, but node\.toml names no"
    ):
        load_signing_key(pem, "keys/signing.key")
    with pytest.raises(KeyFileError, match=r"^e: not an X25519 private key$"):
        load_encryption_key(pem, "e", b"right")
    with pytest.raises(KeyFileError, match=r"^g: not a PEM private key$"):
        load_signing_key(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\ngarbage\n", "g", b"x")
    with pytest.raises(ValueError, match="empty passphrase"):
        private_key_pem(keys.signing, b"")
    with pytest.raises(KeyFileError, match=r"^c: the key is encrypted"):
        encrypted_pem(pem, "c", b"again")  # encrypted already: not a plain key to convert
