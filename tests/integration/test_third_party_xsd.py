"""What we build validates against an independent, third-party schema set (INTERCOM)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from node.certificate import safe_xml
from node.certificate.model import Certificate, Measure, Text
from node.certificate.validate import Validator
from node.certificate.xml_build import to_xml_bytes
from node.certificate.xml_parse import certificate_from_tree
from tests.conftest import shared_dir, shared_samples


@pytest.fixture(scope="module")
def intercom() -> etree.XMLSchema:
    root = shared_dir() / "xsd" / "nonofficial-intercom-estandar" / "data" / "standard"
    return etree.XMLSchema(etree.parse(str(root / "SPSCertificate_17p0.xsd")))


def _errors(schema: etree.XMLSchema, data: bytes) -> list[str]:
    schema.validate(etree.fromstring(data))
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def test_bundled_samples_we_build_validate_against_intercom(
    intercom: etree.XMLSchema, phyto: Certificate, reexport: Certificate
) -> None:
    for cert in (phyto, reexport):
        assert _errors(intercom, to_xml_bytes(cert)) == []


def test_shared_samples_rebuilt_by_us_still_validate_against_intercom(
    intercom: etree.XMLSchema,
) -> None:
    for path in shared_samples():
        rebuilt = to_xml_bytes(certificate_from_tree(safe_xml.parse(path.read_bytes())))
        assert _errors(intercom, rebuilt) == []


def test_our_schema_accepts_the_shared_samples(validator: Validator) -> None:
    for path in shared_samples():
        report = validator.validate(path.read_bytes())
        assert report.valid, [str(f) for f in report.findings]
        assert [f for f in report.findings if f.area.value == "Schema"] == []


def test_intercom_and_our_schema_agree_on_a_broken_document(
    intercom: etree.XMLSchema, validator: Validator, phyto: Certificate
) -> None:
    broken = to_xml_bytes(phyto).replace(b"<ram:SequenceNumeric>2<", b"<ram:SequenceNumeric>two<")
    assert _errors(intercom, broken) != []
    report = validator.validate(broken)
    assert not report.valid
    (finding,) = [f for f in report.findings if f.area.value == "Schema"]
    assert "SequenceNumeric" in finding.message


_xml_text = st.text(
    st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters=[chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"]
        + ["\ufffe", "\uffff"],
    ),
    max_size=40,
)
_decimal = st.decimals(
    allow_nan=False, allow_infinity=False, places=3, min_value=0, max_value=Decimal("1e9")
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    consignor=_xml_text,
    consignee=_xml_text,
    produce=_xml_text,
    botanical=_xml_text,
    weight=_decimal,
    when=st.datetimes(),
)
def test_what_we_build_from_any_values_validates_against_both_schemas(
    intercom: etree.XMLSchema,
    validator: Validator,
    phyto: Certificate,
    consignor: str,
    consignee: str,
    produce: str,
    botanical: str,
    weight: Decimal,
    when: datetime,
) -> None:
    c = phyto.consignment
    item = replace(
        c.items[0],
        descriptions=(Text(produce),),
        scientific_names=(Text(botanical),),
        net_weight=Measure(weight, "KGM"),
    )
    cert = replace(
        phyto,
        issue_datetime=when,
        consignment=replace(
            c,
            consignor=replace(c.consignor, name=Text(consignor)),
            consignee=replace(c.consignee, name=Text(consignee)),
            items=(item, *c.items[1:]),
        ),
    )
    data = to_xml_bytes(cert)
    assert _errors(intercom, data) == []
    report = validator.validate(data)
    assert [f for f in report.findings if f.area.value == "Schema"] == []
