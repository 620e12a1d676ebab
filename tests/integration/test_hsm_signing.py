"""The signing key in a PKCS#11 token: SoftHSM2 (Debian's softhsm2) through python-pkcs11.

In this process: a key imported with SoftHSM2's own tool signs through the node's adapter,
the signature verifies with the file's public key, an envelope sealed with it opens at
the recipient, the key cannot be exported, and every wrong setting is a one-line error.
A PKCS#11 library reads its configuration once per process, so the token for those tests
is made once, before the library loads. Across processes: `ephyto node hsm-import` moves a
node's key into a token of its own, and that node, its key files encrypted too, exchanges
a certificate with a peer that accepts its envelope (tests/integration/test_node_serve.py
has the same network with plain keys).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from node.crypto.ids import key_id
from node.envelope.envelope import EnvelopeHeader, open_envelope, seal
from node.envelope.receipt import Outcome, Receipt, make_receipt, verify_receipt
from node.identity.config import load_config
from node.identity.keys import private_key_pem
from node.identity.protection import Pkcs11KeyRef, SecretSource
from tests.ephyto_cli import ok, refused
from tests.integration.test_node_serve import READY, Server, api, certificate_between

SOFTHSM2_UTIL = shutil.which("softhsm2-util")
MODULE = "/usr/lib/softhsm/libsofthsm2.so"
pytestmark = pytest.mark.skipif(
    SOFTHSM2_UTIL is None or not Path(MODULE).exists(),
    reason="SoftHSM2 is not installed (Debian package softhsm2; .ci/run installs it)",
)
pkcs11_signer = pytest.importorskip(
    "node.identity.pkcs11_signer", reason="python-pkcs11 is not installed (the hsm extra)"
)
pytest.importorskip("pkcs11", reason="python-pkcs11 is not installed (the hsm extra)")

TOKEN, PIN, SO_PIN = "ephyto-test", "123456", "654321"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def softhsm(folder: Path, *args: str) -> str:
    """Run softhsm2-util with the configuration in `folder`."""
    assert SOFTHSM2_UTIL is not None
    env = {**os.environ, "SOFTHSM2_CONF": str(folder / "softhsm2.conf")}
    result = subprocess.run(
        [SOFTHSM2_UTIL, *args], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def new_softhsm(folder: Path) -> Path:
    """A SoftHSM2 configuration of its own in `folder`, with one initialised token."""
    (folder / "tokens").mkdir(parents=True)
    (folder / "softhsm2.conf").write_text(
        f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\n"
    )
    softhsm(folder, "--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", SO_PIN)
    return folder / "softhsm2.conf"


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The token of this process's tests, holding KEY under `node-signing`, imported with
    SoftHSM2's own tool (as docs/operations.md shows); SOFTHSM2_CONF points at it."""
    folder = tmp_path_factory.mktemp("softhsm")
    conf = new_softhsm(folder)
    key_file = folder / "signing.key"
    key_file.write_bytes(private_key_pem(KEY))
    softhsm(folder, "--import", str(key_file), "--token", TOKEN, "--label", "node-signing",
            "--id", "01", "--pin", PIN)  # fmt: skip
    key_file.unlink()
    (folder / "pin").write_text(PIN + "\n")
    before = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = before


def ref(**changes: str) -> Pkcs11KeyRef:
    """The `[keys.signing_pkcs11]` of the key in the module's token, PIN in its `pin` file."""
    values = {"module": MODULE, "token": TOKEN, "key_label": "node-signing", **changes}
    return Pkcs11KeyRef(
        values["module"], values["token"], values["key_label"], SecretSource("file", "pin")
    )


def test_the_token_signs_with_the_imported_key_and_never_gives_it_out(token: Path) -> None:
    key = pkcs11_signer.open_token_key(ref(), base=token)
    assert isinstance(key, Ed25519PrivateKey)  # the seam: wherever a key file's key went
    assert key.public_key() == KEY.public_key()
    signature = key.sign(b"an ePhyto envelope")
    KEY.public_key().verify(signature, b"an ePhyto envelope")
    assert signature == KEY.sign(b"an ePhyto envelope")  # Ed25519 is deterministic
    with pytest.raises(pkcs11_signer.TokenKeyError, match="in a token and never leaves it"):
        key.private_bytes_raw()
    with pytest.raises(pkcs11_signer.TokenKeyError, match="never leaves it"):
        private_key_pem(key)


def test_an_envelope_and_a_receipt_signed_in_the_token_verify(token: Path) -> None:
    key = pkcs11_signer.open_token_key(ref(), base=token)
    recipient = X25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
    recipient_id = key_id(recipient.public_key().public_bytes_raw())
    header = EnvelopeHeader(
        message_id="0b6f4d0e-4d2a-4c1e-9a57-3f8d2b1c6e90",
        from_country="NL",
        to_country="KE",
        certificate_type="851",
        certificate_status="70",
        certificate_number="NL-2026-000123",
        created=datetime(2026, 12, 7, 9, 15, tzinfo=UTC),
    )
    data = seal(header=header, payload=b"<x/>", sender_signing_key=key,
                recipient_public_key=recipient.public_key())  # fmt: skip

    def sender_key(country: str, kid: str) -> Ed25519PublicKey:
        assert (country, kid) == ("NL", key_id(KEY.public_key().public_bytes_raw()))
        return KEY.public_key()

    opened = open_envelope(data, max_bytes=1 << 20, recipient_country="KE",
                           recipient_private_key=recipient, recipient_key_id=recipient_id,
                           resolve_sender_key=sender_key)  # fmt: skip
    assert opened.payload == b"<x/>"
    # The node as receiver: its receipt, signed in the token, verifies at the sender.
    receipt = Receipt(
        message_id=opened.header.message_id,
        content_digest=opened.header.content_digest,
        from_country="KE",
        to_country="NL",
        received=datetime(2026, 12, 7, 9, 15, 7, tzinfo=UTC),
        outcome=Outcome.ACCEPTED,
    )
    data = make_receipt(receipt, receiver_signing_key=key)
    verified = verify_receipt(data, expected_message_id=receipt.message_id,
                              expected_digest=receipt.content_digest,
                              receiver_public_key=KEY.public_key())  # fmt: skip
    assert verified.receiver_key_id == key_id(KEY.public_key().public_bytes_raw())
    assert verified.outcome == Outcome.ACCEPTED


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"key_label": "absent"}, "holds no Ed25519 private and public key with that label"),
        ({"token": "no-such-token"}, "no token with that label"),
        ({"module": "/nonexistent/libpkcs11.so"}, "cannot load the module /nonexistent"),
        ({"module": "/etc/hostname"}, "cannot load the module /etc/hostname"),
    ],
)
def test_a_wrong_setting_is_a_one_line_config_error(
    token: Path, changes: dict[str, str], message: str
) -> None:
    with pytest.raises(pkcs11_signer.TokenKeyError, match=message) as caught:
        pkcs11_signer.open_token_key(ref(**changes), base=token)
    assert "\n" not in str(caught.value) and PIN not in str(caught.value)


def test_a_missing_pin_file_is_refused_before_the_token_is_asked(token: Path) -> None:
    with pytest.raises(pkcs11_signer.ConfigError, match=r'pin_file "pin": cannot read'):
        pkcs11_signer.open_token_key(ref(), base=token / "elsewhere")


def test_a_label_on_halves_of_two_key_pairs_is_refused(token: Path) -> None:
    import pkcs11
    from pkcs11 import Attribute, KeyType, ObjectClass
    from pkcs11.util.ec import encode_named_curve_parameters

    # A private key and a public key of different pairs under one label: signing would
    # give envelopes that nobody can verify with the key the token claims.
    library = pkcs11.lib(MODULE)
    session = library.get_token(token_label=TOKEN).open(rw=True)  # logged in by the tests
    params = encode_named_curve_parameters("1.3.101.112")
    common = {Attribute.KEY_TYPE: KeyType.EC_EDWARDS, Attribute.TOKEN: True,
              Attribute.LABEL: "mixed", Attribute.EC_PARAMS: params}  # fmt: skip
    pkcs11_signer.open_token_key(ref(), base=token)  # log in first
    session.create_object({**common, Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                           Attribute.PRIVATE: True, Attribute.SIGN: True,
                           Attribute.VALUE: KEY.private_bytes_raw()})  # fmt: skip
    session.create_object({**common, Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                           Attribute.EC_POINT: b"\x04\x20"
                           + OTHER.public_key().public_bytes_raw()})  # fmt: skip
    with pytest.raises(pkcs11_signer.TokenKeyError, match="are not one key pair"):
        pkcs11_signer.open_token_key(ref(key_label="mixed"), base=token)


# --- a node signing in its token, across processes -------------------------------------


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        yield started
    finally:
        for server in started:
            server.close()


def test_a_node_with_its_key_in_an_hsm_exchanges_with_a_peer(
    tmp_path: Path, servers: list[Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    from node.demo.network import free_port

    conf = new_softhsm(tmp_path / "softhsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    monkeypatch.setenv("EPHYTO_TEST_HSM_PIN", PIN)
    monkeypatch.setenv("EPHYTO_TEST_PASSPHRASE", "nl key files passphrase")
    registry_dir = tmp_path / "registry"
    ok("registry", "init", "--dir", registry_dir)
    registry_port = free_port()
    registry_url = f"http://127.0.0.1:{registry_port}/directory.json"
    nodes: dict[str, Path] = {}
    for country, name in (("NL", "NVWA"), ("KE", "KEPHIS")):
        node_dir = tmp_path / country.lower()
        ok("node", "init", "--country", country, "--name", name, "--endpoint",
           f"https://127.0.0.1:{free_port()}", "--dir", node_dir)  # fmt: skip
        ok("node", "configure", "--dir", node_dir, "--registry", registry_url,
           "--anchor", registry_dir / "maintainers" / "maintainers.json",
           "--api-port", str(free_port()))  # fmt: skip
        ok("registry", "add", "--dir", registry_dir, node_dir / "enrolment-request.json")
        nodes[country] = node_dir
    ok("registry", "publish", "--dir", registry_dir)

    # NL: key files encrypted, then the signing key into the token, its file put away.
    nl = nodes["NL"]
    ok("node", "protect-keys", "--dir", nl, "--passphrase-env", "EPHYTO_TEST_PASSPHRASE")
    out = ok("node", "hsm-import", "--dir", nl, "--module", MODULE, "--token", TOKEN,
             "--key-label", "nl-signing", "--pin-env", "EPHYTO_TEST_HSM_PIN")  # fmt: skip
    assert "stored signing key" in out
    assert load_config(nl / "node.toml").keys.signing_pkcs11 == Pkcs11KeyRef(
        MODULE, TOKEN, "nl-signing", SecretSource("env", "EPHYTO_TEST_HSM_PIN")
    )
    (nl / "keys" / "signing.key").rename(tmp_path / "offline-backup-signing.key")
    # KE: its keys encrypted, but one plain key restored beside them: it loads, with a word.
    ke_plain = nodes["KE"] / "keys" / "encryption.key"
    plain = ke_plain.read_bytes()
    monkeypatch.setenv("EPHYTO_TEST_KE_PASSPHRASE", "ke key files passphrase")
    ok("node", "protect-keys", "--dir", nodes["KE"], "--passphrase-env",
       "EPHYTO_TEST_KE_PASSPHRASE")  # fmt: skip
    ke_plain.write_bytes(plain)
    again = refused("node", "hsm-import", "--dir", nl, "--token", TOKEN, "--key-label", "x",
                    "--pin-env", "EPHYTO_TEST_HSM_PIN")  # fmt: skip
    assert "names [keys.signing_pkcs11] already" in again
    monkeypatch.setenv("EPHYTO_TEST_HSM_PIN", "000000")
    wrong = refused("node", "change-endpoint", "--dir", nl, "--hub-only")
    assert "the PIN is wrong (PinIncorrect)" in wrong and "000000" not in wrong
    monkeypatch.setenv("EPHYTO_TEST_HSM_PIN", PIN)

    registry = Server("registry", ["registry", "serve", "--dir", str(registry_dir), "--port",
                                   str(registry_port)], tmp_path)  # fmt: skip
    servers.append(registry)
    registry.wait_for(re.compile(r"^serving "))
    running = {}
    for country, node_dir in nodes.items():
        server = Server(country, ["node", "serve", "--dir", str(node_dir)], tmp_path)
        servers.append(server)
        running[country] = server
    urls = {country: server.wait_for(READY) for country, server in running.items()}

    nl_token = load_config(nl / "node.toml").api_token
    status, sent = api(urls["NL"]["api"], nl_token, "/api/v1/certificates",
                       certificate_between("NL", "KE"))  # fmt: skip
    assert status == 202, sent
    message = _settled(urls["NL"]["api"], nl_token, sent["id"])
    assert (message["state"], message["route"], message["outcome"]) == (
        "delivered", "direct", "accepted",
    ), f"{message}\n{running['NL'].output()}\n{running['KE'].output()}"  # fmt: skip
    ke_token = load_config(nodes["KE"] / "node.toml").api_token
    status, received = api(urls["KE"]["api"], ke_token, "/api/v1/certificates?direction=received")
    assert [(m["message_id"], m["from"]) for m in received["certificates"]] == [
        (sent["message_id"], "NL")
    ]
    for server in (*running.values(), registry):
        assert server.terminate() == 0, server.output()
    log = running["NL"].stderr.read_text()
    assert "Traceback" not in log and PIN not in log and "nl key files passphrase" not in log
    assert "not encrypted" not in log  # every key file NL reads is encrypted
    warnings = [line for line in running["KE"].stderr.read_text().splitlines()
                if "private key files are not encrypted" in line]  # fmt: skip
    assert len(warnings) == 1 and "WARNING" in warnings[0], warnings
    assert str(ke_plain) in warnings[0] and "tls.key" not in warnings[0]


def _settled(api_url: str, token: str, message_id: str) -> dict[str, object]:
    import time

    deadline = time.monotonic() + 30
    while True:
        status, message = api(api_url, token, f"/api/v1/certificates/{message_id}")
        assert status == 200, message
        if message["state"] in ("delivered", "failed") or time.monotonic() > deadline:
            return dict(message)
        time.sleep(0.2)


def test_a_node_reloading_its_keys_keeps_the_token_session(token: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    from node.identity.config import dump_config
    from node.identity.next_keys import load_held_keys
    from node.identity.store import init_node

    init_node(tmp_path / "n", country="NL", name="NVWA", endpoint=None, now=datetime.now(UTC))
    config = load_config(tmp_path / "n" / "node.toml")
    (tmp_path / "n" / "pin").write_text(PIN)
    config = replace(config, keys=replace(config.keys, signing_pkcs11=ref()))
    (tmp_path / "n" / "node.toml").write_text(dump_config(config))
    (tmp_path / "n" / "keys" / "signing.key").unlink()  # the node reads the token, not a file

    first = load_held_keys(config)
    current = first.signing[first.signing_id]
    assert isinstance(current, pkcs11_signer.TokenSigningKey)
    assert current.public_key() == KEY.public_key()
    # A directory refresh reads node.toml again: the token's login is the process's, once.
    again = load_held_keys(load_config(tmp_path / "n" / "node.toml"), held=first)
    assert again.signing[again.signing_id] is current
    KEY.public_key().verify(current.sign(b"still signing"), b"still signing")


def test_hsm_import_refuses_bad_input_in_one_line_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = new_softhsm(tmp_path / "softhsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    monkeypatch.setenv("EPHYTO_TEST_HSM_PIN", PIN)
    monkeypatch.delenv("EPHYTO_TEST_UNSET", raising=False)
    node_dir = tmp_path / "n"
    ok("node", "init", "--country", "NL", "--name", "NVWA", "--dir", node_dir)
    common = ["node", "hsm-import", "--dir", str(node_dir), "--module", MODULE]
    config = (node_dir / "node.toml").read_bytes()
    for args, expected in (
        (["--token", "absent", "--key-label", "k", "--pin-env", "EPHYTO_TEST_HSM_PIN"],
         'token "absent": no token with that label'),
        (["--token", TOKEN, "--key-label", "k", "--pin-env", "EPHYTO_TEST_UNSET"],
         "the environment variable EPHYTO_TEST_UNSET is not set"),
        (["--token", TOKEN, "--key-label", "k", "--pin-file", str(tmp_path / "absent")],
         'pin_file "' + str(tmp_path / "absent") + '": cannot read'),
        (["--token", TOKEN, "--key-label", "k", "--pin-credential", "../pin"],
         "'../pin' is not a systemd credential name"),
        (["--token", TOKEN, "--key-label", " ", "--pin-env", "EPHYTO_TEST_HSM_PIN"],
         "--key-label: must not be empty"),
    ):  # fmt: skip
        message = refused(*common, *args)
        assert expected in message, message
        assert PIN not in message
    monkeypatch.setenv("EPHYTO_TEST_HSM_PIN", "000000")
    message = refused(*common, "--token", TOKEN, "--key-label", "k", "--pin-env",
                      "EPHYTO_TEST_HSM_PIN")  # fmt: skip
    assert "the PIN is wrong (PinIncorrect)" in message
    assert (node_dir / "node.toml").read_bytes() == config
    # A label in use is refused before anything is stored under it.
    monkeypatch.setenv("EPHYTO_TEST_HSM_PIN", PIN)
    other = tmp_path / "other.key"
    other.write_bytes(private_key_pem(OTHER))
    softhsm(tmp_path / "softhsm", "--import", str(other), "--token", TOKEN, "--label", "taken",
            "--id", "02", "--pin", PIN)  # fmt: skip
    message = refused(*common, "--token", TOKEN, "--key-label", "taken", "--pin-env",
                      "EPHYTO_TEST_HSM_PIN")  # fmt: skip
    assert 'holds an object labelled "taken" already' in message
    assert (node_dir / "node.toml").read_bytes() == config
