"""`ephyto node protect-keys`, as an operator runs it: the node's key files encrypted in
place, node.toml naming the passphrase source, and the node's own loaders reading them;
hostile input refused in one line, changing nothing."""

from __future__ import annotations

import shutil
import ssl
import stat
from pathlib import Path

import pytest

from node.errors import ConfigError
from node.identity.config import load_config
from node.identity.key_files import plain_key_files, warn_plain_keys
from node.identity.keys import is_encrypted_pem, load_signing_key
from node.identity.next_keys import load_held_keys, load_held_tls
from node.identity.protection import SecretSource
from node.identity.rotation import verify_rotation_request
from node.transport.client import pinned_context
from tests.ephyto_cli import ephyto, ok, refused

KEY_FILES = ("signing.key", "encryption.key", "tls.key")
NEXT_FILES = ("signing.next.key", "encryption.next.key", "tls.next.key")


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `ephyto node init` for the module; each test works on a copy of it."""
    node_dir = tmp_path_factory.mktemp("template") / "n"
    ok("node", "init", "--country", "NL", "--name", "NVWA", "--dir", node_dir)
    return node_dir


@pytest.fixture
def node_dir(made: Path, tmp_path: Path) -> Path:
    """A fresh node directory (keys 0600, node.toml naming its own database)."""
    copy = tmp_path / "n"
    shutil.copytree(made, copy)
    config = (copy / "node.toml").read_text().replace(str(made.resolve()), str(copy.resolve()))
    (copy / "node.toml").write_text(config)
    return copy


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_protect_keys_encrypts_every_key_and_the_node_reads_them(
    node_dir: Path, tmp_path: Path
) -> None:
    ok("node", "rotate-keys", "--dir", node_dir)  # next keys too
    before = load_held_keys(load_config(node_dir / "node.toml"))
    secret = tmp_path / "secret"  # outside the node directory, as an operator keeps it
    secret.write_bytes(b"correct horse battery staple\n")

    out = ok("node", "protect-keys", "--dir", node_dir, "--passphrase-file", secret)

    for name in (*KEY_FILES, *NEXT_FILES):
        path = node_dir / "keys" / name
        assert f"encrypted          {path}" in out
        assert is_encrypted_pem(path.read_bytes()), name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list((node_dir / "keys").glob(".*tmp"))  # no temporary file left behind
    config = load_config(node_dir / "node.toml")
    assert config.keys.passphrase == SecretSource("file", str(secret.resolve()))
    assert "inside the node directory" not in out
    after = load_held_keys(config)
    assert (after.signing_id, after.encryption_id, after.ids) == (
        before.signing_id, before.encryption_id, before.ids,
    )  # fmt: skip
    assert plain_key_files(config) == ()
    tls = load_held_tls(config)
    assert tls.current.password == b"correct horse battery staple"
    assert tls.next is not None and tls.next.password == tls.current.password
    pinned_context(frozenset({tls.current.pin}), tls.current.certificate, tls.current.key,
                   tls.current.password)  # fmt: skip
    with pytest.raises(ConfigError, match="cannot load the node's TLS certificate"):
        pinned_context(frozenset({"x"}), tls.current.certificate, tls.current.key)

    files = snapshot(node_dir)
    again = ok("node", "protect-keys", "--dir", node_dir, "--passphrase-file", secret)
    assert again.count("already encrypted") == 6 and "  encrypted " not in again
    assert "names [keys] passphrase_file" in again and "already" in again
    assert snapshot(node_dir) == files


def test_a_credential_source_reads_the_systemd_credentials_directory(
    node_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "ephyto-keys").write_bytes(b"from LoadCredential")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    ok("node", "protect-keys", "--dir", node_dir, "--passphrase-credential", "ephyto-keys")
    config = load_config(node_dir / "node.toml")
    assert config.keys.passphrase == SecretSource("credential", "ephyto-keys")
    load_held_keys(config)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    with pytest.raises(ConfigError, match="CREDENTIALS_DIRECTORY is not set"):
        load_held_keys(config)


def test_rotate_keys_and_change_endpoint_use_and_keep_the_encryption(
    node_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EPHYTO_TEST_PASSPHRASE", "s3cret passphrase")
    ok("node", "protect-keys", "--dir", node_dir, "--passphrase-env", "EPHYTO_TEST_PASSPHRASE")

    ok("node", "rotate-keys", "--dir", node_dir)
    for name in NEXT_FILES:
        assert is_encrypted_pem((node_dir / "keys" / name).read_bytes()), name
    current = load_signing_key(
        (node_dir / "keys" / "signing.key").read_bytes(), "s", b"s3cret passphrase"
    )
    request = (node_dir / "rotation-request.json").read_bytes()
    verify_rotation_request(request, current.public_key().public_bytes_raw())
    ok("node", "change-endpoint", "--dir", node_dir, "--hub-only")

    monkeypatch.delenv("EPHYTO_TEST_PASSPHRASE")
    message = refused("node", "change-endpoint", "--dir", node_dir, "--hub-only")
    assert "EPHYTO_TEST_PASSPHRASE is not set" in message
    monkeypatch.setenv("EPHYTO_TEST_PASSPHRASE", "wrong")
    message = refused("node", "change-endpoint", "--dir", node_dir, "--hub-only")
    assert f"{node_dir / 'keys' / 'signing.key'}: the passphrase does not decrypt" in message


def test_a_plain_key_beside_a_passphrase_loads_and_is_named_in_one_warning(
    node_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plain = (node_dir / "keys" / "tls.key").read_bytes()
    secret = tmp_path / "secret"
    secret.write_bytes(b"Zq9-never-logged")
    ok("node", "protect-keys", "--dir", node_dir, "--passphrase-file", secret)
    (node_dir / "keys" / "tls.key").write_bytes(plain)  # a key restored from an old backup
    config = load_config(node_dir / "node.toml")
    assert load_held_tls(config).current.password is None  # plain: ssl needs no password
    load_held_keys(config)
    with caplog.at_level("WARNING"):
        assert warn_plain_keys(config) == (node_dir / "keys" / "tls.key",)
    [record] = caplog.records
    assert record.levelname == "WARNING"
    assert str(node_dir / "keys" / "tls.key") in record.getMessage()
    assert "Zq9" not in record.getMessage()

    out = ok("node", "protect-keys", "--dir", node_dir, "--passphrase-file", secret)
    assert f"encrypted          {node_dir / 'keys' / 'tls.key'}" in out
    assert out.count("already encrypted") == 2


def test_the_key_is_refused_without_its_passphrase(node_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"pass")
    ok("node", "protect-keys", "--dir", node_dir, "--passphrase-file", secret)
    secret.write_bytes(b"another")
    with pytest.raises(ConfigError, match=r"signing\.key: the passphrase does not decrypt"):
        load_held_keys(load_config(node_dir / "node.toml"))
    secret.unlink()
    with pytest.raises(ConfigError, match=r"passphrase_file \".*secret\": cannot read"):
        load_held_keys(load_config(node_dir / "node.toml"))


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no node", "no such file (run `ephyto node init` first)"),
        ("key missing", "encryption.key: cannot read the key file"),
        ("empty passphrase", "the passphrase is empty"),
        ("newline only", "the passphrase is empty"),
        ("passphrase file missing", "cannot read"),
        ("passphrase file is a folder", "cannot read"),
        ("env unset", "the environment variable EPHYTO_UNSET_FOR_TEST is not set"),
        ("bad env name", "'NOT A NAME' is not an environment variable name"),
        ("credential outside systemd", "CREDENTIALS_DIRECTORY is not set"),
        ("credential with a slash", "'../x' is not a systemd credential name"),
        ("another passphrase", "the passphrase does not decrypt the key"),
        ("not a key", "signing.key: not a PEM private key"),
    ],
)
def test_hostile_input_is_refused_in_one_line_and_changes_nothing(
    node_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, expected: str
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.delenv("EPHYTO_UNSET_FOR_TEST", raising=False)
    secret = tmp_path / "secret"
    secret.write_bytes(b"the passphrase")
    source = ["--passphrase-file", str(secret)]
    target = node_dir
    if case == "no node":
        target = tmp_path / "nowhere"
    elif case == "key missing":
        (node_dir / "keys" / "encryption.key").unlink()
    elif case == "empty passphrase":
        secret.write_bytes(b"")
    elif case == "newline only":
        secret.write_bytes(b"\n")
    elif case == "passphrase file missing":
        source = ["--passphrase-file", str(tmp_path / "absent")]
    elif case == "passphrase file is a folder":
        source = ["--passphrase-file", str(tmp_path)]
    elif case == "env unset":
        source = ["--passphrase-env", "EPHYTO_UNSET_FOR_TEST"]
    elif case == "bad env name":
        source = ["--passphrase-env", "NOT A NAME"]
    elif case == "credential outside systemd":
        source = ["--passphrase-credential", "ephyto-keys"]
    elif case == "credential with a slash":
        source = ["--passphrase-credential", "../x"]
    elif case == "another passphrase":
        other = tmp_path / "other"
        other.write_bytes(b"first passphrase")
        ok("node", "protect-keys", "--dir", node_dir, "--passphrase-file", other)
        (node_dir / "keys" / "tls.key").write_bytes(b"")  # a plain one would be converted
    elif case == "not a key":
        (node_dir / "keys" / "signing.key").write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n")
    files = snapshot(tmp_path)
    message = refused("node", "protect-keys", "--dir", target, *source)
    assert expected in message
    assert "the passphrase\n" not in message and "Traceback" not in message
    assert snapshot(tmp_path) == files


def test_the_command_wants_exactly_one_passphrase_source(node_dir: Path, tmp_path: Path) -> None:
    files = snapshot(node_dir)
    for args in ([], ["--passphrase-env", "A", "--passphrase-file", "f"]):
        result = ephyto("node", "protect-keys", "--dir", node_dir, *args)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
    assert snapshot(node_dir) == files


def test_a_passphrase_file_inside_the_node_directory_is_warned_about(
    node_dir: Path, tmp_path: Path
) -> None:
    (node_dir / "passphrase").write_bytes(b"kept in the wrong place")
    out = ok("node", "protect-keys", "--dir", node_dir, "--passphrase-file",
             node_dir / "passphrase")  # fmt: skip
    assert "warning: the passphrase file is inside the node directory" in out
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls = load_held_tls(load_config(node_dir / "node.toml")).current
    ctx.load_cert_chain(tls.certificate, tls.key, tls.password)
