"""The JSON model refuses hostile JSON with a clear error, before it can hurt."""

from __future__ import annotations

import json

import pytest

from node.certificate.jsonmodel import MAX_DEPTH, JsonModelError, certificate_from_json, to_plain
from node.certificate.model import Certificate


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[" * 200_000, "nested deeper than"),
        (b"[" * 200_000 + b"]" * 200_000, "nested deeper than"),
        (b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, "nested deeper than"),
        (b'{"number": ' + b"1" * 5000 + b"}", "not JSON"),
        (b'{"number": -' + b"9" * 4301 + b"}", "not JSON"),
        (b'{"number": "\xff"}', "not JSON"),
    ],
)
def test_hostile_json_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(JsonModelError, match=message):
        certificate_from_json(data)


def test_brackets_inside_strings_do_not_count(phyto: Certificate) -> None:
    plain = to_plain(phyto)
    plain["consignment"]["items"][0]["descriptions"] = ["[[[{{{" * 1000 + '\\"]]]' * 1000]
    assert certificate_from_json(json.dumps(plain)).number == phyto.number


def test_the_depth_limit_is_far_above_the_model(phyto: Certificate) -> None:
    nested = json.dumps(to_plain(phyto))
    # The deepest legitimate value (a treatment's measure) is a handful of levels down.
    assert MAX_DEPTH >= 4 * 8
    assert certificate_from_json(nested).number == phyto.number
    with pytest.raises(JsonModelError, match=f"nested deeper than {MAX_DEPTH}"):
        certificate_from_json("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    with pytest.raises(JsonModelError, match="expected an object, got a list"):
        certificate_from_json("[" * MAX_DEPTH + "]" * MAX_DEPTH)


@pytest.mark.parametrize(
    "quantity",
    ["1e999999999", "1e-999999999", "-1E+100", "0." + "0" * 80 + "1", "9" * 70],
)
def test_a_decimal_too_long_to_write_out_is_refused(phyto: Certificate, quantity: str) -> None:
    # Written out in plain notation, as the XML needs it, 1e999999999 is a gigabyte.
    plain = to_plain(phyto)
    plain["consignment"]["items"][0]["packages"][0]["quantity"] = quantity
    with pytest.raises(JsonModelError, match=r"packages\[0\]\.quantity: .*more than 64 digits"):
        certificate_from_json(json.dumps(plain))


def test_a_long_value_is_shown_shortened_in_the_refusal(phyto: Certificate) -> None:
    plain = to_plain(phyto)
    plain["issue_datetime"] = "x" * 100_000
    with pytest.raises(JsonModelError) as caught:
        certificate_from_json(json.dumps(plain))
    assert len(str(caught.value)) < 200
