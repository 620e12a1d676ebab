"""The header/document binding (node.envelope.binding) and its vectors (issue 11)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from node.certificate.model import Certificate
from node.certificate.validate import Report, Validator
from node.certificate.xml_build import to_xml_bytes
from node.certificate.xml_parse import Routing
from node.envelope.binding import (
    MAX_SHOWN_CHARS,
    SOURCES,
    Claim,
    DocumentFields,
    DocumentMismatchError,
    check_binding,
    shown,
)
from node.envelope.errors import EnvelopeError
from node.envelope.header import EnvelopeHeader
from node.errors import InputError
from node.web.exchange import require_bound
from tests.binding_documents import certificate

VECTOR = json.loads(
    (Path(__file__).parents[1] / "vectors" / "binding-v1.json").read_text(encoding="utf-8")
)
CASES = [pytest.param(case, id=case["name"]) for case in VECTOR["cases"]]


def _claim(header: dict[str, str]) -> Claim:
    return Claim(
        sender=header["from"],
        certificate_number=header["certificate_number"],
        certificate_type=header["certificate_type"],
        certificate_status=header["certificate_status"],
    )


def _fields(document: dict[str, str]) -> DocumentFields:
    return DocumentFields(
        number=document["number"],
        type_code=document["type_code"],
        status_code=document["status_code"],
        issuing_country=document["export_country"],
    )


def _verdict(claim: Claim, fields: DocumentFields) -> tuple[str, list[str]]:
    try:
        check_binding(claim, fields)
    except DocumentMismatchError as e:
        for name in e.fields:
            assert name in str(e)
        return "refused", list(e.fields)
    return "accepted", []


def _expected(case: dict[str, Any]) -> tuple[str, list[str]]:
    return case["verdict"], case.get("fields", [])


# --- the vectors ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_vector_case(case: dict[str, Any]) -> None:
    assert _verdict(_claim(case["header"]), _fields(case["document"])) == _expected(case)


@pytest.mark.parametrize("case", CASES)
def test_vector_case_through_a_real_document(
    case: dict[str, Any], phyto: Certificate, reexport: Certificate, validator: Validator
) -> None:
    """The document's values are read from the elements the vector names, in real XML."""
    values = case["document"]
    base = reexport if values["type_code"] == "657" else phyto
    cert = replace(
        certificate(
            base,
            number=values["number"],
            exporter=values["export_country"],
            importer="ZZ",
            status=values["status_code"],
        ),
        type_code=values["type_code"],
    )
    routing = validator.validate(to_xml_bytes(cert)).routing
    assert routing is not None
    assert _verdict(_claim(case["header"]), DocumentFields.of(routing)) == _expected(case)


def test_the_vector_names_the_elements_the_check_reads() -> None:
    assert {name: m["element"] for name, m in VECTOR["members"].items()} == SOURCES
    # Every header member, and only those, is compared.
    assert set(SOURCES) == {"certificate_number", "certificate_type", "certificate_status", "from"}


def test_the_vector_covers_both_verdicts_and_every_member() -> None:
    verdicts = {case["verdict"] for case in VECTOR["cases"]}
    named = {name for case in VECTOR["cases"] for name in case.get("fields", [])}
    assert verdicts == {"accepted", "refused"}
    assert named == set(SOURCES)


# --- the error --------------------------------------------------------------------------------


def test_the_refusal_names_the_field_both_values_and_the_element() -> None:
    claim = Claim(
        sender="NL", certificate_number="NL-HDR-1", certificate_type="851", certificate_status="70"
    )
    fields = DocumentFields(
        number="NL-BODY-2", type_code="851", status_code="70", issuing_country="NL"
    )
    with pytest.raises(DocumentMismatchError) as caught:
        check_binding(claim, fields)
    error = caught.value
    assert isinstance(error, EnvelopeError) and isinstance(error, InputError)
    assert error.fields == ("certificate_number",)
    assert str(error) == (
        "the envelope header does not match its document: certificate_number is 'NL-HDR-1'"
        " in the header but 'NL-BODY-2' in the document (rsm:SPSExchangedDocument/ram:ID)"
    )


def test_the_claim_of_a_header_is_its_four_members() -> None:
    header = EnvelopeHeader(
        message_id="0b6f4d0e-4d2a-4c1e-9a57-3f8d2b1c6e90",
        from_country="AE",
        to_country="RU",
        certificate_type="657",
        certificate_status="40",
        certificate_number="AE-RX-1",
        created=datetime(2026, 11, 20, 9, 15, tzinfo=UTC),
    )
    assert Claim.of(header) == Claim(
        sender="AE", certificate_number="AE-RX-1", certificate_type="657", certificate_status="40"
    )


def test_the_issuing_country_of_both_types_is_the_export_country(
    phyto: Certificate, reexport: Certificate
) -> None:
    assert DocumentFields.of(Routing.of(phyto)).issuing_country == "NL"
    # The 657 sample: goods from KE (RPCCO), re-exported by AE, whose NPPO issues it.
    assert DocumentFields.of(Routing.of(reexport)).issuing_country == "AE"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("NL-2026-1", "'NL-2026-1'"),
        ("NL\x00-\x1b[2J2026\n-1\x85", "'NL-[2J2026-1'"),
        ("NL\u2028-\u2029\u202e1\u200b", "'NL-1'"),
        ("检疫-1", "'检疫-1'"),
    ],
)
def test_values_are_shown_without_control_or_invisible_characters(
    value: str, expected: str
) -> None:
    assert shown(value) == expected


def test_long_values_are_cut_short() -> None:
    assert shown("x" * MAX_SHOWN_CHARS) == repr("x" * MAX_SHOWN_CHARS)
    cut = shown("x" * (MAX_SHOWN_CHARS + 1))
    assert cut == repr("x" * (MAX_SHOWN_CHARS - 3) + "...")
    # A huge value hidden behind control characters is still cut, and cheaply.
    assert shown("\x00" * 10_000_000 + "y") == repr("...")
    assert len(shown("z" * 10_000_000)) == MAX_SHOWN_CHARS + 2  # the quotes


# --- the shell's use of it: what can be read is bound ----------------------------------------


def test_a_document_that_cannot_be_read_has_nothing_to_bind(validator: Validator) -> None:
    claim = Claim(
        sender="NL", certificate_number="NL-1", certificate_type="851", certificate_status="70"
    )
    require_bound(claim, Report(()))  # refused as hostile XML: no root at all
    require_bound(claim, validator.validate(b"<not-an-ephyto/>"))


def test_an_invalid_readable_document_is_bound(validator: Validator, phyto: Certificate) -> None:
    xml = to_xml_bytes(phyto).replace(b"<rsm:SPSConsignment>", b"<rsm:SPSConsignment><x/>", 1)
    report = validator.validate(xml)
    assert not report.valid
    claim = Claim(
        sender="NL",
        certificate_number=phyto.number,
        certificate_type="851",
        certificate_status="70",
    )
    require_bound(claim, report)
    with pytest.raises(DocumentMismatchError):
        require_bound(replace(claim, sender="US"), report)
