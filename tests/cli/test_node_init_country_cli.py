"""`ephyto node init --country`: an officially assigned ISO 3166-1 code, or a user-assigned
one with --test-country; anything else refused in one line, with nothing created."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.identity.config import load_config
from node.identity.enrolment import verify_request
from tests.ephyto_cli import ok, refused


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("XX", "country XX is a user-assigned ISO 3166-1 code, not a country"),
        ("ZZ", "or --test-country for a test network"),
        ("QM", "country QM is a user-assigned"),
        ("EU", "country EU is not an officially assigned ISO 3166-1 alpha-2 code"),
        ("UK", "country UK is not an officially assigned"),
        ("nl", "country 'nl' is not an ISO 3166-1 alpha-2 code such as NL"),
        ("NLD", "is not an ISO 3166-1 alpha-2 code"),
        ("", "is not an ISO 3166-1 alpha-2 code"),
        ("N\u200bL", "is not an ISO 3166-1 alpha-2 code"),
    ],
)
def test_a_code_that_is_no_country_is_refused_and_nothing_is_created(
    tmp_path: Path, code: str, message: str
) -> None:
    directory = tmp_path / "n"
    assert message in refused("node", "init", "--country", code, "--name", "N", "--dir", directory)
    assert not directory.exists()


def test_an_unassigned_code_is_refused_even_with_the_test_flag(tmp_path: Path) -> None:
    directory = tmp_path / "n"
    line = refused(
        "node", "init", "--country", "EU", "--test-country", "--name", "N", "--dir", directory
    )
    assert "not an officially assigned" in line
    assert not directory.exists()


@pytest.mark.parametrize("code", ["ZZ", "XK", "NL"])
def test_the_test_flag_creates_a_test_node(tmp_path: Path, code: str) -> None:
    directory = tmp_path / "n"
    ok("node", "init", "--country", code, "--test-country", "--name", "Test", "--dir", directory)
    assert load_config(directory / "node.toml").country == code
    request = verify_request((directory / "enrolment-request.json").read_bytes())
    assert request.country == code


def test_help_names_the_test_flag() -> None:
    text = " ".join(ok("node", "init", "--help").split())
    assert "--test-country" in text
    assert "user-assigned code (AA, QM-QZ, XA-XZ, ZZ), for a test network" in text
