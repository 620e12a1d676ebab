"""Findings on XML built from the JSON model are located by the JSON path of the model."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from lxml import etree

from node.certificate import model as m
from node.certificate.findings import xpath_of
from node.certificate.json_paths import json_path
from node.certificate.jsonmodel import to_plain
from node.certificate.validate import Validator
from node.certificate.xml_build import build_tree, to_xml_bytes
from tests.unit.test_roundtrip import certificates

_INDEX = re.compile(r"\[(\d+)\]")
# The members of a JSON object that an element's text holds (Text, Measure, Attachment);
# other objects (an empty party, say) are aggregates with nothing written.
_HOLDS = {"value", "data"}


def _at(plain: Any, path: str) -> Any:
    """The value at a JSON path such as $.consignment.items[0].net_weight; KeyError or
    IndexError when there is none."""
    assert path.startswith("$"), path
    value = plain
    for part in re.findall(r"\.[a-z_]+|\[\d+\]", path[1:]):
        value = value[int(part[1:-1])] if part.startswith("[") else value[part[1:]]
    return value


def _shown(value: Any) -> str:
    """What the XML element built from a JSON value holds as its text."""
    if isinstance(value, dict):
        return str(value.get("value", value.get("data")))  # Text, Measure, Attachment
    return str(value)


def _every_element_maps_to_its_value(cert: m.Certificate) -> None:
    plain = to_plain(cert)
    for element in build_tree(cert).iter(etree.Element):
        path = json_path(xpath_of(element))
        value = _at(plain, path)  # every path names a value that is there
        if len(element) == 0 and not (isinstance(value, dict) and not _HOLDS.intersection(value)):
            # A leaf holds its value: the path is that value's, not just an ancestor's.
            assert (element.text or "") == _shown(value), (xpath_of(element), path)


@pytest.mark.parametrize("sample", ["phyto", "reexport"])
def test_every_element_of_the_samples_maps_to_the_json_value_it_was_built_from(
    sample: str, request: pytest.FixtureRequest
) -> None:
    _every_element_maps_to_its_value(request.getfixturevalue(sample))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(certificates)
def test_every_element_of_any_certificate_maps_to_the_json_value_it_was_built_from(
    cert: m.Certificate,
) -> None:
    _every_element_maps_to_its_value(cert)


@pytest.mark.parametrize(
    ("xpath", "path"),
    [
        ("/rsm:SPSCertificate", "$"),
        ("/rsm:SPSCertificate/rsm:SPSExchangedDocument", "$"),
        ("/rsm:SPSCertificate/rsm:SPSExchangedDocument/ram:ID", "$.number"),
        (
            "/rsm:SPSCertificate/rsm:SPSConsignment/ram:IncludedSPSConsignmentItem"
            "/ram:IncludedSPSTradeLineItem[2]/ram:ScientificName",
            "$.consignment.items[1].scientific_names[0]",
        ),
        (
            "/rsm:SPSCertificate/rsm:SPSConsignment/ram:IncludedSPSConsignmentItem"
            "/ram:IncludedSPSTradeLineItem",
            "$.consignment.items[0]",
        ),
        (
            "/rsm:SPSCertificate/rsm:SPSConsignment/ram:ExaminationSPSEvent",
            "$.consignment",
        ),
        ("not an xpath", "$"),
        ("/other:Root/ram:ID", "$"),
    ],
)
def test_paths(xpath: str, path: str) -> None:
    assert json_path(xpath) == path


def test_a_finding_on_a_json_submission_points_into_the_json(
    phyto: m.Certificate, validator: Validator
) -> None:
    item = phyto.consignment.items[0]
    broken = replace(
        phyto,
        consignment=replace(phyto.consignment, items=(replace(item, scientific_names=()),)),
    )
    report = validator.validate(to_xml_bytes(broken))
    paths = {json_path(f.xpath) for f in report.findings}
    assert "$.consignment.items[0]" in paths, report.findings
    assert not any(_INDEX.search(p) is None and p.startswith("/") for p in paths)
    json.dumps(sorted(paths))  # plain strings


def test_every_field_of_the_model_has_its_elements() -> None:
    from node.certificate.json_paths import _FIELDS

    leaves = {m.Text, m.Measure, m.Attachment}
    aggregates = {
        cls
        for cls in vars(m).values()
        if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls not in leaves
    }
    assert set(_FIELDS) == aggregates
    for cls, fields in _FIELDS.items():
        assert sorted(fields.values()) == sorted(f.name for f in dataclasses.fields(cls)), cls
