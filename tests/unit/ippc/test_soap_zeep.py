"""zeep, reading the IPPC Hub's own WSDL, writes requests we read and reads what we write.

The WSDL is a third-party test oracle in ../shared/conformance; it is never copied here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from enum import Enum
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from lxml import etree

from node.ippc import (
    CONTENT_TYPE,
    HUB,
    REQUESTS,
    TNS,
    AdditionalDeclaration,
    AllowedDocument,
    Channel,
    ChannelRule,
    Condition,
    CountryResponseEnvelope,
    DeliverCountryResponseEnvelope,
    DeliverEnvelope,
    DeliverEnvelopeResponse,
    DocumentKind,
    Envelope,
    EnvelopeForwarding,
    EnvelopeHeader,
    EPhytoEnvelope,
    FaultCode,
    GetImportEnvelopeHeaders,
    IntendedUse,
    MeanOfTransport,
    Nppo,
    PackageType,
    Pesticide,
    ProductDescription,
    SigningCertificate,
    Statement,
    TrackingState,
    TreatmentType,
    UnitMeasure,
    ValidationResult,
    XmlTree,
    operation_name,
    parse_request,
    render_fault,
    render_response,
    soap_action,
)
from node.ippc.codec import Xml
from tests.conftest import shared_dir
from tests.unit.ippc.strategies import requests, responses

zeep = pytest.importorskip("zeep")

pytestmark = pytest.mark.shared

WSDL_TYPES: Mapping[type, str] = {
    EnvelopeHeader: f"{{{HUB}}}EnvelopeHeader",
    Envelope: f"{{{HUB}}}Envelope",
    CountryResponseEnvelope: f"{{{HUB}}}CountryResponseEnvelope",
    EPhytoEnvelope: f"{{{HUB}}}ePhytoEnvelope",
    EnvelopeForwarding: f"{{{HUB}}}EnvelopeForwarding",
    Nppo: f"{{{HUB}}}Nppo",
    Channel: f"{{{HUB}}}Channel",
    AllowedDocument: f"{{{TNS}}}allowedDocument",
    DocumentKind: f"{{{TNS}}}certificateType",
    SigningCertificate: f"{{{TNS}}}signingCertificate",
    ChannelRule: f"{{{TNS}}}channelRule",
    ValidationResult: f"{{{TNS}}}validationResult",
    AdditionalDeclaration: f"{{{TNS}}}additionalDeclaration",
    Condition: f"{{{TNS}}}condition",
    IntendedUse: f"{{{TNS}}}intendedUse",
    MeanOfTransport: f"{{{TNS}}}meanOfTransport",
    PackageType: f"{{{TNS}}}packageType",
    Pesticide: f"{{{TNS}}}pesticide",
    ProductDescription: f"{{{TNS}}}productDescription",
    Statement: f"{{{TNS}}}statement",
    TreatmentType: f"{{{TNS}}}treatmentType",
    UnitMeasure: f"{{{TNS}}}unitMeasure",
}


@pytest.fixture(scope="module")
def wsdl() -> str:
    return str(shared_dir() / "wsdl" / "ephyto-hub-DeliveryService.prod.wsdl")


@pytest.fixture(scope="module")
def client(wsdl: str) -> Any:
    return zeep.Client(wsdl)


class _Reply:
    """What zeep's binding reads of an HTTP response."""

    def __init__(self, content: bytes, status_code: int = 200) -> None:
        self.content = content
        self.status_code = status_code
        self.headers = {"Content-Type": CONTENT_TYPE}
        self.encoding = "utf-8"


def zeep_reads(client: Any, operation: str, body: bytes, status: int = 200) -> Any:
    binding = client.service._binding
    return binding.process_reply(client, binding.get(operation), _Reply(body, status))


def test_every_wsdl_operation_is_ours(client: Any) -> None:
    in_wsdl = set(client.service._binding._operations)
    assert set(REQUESTS) == in_wsdl


def test_soap_actions_are_the_bindings(client: Any) -> None:
    for name, operation in client.service._binding._operations.items():
        assert soap_action(name) == operation.soapaction


def test_our_entities_have_the_wsdl_types_fields(client: Any) -> None:
    for cls, qname in WSDL_TYPES.items():
        wsdl_type = client.get_type(qname)
        # zeep stands a `_value_1` in for the empty sequence of a base type; it is no field.
        elements = [e for n, e in wsdl_type.elements if not n.startswith("_value_")]
        theirs = {(e.qname.namespace or "", e.qname.localname) for e in elements}
        theirs |= {("@", name) for name, _ in wsdl_type.attributes}
        ours = {_where(f.metadata["xml"]) for f in dataclasses.fields(cls)}
        assert ours == theirs, cls.__name__


def test_tracking_states_are_the_wsdl_enumeration(wsdl: str) -> None:
    tree = etree.parse(wsdl)
    xs = "http://www.w3.org/2001/XMLSchema"
    values = tree.xpath(
        "//xs:simpleType[@name='HUBTrackingInfo']//xs:enumeration/@value", namespaces={"xs": xs}
    )
    assert [str(v) for v in values] == [s.value for s in TrackingState]


def test_a_zeep_deliver_envelope_is_read(client: Any) -> None:
    message = client.create_message(
        client.service,
        "DeliverEnvelope",
        env={
            "From": "NL",
            "To": "KE",
            "CertificateType": 851,
            "CertificateStatus": 70,
            "NPPOCertificateNumber": "NL-1",
            "Content": "<SPSCertificate>é&</SPSCertificate>",
        },
    )
    request = parse_request(etree.tostring(message))
    assert request == DeliverEnvelope(
        Envelope("NL", "KE", 851, 70, "NL-1", content="<SPSCertificate>é&</SPSCertificate>")
    )


def test_a_zeep_request_without_optional_fields_is_read(client: Any) -> None:
    message = client.create_message(client.service, "GetImportEnvelopeHeaders")
    assert parse_request(etree.tostring(message)) == GetImportEnvelopeHeaders()


def test_a_zeep_country_response_is_read_as_its_tree(client: Any) -> None:
    message = client.create_message(
        client.service,
        "DeliverCountryResponseEnvelope",
        CountryResponseEnvelope={
            "From": "KE",
            "To": "NL",
            "CertificateType": 851,
            "CertificateStatus": 70,
            "NPPOCertificateNumber": "NL-1",
            "SPSAcknowledgement": ACKNOWLEDGEMENT,
        },
    )
    request = parse_request(etree.tostring(message))
    assert isinstance(request, DeliverCountryResponseEnvelope)
    assert request.envelope.header == EnvelopeHeader("KE", "NL", 851, 70, "NL-1")
    tree = etree.fromstring(str(request.envelope.sps_acknowledgement).encode())
    assert etree.QName(tree).localname == "SPSAcknowledgement"
    assert tree.findtext(".//{*}StatusCode") == "39"
    assert tree.findtext(".//{*}ReasonInformation") == "accepted é & <ok>"


# zeep builds a typed tree from its own dictionaries, not from our XML text; the
# operations carrying one have their own zeep tests here and in the integration tests.
_FLAT = requests.filter(
    lambda r: (
        not any(isinstance(getattr(r, f.name), XmlTree) for f in dataclasses.fields(r))
        and not isinstance(getattr(r, "envelope", None), CountryResponseEnvelope | EPhytoEnvelope)
    )
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(request=_FLAT)
def test_any_request_zeep_writes_is_read_back(client: Any, request: Any) -> None:
    message = client.create_message(client.service, operation_name(request), **wire(request))
    assert parse_request(etree.tostring(message)) == request


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(response=responses)
def test_zeep_reads_any_response_we_write(client: Any, response: Any) -> None:
    operation = type(response).__name__.removesuffix("Response")
    read = zeep_reads(client, operation, render_response(response))
    assert _top(_norm(zeep.helpers.serialize_object(read))) == _top(_norm(wire(response)))


def test_zeep_reads_a_deliver_envelope_result(client: Any) -> None:
    header = EnvelopeHeader("NL", "KE", 851, 70, "NL-1", "HUB-9", TrackingState.PENDING_DELIVERY)
    read = zeep_reads(client, "DeliverEnvelope", render_response(DeliverEnvelopeResponse(header)))
    assert (read.hubDeliveryNumber, read.HUBTrackingInfo) == ("HUB-9", "PendingDelivery")


@pytest.mark.parametrize("code", list(FaultCode))
def test_zeep_raises_our_faults_with_our_message(client: Any, code: FaultCode) -> None:
    body = render_fault(code, "unknown recipient NPPO XX")
    with pytest.raises(zeep.exceptions.Fault) as raised:
        zeep_reads(client, "DeliverEnvelope", body, status=500)
    assert raised.value.message == "unknown recipient NPPO XX"
    assert raised.value.code == f"soap:{code.value}"
    detail = raised.value.detail
    assert detail.findtext(f"{{{TNS}}}HubWebException/{{{TNS}}}message") == (
        "unknown recipient NPPO XX"
    )


ACKNOWLEDGEMENT = {
    "SPSAcknowledgementDocument": {
        "IssueDateTime": {"DateTimeString": "2026-12-07T10:00:00Z"},
        "StatusCode": 39,
        "ReasonInformation": {"_value_1": "accepted é & <ok>", "languageID": "en"},
    }
}


def _where(xml: Xml) -> tuple[str, str]:
    return ("@", xml.name) if xml.attribute else (xml.ns, xml.name)


def wire(value: Any) -> Any:
    """A dataclass as zeep's keyword arguments: the WSDL's names, arrays as their wrappers."""
    if isinstance(value, Enum):
        return value.value
    if not dataclasses.is_dataclass(value):
        return value
    out: dict[str, Any] = {}
    for f in dataclasses.fields(value):
        xml: Xml = f.metadata["xml"]
        item = getattr(value, f.name)
        if xml.item is not None:
            keep = item or xml.keep_empty
            out[xml.name] = {xml.item: [wire(i) for i in item]} if keep else None
        elif isinstance(item, tuple):
            out[xml.name] = [wire(i) for i in item]
        else:
            out[xml.name] = wire(item)
    return out


def _norm(value: Any) -> Any:
    """zeep reads empty strings and elements as None, adds base-type placeholders: look past it."""
    if isinstance(value, Mapping):
        fields = {k: _norm(v) for k, v in value.items() if k != "_value_1"}
        # zeep reads an empty complex element (no children, no attributes) as None.
        return None if all(v in (None, []) for v in fields.values()) else fields
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return None if value == "" else value


def _top(value: Any) -> Any:
    """zeep returns a response's only child, and an array wrapper's only child, unwrapped."""
    while isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    return None if value in ({}, []) else value
