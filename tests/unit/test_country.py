"""The country a new node is created for: officially assigned ISO 3166-1 alpha-2 codes, and
user-assigned ones only for test networks."""

from __future__ import annotations

import string

import pytest

from node.codelists.lists import bundled
from node.errors import InputError
from node.identity.country import check_assigned_country, is_user_assigned

ALL_PAIRS = [a + b for a in string.ascii_uppercase for b in string.ascii_uppercase]
USER_ASSIGNED = (
    {"AA", "ZZ"} | {f"Q{c}" for c in "MNOPQRSTUVWXYZ"} | {f"X{c}" for c in string.ascii_uppercase}
)


def test_the_user_assigned_codes_are_exactly_those_iso_3166_leaves_to_users() -> None:
    assert {code for code in ALL_PAIRS if is_user_assigned(code)} == USER_ASSIGNED
    assert len(USER_ASSIGNED) == 42


def test_no_official_code_is_user_assigned() -> None:
    official = set(bundled().get("countries"))
    assert len(official) == 249
    assert not official & USER_ASSIGNED


@pytest.mark.parametrize("code", ["NL", "KE", "US", "CL", "FR", "CN", "AX", "QA", "ZA", "ZW"])
def test_officially_assigned_codes_are_accepted_with_or_without_the_flag(code: str) -> None:
    assert check_assigned_country(code) == code
    assert check_assigned_country(code, test_network=True) == code


@pytest.mark.parametrize("code", ["XX", "ZZ", "AA", "QM", "QZ", "XA", "XK", "XZ"])
def test_user_assigned_codes_need_the_test_network_flag(code: str) -> None:
    with pytest.raises(InputError, match=f"country {code} is a user-assigned.*--test-country"):
        check_assigned_country(code)
    assert check_assigned_country(code, test_network=True) == code


# Reserved or formerly used, but not assigned (EU and UK are "exceptionally reserved",
# YU and CS were withdrawn); QL sits just below the user-assigned range.
@pytest.mark.parametrize("code", ["EU", "UK", "YU", "CS", "QL", "AB", "ZY"])
def test_unassigned_codes_are_refused_even_for_a_test_network(code: str) -> None:
    for test_network in (False, True):
        with pytest.raises(InputError, match=f"country {code} is not an officially assigned"):
            check_assigned_country(code, test_network=test_network)


@pytest.mark.parametrize(
    "text",
    ["", "N", "nl", "Nl", "NLD", "N1", "1N", " NL", "NL\n", "ÑL", "\uff2e\uff2c", "N\x00", "XX "],
)
def test_what_is_not_two_capitals_is_refused_by_its_shape(text: str) -> None:
    for test_network in (False, True):
        with pytest.raises(InputError, match="is not an ISO 3166-1 alpha-2 code such as NL"):
            check_assigned_country(text, test_network=test_network)


@pytest.mark.parametrize("text", ["", "x", "xx", "XXX", "\uff38\uff38", "X1", "Q"])
def test_only_two_ascii_capitals_can_be_user_assigned(text: str) -> None:
    assert not is_user_assigned(text)
