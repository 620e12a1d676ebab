"""Choosing the SPSCertificate schema version for a partner (node/directory/schemas.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from node.directory import NppoEntry, SchemaVersion
from node.directory.schemas import (
    NoCommonSchemaVersion,
    common_schema_version,
    in_force,
    ordered,
    schema_version_key,
)

T0 = datetime(2027, 1, 1, tzinfo=UTC)
BEFORE, AFTER = datetime(2026, 6, 1, tzinfo=UTC), datetime(2027, 6, 1, tzinfo=UTC)


def _partner(*versions: str, country: str = "XX") -> NppoEntry:
    return NppoEntry(country, f"NPPO {country}", "active", None, (), (), versions)


def test_versions_order_by_year_then_letter() -> None:
    assert ordered(["D20B", "D16B", "D17A", "D17B", "D20A"]) == [
        "D16B", "D17A", "D17B", "D20A", "D20B",
    ]  # fmt: skip
    assert schema_version_key("D17A") == (2017, "A")
    assert schema_version_key("D09B") == (2009, "B")


@pytest.mark.parametrize("text", ["17A", "D7A", "D17", "d17a", "D17AA", "V2", "D17A ", ""])
def test_anything_else_is_unordered_and_dropped(text: str) -> None:
    assert schema_version_key(text) is None
    assert ordered([text, "D17A"]) == ["D17A"]


def test_the_highest_common_version_wins() -> None:
    assert common_schema_version(["D16B", "D17A"], _partner("D17A", "D16B"), [], T0) == "D17A"
    assert common_schema_version(["D17A", "D20B"], _partner("D20B", "D17A"), [], T0) == "D20B"
    assert common_schema_version(["D17A", "D20B"], _partner("D16B", "D17A"), [], T0) == "D17A"


def test_an_empty_network_list_sets_no_constraint() -> None:
    # An older registry publishes no `schemas`: own and the partner's decide alone.
    assert common_schema_version(["D17A"], _partner("D17A"), (), T0) == "D17A"


def test_the_partners_unordered_versions_are_ignored() -> None:
    assert common_schema_version(["D17A"], _partner("V2", "D17A", "next"), [], T0) == "D17A"
    with pytest.raises(NoCommonSchemaVersion, match="no version this node can order"):
        common_schema_version(["D17A"], _partner("V2"), [], T0)


def test_own_unordered_version_is_a_bug() -> None:
    with pytest.raises(ValueError, match="not UN/CEFACT"):
        common_schema_version(["17A"], _partner("D17A"), [], T0)


def test_no_common_version_says_who_speaks_what() -> None:
    with pytest.raises(NoCommonSchemaVersion) as caught:
        common_schema_version(["D17A"], _partner("D20B"), [], T0, own_name="NL")
    assert str(caught.value) == (
        "NL speaks D17A, XX speaks D20B only: no common SPSCertificate version"
    )


def test_transition_dates_decide_which_shared_version_is_used() -> None:
    network = [
        SchemaVersion("D17A", datetime(2020, 1, 1, tzinfo=UTC), T0),  # retired at T0
        SchemaVersion("D20B", datetime(2026, 12, 1, tzinfo=UTC), None),
    ]
    both = _partner("D17A", "D20B")
    assert in_force(network, BEFORE) == ["D17A"]
    assert in_force(network, datetime(2026, 12, 15, tzinfo=UTC)) == ["D17A", "D20B"]
    assert in_force(network, AFTER) == ["D20B"]
    own = ["D17A", "D20B"]
    assert common_schema_version(own, both, network, BEFORE) == "D17A"  # D20B not yet
    assert common_schema_version(own, both, network, AFTER) == "D20B"
    # valid_until is exclusive: at T0 D17A is retired.
    assert common_schema_version(own, both, network, T0) == "D20B"


def test_a_shared_version_not_in_force_is_no_choice() -> None:
    network = [SchemaVersion("D20B", datetime(2026, 1, 1, tzinfo=UTC), None)]
    with pytest.raises(NoCommonSchemaVersion) as caught:
        common_schema_version(["D17A"], _partner("D17A"), network, T0, own_name="NL")
    message = str(caught.value)
    assert "NL and XX share D17A, not in force network-wide at 2027-01-01T00:00:00Z" in message
    assert "(in force: D20B)" in message
