"""`ephyto hub init|configure|account`, run as an operator runs them: in subprocesses."""

from __future__ import annotations

import csv
import io
import stat
from pathlib import Path

import pytest

from node.hub.config import load_hub_config
from node.hub.request import verify_hub_request
from tests.cli.test_cert_cli import ephyto

ENDPOINT = "https://hub.example:9443"


def _ok(*args: str | Path) -> str:
    result = ephyto(*args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def _refused(*args: str | Path) -> str:
    """The one error line of a refused command (exit 2, nothing on stdout)."""
    result = ephyto(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ephyto: error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def hub_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("hub") / "h"
    _ok("hub", "init", "--name", "Hub One", "--endpoint", ENDPOINT, "--dir", directory)
    return directory


@pytest.mark.parametrize(
    "command",
    [
        ["hub"], ["hub", "init"], ["hub", "configure"], ["hub", "serve"], ["hub", "account"],
        ["hub", "account", "policy"], ["hub", "account", "credit"], ["hub", "account", "show"],
        ["hub", "account", "statement"],
    ],
)  # fmt: skip
def test_every_hub_command_has_help(command: list[str]) -> None:
    result = ephyto(*command, "--help")
    assert result.returncode == 0
    assert "usage: ephyto hub" in result.stdout


def test_init_writes_the_key_private_and_a_request_that_verifies(hub_dir: Path) -> None:
    assert stat.S_IMODE((hub_dir / "keys/tls.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((hub_dir / "hub.toml").stat().st_mode) == 0o600
    config = load_hub_config(hub_dir / "hub.toml")
    assert (config.listen_host, config.listen_port) == ("0.0.0.0", 9443)
    assert config.database_url.endswith("/h/hub.db")
    assert (config.expire_after_hours, config.payer, config.max_content_bytes) == (
        72, "sender", 7 * 1024 * 1024,
    )  # fmt: skip
    request = verify_hub_request((hub_dir / "hub-request.json").read_bytes())
    assert (request.name, request.endpoint.url) == ("Hub One", ENDPOINT)


def test_init_never_overwrites_and_refuses_bad_input(hub_dir: Path, tmp_path: Path) -> None:
    before = (hub_dir / "keys/tls.key").read_bytes()
    line = _refused("hub", "init", "--name", "Hub", "--endpoint", ENDPOINT, "--dir", hub_dir)
    assert "already exists" in line
    assert (hub_dir / "keys/tls.key").read_bytes() == before
    assert "not an https:// URL" in _refused(
        "hub", "init", "--name", "Hub", "--endpoint", "http://h:1", "--dir", tmp_path / "x"
    )
    assert not (tmp_path / "x").exists()


def test_configure_sets_the_registry_and_refuses_a_bad_anchor(
    hub_dir: Path, tmp_path: Path
) -> None:
    _ok("registry", "init", "--dir", tmp_path / "r")
    anchor = tmp_path / "r/maintainers/maintainers.json"
    out = _ok("hub", "configure", "--dir", hub_dir, "--registry", "http://reg.example/directory.json",
              "--anchor", anchor)  # fmt: skip
    assert "threshold 1" in out
    config = load_hub_config(hub_dir / "hub.toml")
    assert (config.registry_url, config.registry_anchor) == (
        "http://reg.example/directory.json", "maintainers.json",
    )  # fmt: skip
    bad = tmp_path / "bad.json"
    bad.write_text('{"threshold": 2, "keys": []}')
    before = (hub_dir / "hub.toml").read_bytes()
    assert "not a maintainers trust anchor" in _refused(
        "hub", "configure", "--dir", hub_dir, "--registry", "http://r/d.json", "--anchor", bad
    )
    assert "expected an http(s) URL" in _refused(
        "hub", "configure", "--dir", hub_dir, "--registry", "ftp://r", "--anchor", anchor
    )
    assert (hub_dir / "hub.toml").read_bytes() == before


def test_serve_without_a_registry_says_what_to_do(tmp_path: Path) -> None:
    _ok("hub", "init", "--name", "Hub", "--endpoint", "https://127.0.0.1:1", "--dir", tmp_path)
    assert "run `ephyto hub configure" in _refused("hub", "serve", "--dir", tmp_path)


def test_accounts_policy_credit_show_and_statement(hub_dir: Path) -> None:
    d = ("--dir", str(hub_dir))
    out = _ok("hub", "account", "policy", "KE", "--prepaid", "0.50", "--currency", "EUR", *d)
    assert "KE: prepaid, 0.50 EUR per envelope, overdraft 0.00 EUR" in out
    out = _ok("hub", "account", "credit", "KE", "25", "--note", "invoice 7", *d)
    assert "KE: credited 25.00 EUR; balance 25.00 EUR" in out
    out = _ok("hub", "account", "show", "KE", *d)
    assert "balance  25.00 EUR" in out
    out = _ok("hub", "account", "statement", "KE", *d)
    assert "opening balance  0.00" in out and "invoice 7" in out and "closing balance  25.00" in out
    rows = list(csv.DictReader(io.StringIO(_ok("hub", "account", "statement", "KE", "--csv", *d))))
    assert [(r["kind"], r["amount"], r["note"]) for r in rows] == [("credit", "25.00", "invoice 7")]
    out = _ok("hub", "account", "policy", "NL", "--plan", "monthly", "--included", "100",
              "--tier", "1000:0.40", "--tier", ":0.30", "--currency", "EUR", "--overdraft", "10",
              *d)  # fmt: skip
    assert "NL: monthly plan, 100 included, then up to 1000 at 0.40, beyond at 0.30 EUR" in out
    assert "overdraft 10.00 EUR" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["policy", "KE", "--prepaid", "0.505", "--currency", "EUR"], "at most 2 decimals"),
        (["policy", "KE", "--prepaid", "1", "--currency", "euro"], "ISO 4217"),
        (["policy", "ke", "--prepaid", "1", "--currency", "EUR"], "alpha-2"),
        (["policy", "KE", "--plan", "monthly", "--tier", "x", "--currency", "EUR"], "UPTO:PRICE"),
        (
            [
                "policy",
                "KE",
                "--plan",
                "monthly",
                "--included",
                "10",
                "--tier",
                "5:1",
                "--currency",
                "EUR",
            ],
            "tiers must ascend",
        ),
        (["credit", "ZZ", "10"], "ZZ has no account at this hub"),
        (["credit", "KE", "-5"], "is not an amount in EUR"),
        (["show", "ZZ"], "ZZ has no account at this hub"),
        (["statement", "KE", "--since", "yesterday"], "expected a date like"),
    ],
)
def test_bad_account_input_is_one_line_and_exit_2(
    hub_dir: Path, args: list[str], message: str
) -> None:
    _ok("hub", "account", "policy", "KE", "--prepaid", "0.50", "--currency", "EUR",
        "--dir", hub_dir)  # fmt: skip
    assert message in _refused("hub", "account", *args, "--dir", hub_dir)


def test_account_commands_need_a_hub(tmp_path: Path) -> None:
    assert "run `ephyto hub init` first" in _refused(
        "hub", "account", "show", "KE", "--dir", tmp_path
    )
