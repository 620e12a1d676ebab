"""`ephyto doctor` on a node whose key files `ephyto node protect-keys` encrypted, run as an
operator runs it (a subprocess, --offline: the files on this machine).

The doctor reads the passphrase where node.toml says, as the node does at start: with it,
no key is a problem; without it (an unset variable, a missing file, no systemd
credentials directory), or with a wrong one, there is one `passphrase` problem saying what
to do, and no key file is called damaged. Plain key files beside a passphrase are one
warning. The passphrase itself is never printed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from node.identity.config import dump_config, load_config
from node.identity.keys import is_encrypted_pem, load_tls_key, private_key_pem
from node.identity.protection import Pkcs11KeyRef, SecretSource
from tests.ephyto_cli import ephyto, ok

PASSPHRASE = "doctor's test passphrase"
VARIABLE = "EPHYTO_TEST_DOCTOR_PASSPHRASE"
KEY_CHECKS = ("signing key", "encryption key", "TLS key")
KEY_FILES = ("signing.key", "encryption.key", "tls.key")


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `ephyto node init` for the module; each test works on a copy of it."""
    node_dir = tmp_path_factory.mktemp("template") / "n"
    ok("node", "init", "--country", "NL", "--name", "NVWA", "--dir", node_dir)
    return node_dir


@pytest.fixture
def node_dir(made: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, unconfigured node (so `config` is its one problem), and no passphrase or
    credentials directory inherited from whoever runs the tests."""
    monkeypatch.delenv(VARIABLE, raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    copy = tmp_path / "n"
    shutil.copytree(made, copy)
    config = (copy / "node.toml").read_text().replace(str(made.resolve()), str(copy.resolve()))
    (copy / "node.toml").write_text(config)
    return copy


def doctor(node_dir: Path, *secrets: str) -> tuple[int, dict[str, dict[str, Any]]]:
    """Exit code and findings by check of `ephyto doctor --offline --json`; no traceback,
    and none of `secrets` in what it printed."""
    result = ephyto("doctor", "--dir", node_dir, "--offline", "--json")
    assert "Traceback" not in result.stderr, result.stderr
    for secret in (PASSPHRASE, *secrets):
        assert secret not in result.stdout + result.stderr
    assert "PRIVATE KEY" not in result.stdout
    findings = json.loads(result.stdout)
    checks = [f["check"] for f in findings]
    assert len(checks) == len(set(checks)), checks  # one finding per check
    return result.returncode, {f["check"]: f for f in findings}


def problems(checks: dict[str, dict[str, Any]]) -> list[str]:
    return [name for name, f in checks.items() if f["status"] == "problem"]


def protect_by_env(node_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VARIABLE, PASSPHRASE)
    ok("node", "protect-keys", "--dir", node_dir, "--passphrase-env", VARIABLE)


def test_a_node_protected_by_an_environment_variable_has_no_key_problem(
    node_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    protect_by_env(node_dir, monkeypatch)

    code, checks = doctor(node_dir)

    assert code == 1 and problems(checks) == ["config"]  # unconfigured: nothing else
    assert checks["passphrase"]["status"] == "ok"
    assert f'passphrase_env "{VARIABLE}"' in checks["passphrase"]["detail"]
    assert "decrypts 3 key file(s)" in checks["passphrase"]["detail"]
    for check, name in zip(KEY_CHECKS, KEY_FILES, strict=True):
        assert checks[check]["status"] == "ok", checks[check]
        assert f"{node_dir / 'keys' / name} loads (mode 0600)" in checks[check]["detail"]
    # The certificate is checked against the decrypted TLS key (a mismatch is caught).
    assert checks["TLS certificate"]["status"] == "ok"
    assert "unencrypted keys" not in checks


def test_a_node_protected_by_a_file_has_no_key_problem_and_a_missing_file_is_one_problem(
    node_dir: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "keys.pass"
    secret.write_text(PASSPHRASE + "\n")
    ok("node", "protect-keys", "--dir", node_dir, "--passphrase-file", secret)

    code, checks = doctor(node_dir)
    assert problems(checks) == ["config"]
    assert checks["passphrase"]["status"] == "ok"
    assert all(checks[check]["status"] == "ok" for check in KEY_CHECKS)

    secret.rename(tmp_path / "elsewhere")
    code, checks = doctor(node_dir)

    assert code == 1 and problems(checks) == ["config", "passphrase"]
    found = checks["passphrase"]
    assert f'passphrase_file "{secret.resolve()}": cannot read' in found["detail"]
    for name in KEY_FILES:  # named as not checked, never as damaged
        assert str(node_dir / "keys" / name) in found["detail"]
    assert f"who can read {secret.resolve()}" in found["action"]
    assert not any(check in checks for check in KEY_CHECKS)
    assert not any("backup" in (f["action"] or "") for f in checks.values() if f is not found)


def test_an_unset_variable_is_one_problem_saying_to_run_with_the_services_environment(
    node_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    protect_by_env(node_dir, monkeypatch)
    monkeypatch.delenv(VARIABLE)

    code, checks = doctor(node_dir)

    assert code == 1
    assert problems(checks) == ["config", "passphrase"]
    found = checks["passphrase"]
    assert f"the environment variable {VARIABLE} is not set" in found["detail"]
    assert found["action"].startswith("run doctor with the same environment as the service")
    assert VARIABLE in found["action"]
    assert not any(check in checks for check in KEY_CHECKS)
    # Without the TLS key the certificate is still checked for its dates.
    assert checks["TLS certificate"]["status"] == "ok"


def test_a_credential_is_read_from_the_credentials_directory_and_its_absence_is_explained(
    node_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "ephyto-keys").write_text(PASSPHRASE)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    ok("node", "protect-keys", "--dir", node_dir, "--passphrase-credential", "ephyto-keys")

    _, checks = doctor(node_dir)  # as systemd runs it: the credential is there
    assert problems(checks) == ["config"] and checks["passphrase"]["status"] == "ok"

    monkeypatch.delenv("CREDENTIALS_DIRECTORY")  # by hand, outside the unit
    code, checks = doctor(node_dir)

    assert code == 1 and problems(checks) == ["config", "passphrase"]
    found = checks["passphrase"]
    assert "CREDENTIALS_DIRECTORY is not set" in found["detail"]
    systemd_run = "systemd-run --pipe --wait -p LoadCredential=ephyto-keys:PATH ephyto doctor"
    assert systemd_run in found["action"]


def test_a_wrong_passphrase_is_one_problem_naming_the_files(
    node_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    protect_by_env(node_dir, monkeypatch)
    monkeypatch.setenv(VARIABLE, "not the passphrase")

    code, checks = doctor(node_dir, "not the passphrase")

    assert code == 1 and problems(checks) == ["config", "passphrase"]
    found = checks["passphrase"]
    assert "does not decrypt" in found["detail"] and "a wrong passphrase" in found["detail"]
    for name in KEY_FILES:
        assert str(node_dir / "keys" / name) in found["detail"]
    assert not any(check in checks for check in KEY_CHECKS)


def test_one_file_under_another_passphrase_is_named_alone(
    node_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    protect_by_env(node_dir, monkeypatch)
    tls = node_dir / "keys" / "tls.key"
    key = load_tls_key(tls.read_bytes(), "tls.key", PASSPHRASE.encode())
    tls.write_bytes(private_key_pem(key, b"an older passphrase"))

    code, checks = doctor(node_dir, "an older passphrase")

    assert code == 1 and problems(checks) == ["config", "passphrase"]
    detail = checks["passphrase"]["detail"]
    assert detail.endswith(f"but not {tls}: encrypted with another passphrase, or damaged;"
                           " the node cannot start")  # fmt: skip
    assert f"restore {tls} from a backup" in checks["passphrase"]["action"]
    assert checks["signing key"]["status"] == checks["encryption key"]["status"] == "ok"
    assert "TLS key" not in checks


def test_encrypted_keys_without_a_passphrase_in_node_toml_are_one_problem(
    node_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    protect_by_env(node_dir, monkeypatch)
    config = node_dir / "node.toml"
    text = config.read_text()
    assert f'passphrase_env = "{VARIABLE}"\n' in text
    config.write_text(text.replace(f'passphrase_env = "{VARIABLE}"\n', ""))

    code, checks = doctor(node_dir)

    assert code == 1 and problems(checks) == ["config", "passphrase"]
    found = checks["passphrase"]
    assert "encrypted, but node.toml names no passphrase" in found["detail"]
    assert "passphrase_env" in found["action"]
    assert not any(check in checks for check in KEY_CHECKS)


def test_plain_keys_beside_a_passphrase_are_one_warning_saying_to_protect_them(
    node_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = {name: (node_dir / "keys" / name).read_bytes() for name in KEY_FILES}
    protect_by_env(node_dir, monkeypatch)
    for name in ("encryption.key", "tls.key"):  # restored from an old backup
        (node_dir / "keys" / name).write_bytes(plain[name])

    code, checks = doctor(node_dir)

    assert code == 1 and problems(checks) == ["config"]  # a warning is no problem
    found = checks["unencrypted keys"]
    assert found["status"] == "warning"
    named = f"{node_dir / 'keys' / 'encryption.key'}, {node_dir / 'keys' / 'tls.key'} are not"
    assert named in found["detail"]
    assert "signing.key" not in found["detail"]
    assert found["action"].startswith(
        f"run `ephyto node protect-keys --dir {node_dir} --passphrase-env {VARIABLE}`"
    )
    assert all(checks[check]["status"] == "ok" for check in KEY_CHECKS)
    assert "decrypts 1 key file(s)" in checks["passphrase"]["detail"]

    ok("node", "protect-keys", "--dir", node_dir, "--passphrase-env", VARIABLE)
    _, checks = doctor(node_dir)
    assert "unencrypted keys" not in checks
    assert all(is_encrypted_pem((node_dir / "keys" / n).read_bytes()) for n in KEY_FILES)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "the passphrase is empty"),
        (b"\n", "the passphrase is empty"),
        (b"x" * 5000, "holds more than 4096 bytes: not a passphrase"),
    ],
)
def test_a_hostile_passphrase_file_is_one_problem(
    node_dir: Path, tmp_path: Path, content: bytes, expected: str
) -> None:
    secret = tmp_path / "keys.pass"
    secret.write_text(PASSPHRASE)
    ok("node", "protect-keys", "--dir", node_dir, "--passphrase-file", secret)
    secret.write_bytes(content)
    before = {name: (node_dir / "keys" / name).read_bytes() for name in KEY_FILES}

    code, checks = doctor(node_dir)

    assert code == 1 and problems(checks) == ["config", "passphrase"]
    assert expected in checks["passphrase"]["detail"]
    # Read-only: nothing in the node directory changed.
    assert before == {name: (node_dir / "keys" / name).read_bytes() for name in KEY_FILES}


def test_an_encrypted_key_it_cannot_open_still_gets_its_mode_warning(
    node_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    protect_by_env(node_dir, monkeypatch)
    monkeypatch.delenv(VARIABLE)
    signing = node_dir / "keys" / "signing.key"
    signing.chmod(0o644)

    _, checks = doctor(node_dir)

    assert checks["signing key"]["status"] == "warning"
    assert checks["signing key"]["action"] == f"chmod 600 {signing}"
    assert problems(checks) == ["config", "passphrase"]


def test_a_damaged_encrypted_key_is_its_own_problem(
    node_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    protect_by_env(node_dir, monkeypatch)
    encryption = node_dir / "keys" / "encryption.key"
    signing = node_dir / "keys" / "signing.key"
    # An encrypted key of the wrong kind where the encryption key should be: the passphrase
    # opens it, so it is that file's problem, not the passphrase's.
    encryption.write_bytes(signing.read_bytes())

    code, checks = doctor(node_dir)

    assert code == 1 and problems(checks) == ["config", "encryption key"]
    assert "not an X25519 private key" in checks["encryption key"]["detail"]
    assert checks["passphrase"]["status"] == "ok"


def test_a_token_without_python_pkcs11_is_one_problem_saying_to_install_it(
    node_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    protect_by_env(node_dir, monkeypatch)
    config = load_config(node_dir / "node.toml")
    token = Pkcs11KeyRef("/usr/lib/p11.so", "NL-NPPO", "nl-signing", SecretSource("env", "PIN"))
    (node_dir / "node.toml").write_text(
        dump_config(replace(config, keys=replace(config.keys, signing_pkcs11=token)))
    )
    monkeypatch.setenv("PIN", "1234")
    # The node's environment without python-pkcs11: the import fails as if never installed.
    hide = "import sys; sys.modules['pkcs11'] = None; from node.cli.main import main; "
    result = subprocess.run(
        [sys.executable, "-c", hide + "sys.exit(main(sys.argv[1:]))", "doctor", "--dir",
         str(node_dir), "--offline", "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    checks = {f["check"]: f for f in json.loads(result.stdout)}
    assert problems(checks) == ["config", "signing key"]
    signing = checks["signing key"]
    assert "python-pkcs11 is not installed" in signing["detail"]
    assert "pip install 'ephyto-exchange[hsm]'" in signing["action"]
    assert "1234" not in result.stdout
    # The signing file beside the token is not read: only the other two are decrypted.
    assert "decrypts 2 key file(s)" in checks["passphrase"]["detail"]
