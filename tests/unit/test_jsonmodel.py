"""The JSON model: clear, located refusals of bad input."""

from __future__ import annotations

import json

import pytest

from node.certificate.jsonmodel import JsonModelError, certificate_from_json, to_plain
from node.certificate.model import Certificate


def _with(cert: Certificate, path: list[object], value: object) -> bytes:
    plain = to_plain(cert)
    target = plain
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(plain).encode()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["number"], 42, "$.number: expected a string, got a number"),
        (["issue_datetime"], "yesterday", "$.issue_datetime: not an ISO 8601 date-time"),
        (
            ["consignment", "items", 0, "sequence"],
            "one",
            "$.consignment.items[0].sequence: expected a whole number",
        ),
        (
            ["consignment", "items", 0, "net_weight", "value"],
            "heavy",
            "net_weight.value: not a decimal number",
        ),
        (["consignment", "items", 0, "net_weight", "value"], "NaN", "not a finite decimal"),
        (["consignment", "items"], {}, "$.consignment.items: expected a list, got an object"),
        (
            ["consignment", "consignor", "nickname"],
            "x",
            "$.consignment.consignor: unknown field 'nickname'",
        ),
        (["consignment", "consignee", "name"], "bad\u0000name", "U+0000 cannot appear in XML"),
        (["consignment", "items", 0, "sequence"], True, "expected a whole number, got a boolean"),
    ],
)
def test_bad_model_is_refused_with_its_path(
    phyto: Certificate, path: list[object], value: object, message: str
) -> None:
    with pytest.raises(JsonModelError) as caught:
        certificate_from_json(_with(phyto, path, value))
    assert message in str(caught.value)


def test_missing_required_field(phyto: Certificate) -> None:
    plain = to_plain(phyto)
    del plain["consignment"]["import_country"]
    with pytest.raises(JsonModelError, match=r"\$\.consignment: missing field 'import_country'"):
        certificate_from_json(json.dumps(plain))


@pytest.mark.parametrize("data", [b"", b"{", b"[]", b"\xff\xfe", b"null", b'"text"'])
def test_not_a_model_at_all(data: bytes) -> None:
    with pytest.raises(JsonModelError):
        certificate_from_json(data)


def test_text_may_be_a_string_or_an_object(phyto: Certificate) -> None:
    plain = to_plain(phyto)
    assert plain["consignment"]["consignee"]["name"] == {
        "value": "上海花卉进出口有限公司",
        "language": "zh",
    }
    assert plain["consignment"]["consignor"]["name"] == "Bloembollen Export B.V."
