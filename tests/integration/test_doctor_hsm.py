"""`ephyto doctor` on a node whose signing key is in a PKCS#11 token (SoftHSM2), run as an
operator runs it (a subprocess, --offline).

The doctor does not read the signing key file then: it logs in to the token as the node
does at start and has the key sign, and says in one line why not when it cannot (wrong
PIN, PIN source unset, no such token, no module), never printing the PIN.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from node.crypto.ids import key_id
from node.identity.keys import load_signing_key
from tests.cli.test_doctor_protected_keys import PASSPHRASE, VARIABLE, doctor, problems
from tests.ephyto_cli import ok
from tests.integration.test_hsm_signing import MODULE, PIN, TOKEN, new_softhsm

PIN_VARIABLE = "EPHYTO_TEST_DOCTOR_HSM_PIN"


@pytest.fixture
def node_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A node with its key files encrypted and its signing key moved into a token, the
    signing key file put away as docs/operations.md says."""
    monkeypatch.setenv("SOFTHSM2_CONF", str(new_softhsm(tmp_path / "softhsm")))
    monkeypatch.setenv(PIN_VARIABLE, PIN)
    monkeypatch.setenv(VARIABLE, PASSPHRASE)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    node = tmp_path / "n"
    ok("node", "init", "--country", "NL", "--name", "NVWA", "--dir", node)
    ok("node", "protect-keys", "--dir", node, "--passphrase-env", VARIABLE)
    ok("node", "hsm-import", "--dir", node, "--module", MODULE, "--token", TOKEN,
       "--key-label", "nl-signing", "--pin-env", PIN_VARIABLE)  # fmt: skip
    (node / "keys" / "signing.key").rename(tmp_path / "offline-backup-signing.key")
    return node


def _set_in_node_toml(node: Path, key: str, value: str) -> None:
    config = node / "node.toml"
    lines = config.read_text().splitlines(keepends=True)
    at = [i for i, line in enumerate(lines) if line.startswith(f"{key} = ")]
    assert len(at) == 1, lines
    lines[at[0]] = f'{key} = "{value}"\n'
    config.write_text("".join(lines))


def test_the_token_key_signs_and_the_signing_file_is_not_read(
    node_dir: Path, tmp_path: Path
) -> None:
    backup = (tmp_path / "offline-backup-signing.key").read_bytes()
    enrolled = load_signing_key(backup, "backup", PASSPHRASE.encode()).public_key()

    code, checks = doctor(node_dir, PIN)

    assert code == 1 and problems(checks) == ["config"]  # unconfigured: nothing else
    signing = checks["signing key"]
    assert signing["status"] == "ok"
    assert f'PKCS#11 token "{TOKEN}", key "nl-signing"' in signing["detail"]
    assert key_id(enrolled.public_bytes_raw()) in signing["detail"]
    assert "signing.key" not in signing["detail"]  # the file is gone, and not missed
    # The other two key files are still encrypted files, decrypted with the passphrase.
    assert "decrypts 2 key file(s)" in checks["passphrase"]["detail"]
    assert checks["encryption key"]["status"] == checks["TLS key"]["status"] == "ok"


def test_a_wrong_pin_is_one_line_without_the_pin(
    node_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PIN_VARIABLE, "000000")

    code, checks = doctor(node_dir, "000000", PIN)

    assert code == 1 and problems(checks) == ["config", "signing key"]
    signing = checks["signing key"]
    assert "the PIN is wrong (PinIncorrect)" in signing["detail"]
    assert "\n" not in signing["detail"]
    assert "PIN is the user PIN" in signing["action"]


def test_an_unset_pin_variable_says_to_run_with_the_services_environment(
    node_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PIN_VARIABLE)

    code, checks = doctor(node_dir, PIN)

    assert code == 1 and problems(checks) == ["config", "signing key"]
    signing = checks["signing key"]
    assert f"the environment variable {PIN_VARIABLE} is not set" in signing["detail"]
    assert signing["action"].startswith("run doctor with the same environment as the service")
    assert f"{PIN_VARIABLE} must hold the pin" in signing["action"]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("token", "absent-token", "no token with that label"),
        ("key_label", "absent-key", "holds no Ed25519 private and public key with that label"),
        ("module", "/nonexistent/libpkcs11.so", "cannot load the module /nonexistent"),
    ],
)
def test_a_wrong_token_setting_is_one_problem_saying_which(
    node_dir: Path, key: str, value: str, expected: str
) -> None:
    _set_in_node_toml(node_dir, key, value)

    code, checks = doctor(node_dir, PIN)

    assert code == 1 and problems(checks) == ["config", "signing key"]
    assert expected in checks["signing key"]["detail"]
    assert "[keys.signing_pkcs11]" in checks["signing key"]["action"]


def test_a_token_the_process_cannot_see_is_one_problem(
    node_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run without the service's SOFTHSM2_CONF: SoftHSM2 finds no configuration, or not
    # this token.
    monkeypatch.setenv("SOFTHSM2_CONF", str(node_dir / "no-such-softhsm2.conf"))

    code, checks = doctor(node_dir, PIN)

    assert code == 1 and problems(checks) == ["config", "signing key"]
    assert "SOFTHSM2_CONF" in checks["signing key"]["action"]
