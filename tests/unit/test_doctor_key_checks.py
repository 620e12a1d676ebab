"""The doctor's pure checks of key protection (node.doctor.key_checks): what each finding
says and tells the operator to do, for each kind of secret source."""

from __future__ import annotations

from pathlib import Path

from node.doctor.key_checks import (
    passphrase_missing,
    passphrase_refused,
    passphrase_unreadable,
    passphrase_works,
    plain_beside_passphrase,
    token_refused,
    token_signs,
)
from node.identity.config import NodeConfig
from node.identity.protection import Pkcs11KeyRef, SecretSource

NODE = Path("/srv/ephyto-node")
CONFIG = NodeConfig(
    directory=NODE,
    country="NL",
    name="NVWA",
    endpoint=None,
    api_token="t",
    database_url="sqlite+aiosqlite:////srv/ephyto-node/node.db",
    listen_host="127.0.0.1",
    listen_port=8443,
)
SIGNING, TLS = NODE / "keys/signing.key", NODE / "keys/tls.key"
TOKEN = Pkcs11KeyRef("/usr/lib/p11.so", "NL-NPPO", "nl-signing", SecretSource("credential", "pin"))


def test_a_plain_file_beside_a_relative_passphrase_file_names_it_absolute() -> None:
    found = plain_beside_passphrase(CONFIG, SecretSource("file", "keys.pass"), [TLS])

    assert found is not None and found.status == "warning"
    assert found.detail.startswith(f"node.toml names a passphrase, but {TLS} is not encrypted")
    # protect-keys reads a relative file from its working directory: give it absolute.
    assert found.action == (
        f"run `ephyto node protect-keys --dir {NODE} --passphrase-file {NODE / 'keys.pass'}`"
        " (the same passphrase source), then restart the node"
    )
    assert plain_beside_passphrase(CONFIG, SecretSource("env", "V"), []) is None


def test_an_absolute_passphrase_file_and_a_credential_are_named_as_given() -> None:
    absolute = plain_beside_passphrase(CONFIG, SecretSource("file", "/etc/k.pass"), [SIGNING, TLS])
    credential = plain_beside_passphrase(CONFIG, SecretSource("credential", "ephyto-keys"), [TLS])

    assert absolute is not None and "--passphrase-file /etc/k.pass`" in (absolute.action or "")
    assert f"{SIGNING}, {TLS} are not encrypted" in absolute.detail
    assert credential is not None
    assert "--passphrase-credential ephyto-keys`" in (credential.action or "")


def test_an_unreadable_source_says_how_to_run_doctor_for_each_kind() -> None:
    by_kind = {
        kind: passphrase_unreadable(CONFIG, SecretSource(kind, value), "why", [SIGNING])
        for kind, value in (("env", "V"), ("credential", "c"), ("file", "/etc/k.pass"))
    }

    assert all(f.status == "problem" and f.check == "passphrase" for f in by_kind.values())
    unchecked = f"why; not checked without it: {SIGNING} (and the connections made with them)"
    assert by_kind["env"].detail == unchecked
    assert (by_kind["env"].action or "").startswith(
        "run doctor with the same environment as the service: V must hold the passphrase"
    )
    credential = by_kind["credential"].action or ""
    assert f"LoadCredential=c:PATH ephyto doctor --dir {NODE}`" in credential
    assert "who can read /etc/k.pass" in (by_kind["file"].action or "")
    assert passphrase_unreadable(CONFIG, SecretSource("env", "V"), "why", []).detail == "why"


def test_the_passphrase_findings_name_the_files() -> None:
    source = SecretSource("env", "V")
    none = passphrase_refused(source, [SIGNING, TLS], [])
    some = passphrase_refused(source, [TLS], [SIGNING])
    missing = passphrase_missing([SIGNING])

    assert f"does not decrypt {SIGNING}, {TLS}: a wrong passphrase" in none.detail
    assert f"decrypts {SIGNING} but not {TLS}: encrypted with another" in some.detail
    assert f"restore {TLS} from a backup" in (some.action or "")
    assert missing.detail.startswith(f"{SIGNING} is encrypted, but node.toml names no")
    assert passphrase_works(source, []).detail.endswith("no key file is encrypted yet")
    assert passphrase_works(source, [SIGNING, TLS]).status == "ok"


def test_the_token_findings() -> None:
    signs = token_signs(TOKEN, "abc")
    pin_unread = token_refused(CONFIG, TOKEN, 'pin_credential "pin": CREDENTIALS_DIRECTORY', "pin")
    refused = token_refused(CONFIG, TOKEN, "PKCS#11 token: the PIN is wrong", "token")

    assert signs.status == "ok" and "key id abc" in signs.detail
    assert "LoadCredential=pin:PATH" in (pin_unread.action or "")
    assert refused.status == "problem" and refused.check == "signing key"
    library = token_refused(CONFIG, TOKEN, "python-pkcs11 is not installed", "library")
    assert "pip install 'ephyto-exchange[hsm]'" in (library.action or "")
    assert "[keys.signing_pkcs11]" in (refused.action or "")
