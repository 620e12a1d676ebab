"""`ephyto node init`, run as an operator runs it: in a subprocess."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from node.identity.config import load_config
from node.identity.enrolment import verify_request
from tests.cli.test_cert_cli import ephyto


def _no_secrets(output: str, directory: Path) -> None:
    assert "PRIVATE KEY" not in output
    assert "Traceback" not in output
    config = load_config(directory / "node.toml")
    assert config.api_token not in output
    for key in (directory / "keys").glob("*.key"):
        body = "".join(key.read_text().splitlines()[1:-1])
        assert body[:40] not in output.replace("\n", "")


@pytest.mark.parametrize("command", [["node"], ["node", "init"]])
def test_node_commands_have_help(command: list[str]) -> None:
    result = ephyto(*command, "--help")
    assert result.returncode == 0
    assert "usage: ephyto" in result.stdout


def test_init_creates_an_identity_that_verifies(tmp_path: Path) -> None:
    result = ephyto(
        "node", "init", "--country", "NL", "--name", "NVWA", "--endpoint",
        "https://127.0.0.1:9443", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    directory = tmp_path / "ephyto-node"  # the default --dir
    keys = [directory / "keys" / f"{name}.key" for name in ("signing", "encryption", "tls")]
    for path in [*keys, directory / "node.toml"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    config = load_config(directory / "node.toml")
    assert (config.country, config.listen_host, config.listen_port) == ("NL", "127.0.0.1", 9443)
    request = verify_request((directory / "enrolment-request.json").read_bytes())
    assert request.signing_key_id in result.stdout
    assert request.encryption_key_id in result.stdout
    assert request.tls_pin in result.stdout
    assert "send ephyto-node/enrolment-request.json to the registry maintainer" in result.stdout
    _no_secrets(result.stdout + result.stderr, directory)


def test_init_without_endpoint_and_with_dir(tmp_path: Path) -> None:
    directory = tmp_path / "kephis"
    result = ephyto("node", "init", "--country", "KE", "--name", "KEPHIS", "--dir", directory)
    assert result.returncode == 0, result.stderr
    request = verify_request((directory / "enrolment-request.json").read_bytes())
    assert request.endpoint is None


def test_second_init_is_refused_in_one_line(tmp_path: Path) -> None:
    args = ("node", "init", "--country", "NL", "--name", "NVWA", "--dir", tmp_path / "n")
    assert ephyto(*args).returncode == 0
    before = {p: p.read_bytes() for p in (tmp_path / "n").rglob("*") if p.is_file()}
    result = ephyto(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert "already exists" in result.stderr
    assert {p: p.read_bytes() for p in (tmp_path / "n").rglob("*") if p.is_file()} == before
    _no_secrets(result.stdout + result.stderr, tmp_path / "n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--country", "nl", "--name", "N"], "is not an ISO 3166-1 alpha-2 code"),
        (["--country", "NL", "--name", "N", "--endpoint", "http://a:1"], "not an https:// URL"),
        (["--country", "NL", "--name", " "], "name must be 1 to 200 characters"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = ephyto("node", "init", *args, "--dir", tmp_path / "n")
    assert result.returncode == 2
    assert result.stderr.startswith("ephyto: error: ")
    assert len(result.stderr.splitlines()) == 1
    assert message in result.stderr
    assert not (tmp_path / "n").exists()
