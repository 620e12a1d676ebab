"""An importer's answer as SPSAcknowledgement (node.envelope.acknowledgement): what we
write is valid against UN/CEFACT's SPSAcknowledgement schema, reads back as written,
and what others write is read leniently where that is safe and refused otherwise."""

from __future__ import annotations

import contextlib
import shutil
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from node.envelope.acknowledgement import (
    ACK_NS,
    Acknowledgement,
    MalformedAcknowledgementError,
    acknowledgement_text,
    acknowledgement_xml,
    is_acknowledgement,
    parse_acknowledgement,
)
from node.envelope.response import Decision
from tests.conftest import shared_dir

AT = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:21"


def _answer(decision: Decision, text: str | None = None) -> Acknowledgement:
    return Acknowledgement(
        certificate_number="NL-2026-0001",
        certificate_type="851",
        decision=decision,
        issued_at=AT,
        text=text,
    )


ANSWERS = [
    _answer(Decision.ACCEPTED),
    _answer(Decision.REJECTED, "the consignment carried live Bactrocera"),
    _answer(Decision.CORRECTION_REQUESTED, "add the treatment date"),
]


@pytest.mark.parametrize("answer", ANSWERS, ids=lambda a: a.decision.value)
def test_an_answer_reads_back_as_written(answer: Acknowledgement) -> None:
    assert parse_acknowledgement(acknowledgement_xml(answer)) == answer
    assert parse_acknowledgement(acknowledgement_text(answer).encode()) == answer


def test_the_status_codes_are_those_of_un_cefact_4405() -> None:
    codes = [
        etree.fromstring(acknowledgement_xml(a)).findtext(f".//{{{RAM}}}StatusCode")
        for a in ANSWERS
    ]
    assert codes == ["39", "41", "41"]
    correction = etree.fromstring(acknowledgement_xml(ANSWERS[2]))
    reason = correction.findtext(f".//{{{RAM}}}ReasonInformation")
    assert reason == "Correction requested: add the treatment date"


@pytest.fixture(scope="module")
def ack_schema(tmp_path_factory: pytest.TempPathFactory) -> etree.XMLSchema:
    """UN/CEFACT's SPSAcknowledgement_17p0.xsd (D17A) over the complete RAM 21p0 extract
    of the INTERCOM set (the official RAM could not be obtained: SOURCES.md), laid out as
    the schemas' relative imports expect."""
    xsd = shared_dir() / "xsd"
    root = tmp_path_factory.mktemp("ack-xsd") / "set"
    shutil.copytree(xsd / "nonofficial-intercom-estandar", root)
    standard = root / "data" / "standard"
    official = xsd / "uncefact-D17A" / "data" / "standard"
    shutil.copy(official / "SPSAcknowledgement_17p0.xsd", standard)
    return etree.XMLSchema(etree.parse(str(standard / "SPSAcknowledgement_17p0.xsd")))


@pytest.mark.shared
@pytest.mark.parametrize("answer", ANSWERS, ids=lambda a: a.decision.value)
def test_what_we_write_is_valid_against_the_un_cefact_schema(
    answer: Acknowledgement, ack_schema: etree.XMLSchema
) -> None:
    document = etree.fromstring(acknowledgement_xml(answer))
    assert ack_schema.validate(document), ack_schema.error_log


def _document(status: str, *, reasons: str = "", reference: str | None = None) -> bytes:
    ref = (
        reference
        if reference is not None
        else "<ram:ReferenceSPSReferencedDocument><ram:ID>NL-9</ram:ID>"
        "</ram:ReferenceSPSReferencedDocument>"
    )
    return (
        f'<rsm:SPSAcknowledgement xmlns:rsm="{ACK_NS}" xmlns:ram="{RAM}" xmlns:udt="{UDT}">'
        "<rsm:SPSAcknowledgementDocument>"
        "<ram:IssueDateTime><udt:DateTimeString>2026-12-07T12:00:00</udt:DateTimeString>"
        f"</ram:IssueDateTime><ram:StatusCode>{status}</ram:StatusCode>{reasons}{ref}"
        "</rsm:SPSAcknowledgementDocument></rsm:SPSAcknowledgement>"
    ).encode()


def test_other_systems_answers_are_read_leniently_where_safe() -> None:
    # No offset: read as UTC; no TypeCode: unknown type; several reasons, spread over
    # lines, joined on one.
    read = parse_acknowledgement(
        _document(
            "41",
            reasons="<ram:ReasonInformation>pest\n  found</ram:ReasonInformation>"
            "<ram:ReasonInformation>  at  inspection </ram:ReasonInformation>",
        )
    )
    assert read.issued_at == datetime(2026, 12, 7, 12, tzinfo=UTC)
    assert (read.certificate_number, read.certificate_type) == ("NL-9", "")
    assert (read.decision, read.text) == (Decision.REJECTED, "pest found at inspection")
    assert parse_acknowledgement(_document("41")).text == "no reason given"
    # An offset is kept as the instant it names.
    shifted = _document("39").replace(b"12:00:00<", b"12:00:00+03:00<")
    assert parse_acknowledgement(shifted).issued_at == datetime(
        2026, 12, 7, 12, tzinfo=timezone(timedelta(hours=3))
    )


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "not a readable SPSAcknowledgement"),
        (b"<a/>", "root element is a, not SPSAcknowledgement"),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>',
            "not a readable SPSAcknowledgement",
        ),
        (_document("42"), "StatusCode '42' is neither 39"),
        (_document(""), "StatusCode is empty"),
        (_document("39", reference=""), "ReferenceSPSReferencedDocument is missing"),
        (
            _document("39", reference="<ram:ReferenceSPSReferencedDocument/>"),
            "ReferenceSPSReferencedDocument/ID is missing",
        ),
        (
            _document(
                "39",
                reference="<ram:ReferenceSPSReferencedDocument><ram:ID>"
                + "N" * 129
                + "</ram:ID></ram:ReferenceSPSReferencedDocument>",
            ),
            "1 to 128 printable characters",
        ),
        (_document("39").replace(b"2026-12-07T12:00:00", b"yesterday"), "not an ISO 8601"),
        (b"<a>" * 40 + b"</a>" * 40, "not a readable SPSAcknowledgement"),
        (b"<x>" + b"y" * (70 * 1024) + b"</x>", "not a readable SPSAcknowledgement"),
    ],
)
def test_hostile_or_malformed_documents_are_refused_saying_why(data: bytes, why: str) -> None:
    with pytest.raises(MalformedAcknowledgementError) as raised:
        parse_acknowledgement(data)
    assert why in str(raised.value)


@given(st.binary(max_size=512))
def test_no_bytes_make_the_reader_raise_anything_else(data: bytes) -> None:
    with contextlib.suppress(MalformedAcknowledgementError):
        parse_acknowledgement(data)


def test_an_acknowledgement_is_told_from_a_certificate(phyto_xml: bytes) -> None:
    assert is_acknowledgement(acknowledgement_xml(ANSWERS[0]))
    assert not is_acknowledgement(phyto_xml)
