"""The console's settings (pure): what each accepts, and what new drafts start with."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from node.console import settings


@pytest.mark.parametrize(
    "name,value",
    [("number_prefix", "NVWA-PC-"), ("number_prefix", "KE/2026/"), ("place_of_issue", "NLRTM"),
     ("place_of_issue", "KEMBA"), ("statement", "1")],
)  # fmt: skip
def test_good_values(name: str, value: str) -> None:
    assert settings.refusals({name: value}) == {}


@pytest.mark.parametrize(
    "name,value",
    [("number_prefix", "-NL"), ("number_prefix", "x" * 25), ("number_prefix", "NL 1"),
     ("number_prefix", "<b>"), ("place_of_issue", "Rotterdam"), ("place_of_issue", "nlrtm"),
     ("place_of_issue", "NLRT"), ("statement", "1; drop"), ("statement", "\x00")],
)  # fmt: skip
def test_refused_values_say_why(name: str, value: str) -> None:
    assert set(settings.refusals({name: value})) == {name}


def test_empty_means_the_default_and_unknown_names_are_ignored() -> None:
    assert settings.refusals({"number_prefix": "", "nonsense": "x"}) == {}
    now = datetime(2026, 12, 7, tzinfo=UTC)
    assert settings.number_prefix({}, country="NL", now=now) == "NL-2026-C"
    assert settings.number_prefix({"number_prefix": "X-"}, country="NL", now=now) == "X-"


def test_draft_defaults() -> None:
    assert settings.draft_defaults({}) == {}
    assert settings.draft_defaults({"place_of_issue": "NLRTM", "statement": "1"}) == {
        "signatories": [{"issue_location": {"id": "NLRTM"}, "clauses": [{"id": "1"}]}]
    }
