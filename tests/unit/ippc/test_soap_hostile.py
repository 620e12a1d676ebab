"""Hostile or wrong requests get a SoapError with a fault code and one clear line, nothing else."""

from __future__ import annotations

import pytest

from node.certificate.safe_xml import XmlLimits
from node.ippc import (
    HUB,
    SOAP11,
    SPS_ACKNOWLEDGEMENT,
    SPS_CERTIFICATE,
    TNS,
    DeliverEnvelope,
    DeliverPhytoEnvelope,
    Envelope,
    EPhytoEnvelope,
    FaultCode,
    GetProfile,
    GetUnitMeasuresResponse,
    SoapError,
    XmlTree,
    build_request,
    parse_request,
    parse_response,
)

HEADERS = (
    f'<h:From xmlns:h="{HUB}">NL</h:From><h:To xmlns:h="{HUB}">KE</h:To>'
    f'<h:CertificateType xmlns:h="{HUB}">851</h:CertificateType>'
    f'<h:CertificateStatus xmlns:h="{HUB}">70</h:CertificateStatus>'
    f'<h:NPPOCertificateNumber xmlns:h="{HUB}">N1</h:NPPOCertificateNumber>'
)


def soap(body: str, header: str = "") -> bytes:
    return (
        f'<s:Envelope xmlns:s="{SOAP11}" xmlns:t="{TNS}" xmlns:h="{HUB}">{header}'
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def deliver(env_children: str) -> bytes:
    return soap(f"<t:DeliverEnvelope><t:env>{env_children}</t:env></t:DeliverEnvelope>")


def refused(body: bytes, match: str, code: FaultCode = FaultCode.CLIENT) -> None:
    with pytest.raises(SoapError, match=match) as raised:
        parse_request(body)
    assert raised.value.fault_code is code
    assert "\n" not in str(raised.value)


def test_a_well_formed_hand_written_request_is_read() -> None:
    request = parse_request(deliver(HEADERS + "<h:Content>x</h:Content>"))
    assert isinstance(request, DeliverEnvelope)
    assert request.env.content == "x"


def test_billion_laughs_is_refused_before_expansion() -> None:
    lol = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(
            f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
            for i in range(1, 10)
        )
        + b"]>"
    )
    refused(lol + soap("<t:GetProfile>&lol9;</t:GetProfile>"), "DTD")


def test_external_entity_is_refused() -> None:
    xxe = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    refused(xxe + soap("<t:GetProfile>&x;</t:GetProfile>"), "DTD")


def test_oversized_body_is_refused() -> None:
    body = build_request(DeliverEnvelope(Envelope("NL", "KE", 851, 70, "N1", content="A" * 5000)))
    with pytest.raises(SoapError, match="over the limit") as raised:
        parse_request(body, XmlLimits(max_bytes=4096))
    assert raised.value.fault_code is FaultCode.CLIENT


def test_deep_nesting_is_refused() -> None:
    refused(soap("<t:GetProfile>" + "<a>" * 40 + "</a>" * 40 + "</t:GetProfile>"), "deeper")


@pytest.mark.parametrize(
    "body",
    [b"", b"   ", b"not xml at all", b"<unclosed", b"\xff\xfe<x/>", b'{"json": true}'],
)
def test_not_xml_is_refused(body: bytes) -> None:
    refused(body, ".")


def test_non_utf8_declared_encoding_is_refused() -> None:
    refused(b'<?xml version="1.0" encoding="ISO-8859-1"?>' + soap("<t:GetProfile/>"), "UTF-8")


def test_soap_12_is_a_version_mismatch() -> None:
    body = b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>'
    refused(body, "SOAP 1.2", FaultCode.VERSION_MISMATCH)


def test_a_root_that_is_no_envelope_is_a_version_mismatch() -> None:
    refused(
        f'<t:GetProfile xmlns:t="{TNS}"/>'.encode(), "not a SOAP 1.1", FaultCode.VERSION_MISMATCH
    )


def test_missing_body_is_refused() -> None:
    refused(f'<s:Envelope xmlns:s="{SOAP11}"><s:Header/></s:Envelope>'.encode(), "no Body")


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("", "0 elements"),
        ("<t:GetProfile/><t:GetActiveNppos/>", "2 elements"),
        ("stray<t:GetProfile/>", "text outside"),
        ("<t:GetProfile/>stray", "text outside"),
    ],
)
def test_the_body_holds_exactly_one_operation(body: str, match: str) -> None:
    refused(soap(body), match)


def test_elements_after_the_body_are_refused() -> None:
    body = f'<s:Envelope xmlns:s="{SOAP11}"><s:Body/><s:Body/></s:Envelope>'.encode()
    refused(body, "after its Body")


def test_unknown_operation_is_refused() -> None:
    refused(
        soap("<t:StealEnvelopes/>"), r"unknown operation \{http://ephyto.ippc.int/\}StealEnvelopes"
    )


def test_known_name_in_a_foreign_namespace_is_unknown() -> None:
    refused(soap('<x:GetProfile xmlns:x="urn:other"/>'), "unknown operation")


def test_a_typed_tree_of_the_wrong_kind_is_refused() -> None:
    wrong = f'<a:SPSAcknowledgement xmlns:a="{SPS_ACKNOWLEDGEMENT}"/>'
    body = soap(
        f"<t:DeliverPhytoEnvelope><t:ePhytoEnvelope>{HEADERS}{wrong}"
        "</t:ePhytoEnvelope></t:DeliverPhytoEnvelope>"
    )
    refused(body, "unexpected element .*SPSAcknowledgement in DeliverPhytoEnvelope/ePhytoEnvelope")


def test_a_phyto_envelope_without_its_envelope_is_refused() -> None:
    refused(soap("<t:DeliverPhytoEnvelope/>"), "missing required element ePhytoEnvelope")


@pytest.mark.parametrize(
    ("tree", "match"),
    [
        ("not xml", "SPSCertificate is not an XML tree"),
        ("<x/>", "SPSCertificate holds a x tree"),
        ('<!DOCTYPE x [<!ENTITY e "e">]><x/>', "SPSCertificate is not an XML tree"),
        (f'<c:SPSCertificate xmlns:c="{SPS_CERTIFICATE}">\ud800</c:SPSCertificate>', "not an"),
    ],
)
def test_a_tree_we_cannot_carry_is_not_sent(tree: str, match: str) -> None:
    envelope = EPhytoEnvelope("NL", "KE", 851, 70, "N1", sps_certificate=XmlTree(tree))
    with pytest.raises(SoapError, match=match):
        build_request(DeliverPhytoEnvelope(envelope))


def test_a_header_we_must_understand_but_do_not_is_refused() -> None:
    header = '<s:Header><x:Sec xmlns:x="urn:sec" s:mustUnderstand="1"/></s:Header>'
    refused(soap("<t:GetProfile/>", header), "must be understood", FaultCode.MUST_UNDERSTAND)


def test_optional_headers_are_ignored() -> None:
    header = (
        '<s:Header><a:Action xmlns:a="http://www.w3.org/2005/08/addressing">x</a:Action></s:Header>'
    )
    assert parse_request(soap("<t:GetProfile/>", header)) == GetProfile()


def test_missing_required_field_is_named() -> None:
    without_to = HEADERS.replace(f'<h:To xmlns:h="{HUB}">KE</h:To>', "")
    refused(deliver(without_to), "missing required element To in DeliverEnvelope/env")
    refused(soap("<t:DeliverEnvelope/>"), "missing required element env in DeliverEnvelope")
    refused(soap("<t:GetEnvelopeTrackingInfo/>"), "hubTrackingNumber")


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("<h:CertificateType>eight</h:CertificateType>", "not a 32-bit integer"),
        ("<h:CertificateType>99999999999</h:CertificateType>", "not a 32-bit integer"),
        ("<h:CertificateType>1_0</h:CertificateType>", "not a 32-bit integer"),
        ("<h:CertificateType><b>1</b></h:CertificateType>", "must hold text"),
    ],
)
def test_wrong_types_are_refused(bad: str, match: str) -> None:
    good = f'<h:CertificateType xmlns:h="{HUB}">851</h:CertificateType>'
    refused(deliver(HEADERS.replace(good, bad)), match)


def test_unknown_and_repeated_elements_are_refused() -> None:
    refused(deliver(HEADERS + "<h:Surprise/>"), r"unexpected element \{.*\}Surprise")
    refused(deliver(HEADERS + f'<h:To xmlns:h="{HUB}">US</h:To>'), "more than once")
    unqualified = HEADERS.replace(f'<h:From xmlns:h="{HUB}">NL</h:From>', "<From>NL</From>")
    refused(deliver(unqualified), "unexpected element From")


def test_nil_required_field_is_refused() -> None:
    xsi = "http://www.w3.org/2001/XMLSchema-instance"
    nil = f'<h:From xmlns:h="{HUB}" xmlns:i="{xsi}" i:nil="true"/>'
    refused(deliver(HEADERS.replace(f'<h:From xmlns:h="{HUB}">NL</h:From>', nil)), "is nil")


def test_too_many_elements_are_refused() -> None:
    many = "<t:ValidationResult/>" * 2000
    with pytest.raises(SoapError, match="more than 1000 elements"):
        parse_request(soap(f"<t:GetProfile>{many}</t:GetProfile>"), XmlLimits(max_elements=1000))


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ("<active>yes</active>", "not a boolean"),
        ("<active>true</active><lastModified>yesterday</lastModified>", "not an xs:dateTime"),
        ("<active>true</active><type>FURLONGS</type>", "not one of WEIGHT"),
    ],
)
def test_a_bad_hub_reply_is_a_server_side_soap_error(entry: str, match: str) -> None:
    body = soap(
        f"<t:GetUnitMeasuresResponse><t:UnitMeasure>{entry}</t:UnitMeasure></t:GetUnitMeasuresResponse>"
    )
    with pytest.raises(SoapError, match=match) as raised:
        parse_response(GetUnitMeasuresResponse, body)
    assert raised.value.fault_code is FaultCode.SERVER
