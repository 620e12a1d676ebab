"""The SOAP core's halves are each other's inverse, for every operation and any text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from node import ippc as soap
from node.errors import InputError
from node.ippc import (
    HUB,
    MAX_TEXT_BYTES,
    RESPONSE_OF,
    SOAP11,
    TNS,
    AcknowledgeFailedEnvelopeReceipt,
    AdvancedAcknowledgeEnvelopeReceipt,
    DeliverEnvelope,
    DeliverEnvelopeResponse,
    Envelope,
    EnvelopeForwarding,
    EnvelopeHeader,
    FaultCode,
    GetImportEnvelopeHeaders,
    GetImportEnvelopeHeadersResponse,
    GetUnitMeasuresResponse,
    HubFault,
    PULLImportEnvelopeResponse,
    SoapError,
    TrackingState,
    UnitMeasure,
    UnitMeasureType,
    build_request,
    parse_request,
    parse_response,
    render_fault,
    render_response,
    response_type,
    soap_action,
)
from tests.unit.ippc.strategies import XML_CHARS, instances, requests, responses

HEADER = EnvelopeHeader(
    from_="NL",
    to="KE",
    certificate_type=851,
    certificate_status=70,
    nppo_certificate_number="NL-2024-0001",
)
ENVELOPE = Envelope.of(HEADER, "PHNlYWxlZD4=")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(requests)
def test_build_request_then_parse_request_is_identity(request: Any) -> None:
    assert parse_request(build_request(request)) == request


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(responses)
def test_render_response_then_parse_response_is_identity(response: Any) -> None:
    assert parse_response(type(response), render_response(response)) == response


@given(st.text(XML_CHARS, min_size=1, max_size=200_000))
@settings(max_examples=20, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_content_round_trips_exactly(content: str) -> None:
    request = DeliverEnvelope(Envelope.of(HEADER, content))
    parsed = parse_request(build_request(request))
    assert isinstance(parsed, DeliverEnvelope)
    assert parsed.env.content == content


def test_a_large_sealed_envelope_round_trips() -> None:
    content = "QUJD" * (MAX_TEXT_BYTES // 4)
    request = DeliverEnvelope(Envelope.of(HEADER, content))
    assert parse_request(build_request(request)) == request


def test_content_over_the_text_limit_is_refused_saying_so() -> None:
    body = build_request(DeliverEnvelope(Envelope.of(HEADER, "A" * (MAX_TEXT_BYTES + 1))))
    with pytest.raises(SoapError, match=f"over {MAX_TEXT_BYTES} bytes") as raised:
        parse_request(body)
    assert raised.value.fault_code is FaultCode.CLIENT


def test_plain_ephyto_xml_as_content_stays_a_string(phyto_xml: bytes) -> None:
    request = DeliverEnvelope(Envelope.of(HEADER, phyto_xml.decode()))
    body = build_request(request)
    assert b"<rsm:SPSCertificate" not in body  # escaped text, not nested elements
    assert parse_request(body) == request


def test_every_request_has_a_response_class() -> None:
    for request_cls, response_cls in RESPONSE_OF.items():
        assert response_cls.__name__ == request_cls.__name__ + "Response"
    assert response_type(GetImportEnvelopeHeaders()) is GetImportEnvelopeHeadersResponse


def test_request_wire_names_and_namespaces_follow_the_wsdl() -> None:
    env = Envelope.of(HEADER, "x")
    env = Envelope(**{**_fields(env), "forwardings": (EnvelopeForwarding("FR", "H-1"),)})
    root = etree.fromstring(build_request(DeliverEnvelope(env)))
    ns = {"s": SOAP11, "t": TNS, "h": HUB}
    wrapper = root.find("s:Body/t:DeliverEnvelope/t:env", ns)
    assert wrapper is not None
    assert [etree.QName(c).localname for c in wrapper] == [
        "From",
        "To",
        "CertificateType",
        "CertificateStatus",
        "NPPOCertificateNumber",
        "Forwardings",
        "Content",
    ]
    assert {etree.QName(c).namespace for c in wrapper} == {HUB}
    assert wrapper.findtext("h:Forwardings/h:EnvelopeForwarding/h:HubDeliveryNumber", None, ns)


def test_code_list_entries_are_tns_qualified_with_unqualified_children() -> None:
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    body = render_response(
        GetUnitMeasuresResponse((UnitMeasure(True, "KGM", when, type=UnitMeasureType.WEIGHT),))
    )
    root = etree.fromstring(body)
    entry = root.find(f"{{{SOAP11}}}Body/{{{TNS}}}GetUnitMeasuresResponse/{{{TNS}}}UnitMeasure")
    assert entry is not None
    assert entry.findtext("lastModified") == "2024-05-01T12:00:00+00:00"
    assert entry.findtext("type") == "WEIGHT"


def test_empty_array_results_are_written_so_clients_see_an_empty_list() -> None:
    body = render_response(PULLImportEnvelopeResponse())
    assert f"{{{TNS}}}PULLImportEnvelopesResult".encode() not in body
    root = etree.fromstring(body)
    assert root.find(f".//{{{TNS}}}PULLImportEnvelopesResult") is not None


def test_tracking_states_are_the_wsdl_enumeration() -> None:
    assert [s.value for s in TrackingState] == [
        "PendingDelivery",
        "Delivered",
        "FailedDelivery",
        "EnvelopeNotExists",
        "DeliveredWithWarnings",
        "DeliveredNotReadable",
    ]
    header = EnvelopeHeader(**{**_fields(HEADER), "hub_tracking_info": TrackingState.DELIVERED})
    parsed = parse_response(
        DeliverEnvelopeResponse, render_response(DeliverEnvelopeResponse(header))
    )
    assert parsed.result is not None
    assert parsed.result.hub_tracking_info == TrackingState.DELIVERED


def test_envelope_splits_into_header_and_content() -> None:
    assert ENVELOPE.header == HEADER
    assert ENVELOPE.content == "PHNlYWxlZD4="


def test_soap_actions_follow_the_binding() -> None:
    assert (
        soap_action("DeliverEnvelope") == "http://ephyto.ippc.int/IDeliveryService/DeliverEnvelope"
    )
    # The binding keeps an older name for this one.
    assert soap_action("AdvancedAcknowledgeEnvelopeReceipt").endswith(
        "/NegativeAcknowledgeEnvelopeReceipt"
    )


def test_acknowledgements_carry_their_reason() -> None:
    warned = AdvancedAcknowledgeEnvelopeReceipt("H-1", "box 2: unknown code")
    failed = AcknowledgeFailedEnvelopeReceipt("H-2", "signature does not verify")
    assert b"<ep:warningMessage>box 2: unknown code<" in build_request(warned)
    assert b"<ep:message>signature does not verify<" in build_request(failed)


@given(st.text(XML_CHARS, max_size=80))
def test_a_fault_reads_back_as_hub_fault_with_its_message(reason: str) -> None:
    with pytest.raises(HubFault) as raised:
        parse_response(DeliverEnvelopeResponse, render_fault(FaultCode.CLIENT, reason))
    line = " ".join(reason.split()) or "request refused"
    assert (raised.value.fault_code, raised.value.reason, raised.value.message) == (
        "Client",
        line,
        line,
    )
    assert str(raised.value) == line


def test_a_fault_reason_xml_cannot_carry_is_still_sent() -> None:
    body = render_fault(FaultCode.CLIENT, "bad \x00 byte \ud800")
    with pytest.raises(HubFault, match="bad \\? byte \\?"):
        parse_response(DeliverEnvelopeResponse, body)


def test_fault_structure_and_one_line_reason() -> None:
    root = etree.fromstring(render_fault(FaultCode.SERVER, "store\nunavailable"))
    fault = root.find(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault")
    assert fault is not None
    assert fault.findtext("faultcode") == "soap:Server"
    assert fault.findtext("faultstring") == "store unavailable"
    assert fault.findtext(f"detail/{{{TNS}}}HubWebException/{{{TNS}}}message") == (
        "store unavailable"
    )


def test_soap_error_is_an_input_error_with_a_code() -> None:
    error = SoapError(FaultCode.CLIENT, "missing\n  thing")
    assert isinstance(error, InputError)
    assert error.reason == "missing thing"
    assert error.fault_code is FaultCode.CLIENT


def test_values_xml_cannot_carry_are_refused_on_both_sides() -> None:
    with pytest.raises(SoapError) as raised:
        build_request(DeliverEnvelope(Envelope.of(HEADER, "a\x00b")))
    assert raised.value.fault_code is FaultCode.CLIENT
    bad = EnvelopeHeader(**{**_fields(HEADER), "certificate_type": 2**31})
    with pytest.raises(SoapError) as raised:
        render_response(DeliverEnvelopeResponse(bad))
    assert raised.value.fault_code is FaultCode.SERVER


def test_a_reply_for_another_operation_is_refused() -> None:
    body = render_response(DeliverEnvelopeResponse(HEADER))
    with pytest.raises(SoapError, match="expected"):
        parse_response(GetImportEnvelopeHeadersResponse, body)


def test_public_api_is_exported() -> None:
    for name in soap.__all__:
        assert hasattr(soap, name)


@given(instances(Envelope))
def test_header_and_content_recombine(envelope: Envelope) -> None:
    assert Envelope.of(envelope.header, envelope.content) == envelope


def _fields(value: Any) -> dict[str, Any]:
    return {name: getattr(value, name) for name in value.__dataclass_fields__}
