"""SOAP 1.1 messages of the DeliveryService: requests, responses and faults, as bytes.

The server half reads requests and writes responses and faults; the client half writes
requests and reads responses, raising HubFault for a Fault. Both halves use the same
dataclasses, so each is the other's inverse. Every reader refuses hostile XML first
(node.hostile_xml) and raises SoapError, never anything else, on bad input.
"""

from __future__ import annotations

from typing import TypeVar

from lxml import etree

from node.errors import UnsafeXmlError
from node.hostile_xml import XmlLimits, parse_any
from node.ippc.catalog import REQUESTS, RESPONSE_OF, HubRequest, HubResponse
from node.ippc.codec import decode, encode
from node.ippc.errors import FaultCode, HubFault, SoapError
from node.ippc.names import HUB, SOAP11, SOAP12, TNS

_E = etree._Element
R = TypeVar("R", bound=HubResponse)

# PULLImportEnvelope answers carry several envelopes. One Content is bounded lower, by
# libxml2's 10,000,000-byte text node limit, which the shared safe parser keeps.
SOAP_LIMITS = XmlLimits(max_bytes=24 * 1024 * 1024, max_depth=16, max_elements=200_000)

MAX_TEXT_BYTES = 10_000_000
"""The most one text value (a Content) may hold, in UTF-8 bytes: libxml2's own limit."""

_NSMAP = {"soap": SOAP11, "ep": TNS, "hub": HUB}
_ENVELOPE, _HEADER, _BODY, _FAULT = (
    f"{{{SOAP11}}}{n}" for n in ("Envelope", "Header", "Body", "Fault")
)
_MUST_UNDERSTAND = f"{{{SOAP11}}}mustUnderstand"


def parse_request(body: bytes, limits: XmlLimits = SOAP_LIMITS) -> HubRequest:
    """The typed request in a SOAP 1.1 request; raises SoapError with its fault code."""
    payload = _payload(body, limits, FaultCode.CLIENT)
    name = etree.QName(payload)
    cls = REQUESTS.get(name.localname) if name.namespace == TNS else None
    if cls is None:
        raise SoapError(
            FaultCode.CLIENT, f"unknown operation {{{name.namespace or ''}}}{name.localname}"
        )
    request: HubRequest = decode(payload, cls, name.localname)
    return request


def build_request(request: HubRequest) -> bytes:
    """The SOAP 1.1 request for `request`; raises SoapError if a value cannot be carried."""
    return _message(request, FaultCode.CLIENT)


def render_response(response: HubResponse) -> bytes:
    """The SOAP 1.1 response carrying `response`; raises SoapError (Server) if it cannot."""
    return _message(response, FaultCode.SERVER)


def parse_response(response_type: type[R], body: bytes, limits: XmlLimits = SOAP_LIMITS) -> R:
    """The typed response in a hub's reply; raises HubFault for a Fault, else SoapError."""
    payload = _payload(body, limits, FaultCode.SERVER)
    if payload.tag == _FAULT:
        raise _hub_fault(payload)
    expected = f"{{{TNS}}}{response_type.__name__}"
    if payload.tag != expected:
        raise SoapError(FaultCode.SERVER, f"reply holds {payload.tag}, expected {expected}")
    try:
        return decode(payload, response_type, response_type.__name__)
    except SoapError as e:
        raise SoapError(FaultCode.SERVER, f"hub reply: {e.reason}") from None


def render_fault(code: FaultCode, reason: str) -> bytes:
    """A SOAP 1.1 Fault saying `reason`, also as the WSDL's HubWebException detail."""
    line = " ".join(reason.split()) or "request refused"
    envelope = etree.Element(_ENVELOPE, nsmap=_NSMAP)
    fault = etree.SubElement(etree.SubElement(envelope, _BODY), _FAULT)
    # faultcode is a QName: its prefix must be bound to the SOAP 1.1 namespace in scope.
    etree.SubElement(fault, "faultcode").text = f"soap:{code.value}"
    etree.SubElement(fault, "faultstring").text = _xml_safe(line)
    detail = etree.SubElement(etree.SubElement(fault, "detail"), f"{{{TNS}}}HubWebException")
    etree.SubElement(detail, f"{{{TNS}}}message").text = _xml_safe(line)
    return _bytes(envelope)


def response_type(request: HubRequest) -> type[HubResponse]:
    """The response class answering `request`."""
    cls: type[HubResponse] = RESPONSE_OF[type(request)]
    return cls


def _message(value: HubRequest | HubResponse, code: FaultCode) -> bytes:
    envelope = etree.Element(_ENVELOPE, nsmap=_NSMAP)
    body = etree.SubElement(envelope, _BODY)
    try:
        encode(body, f"{{{TNS}}}{type(value).__name__}", value)
    except ValueError as e:
        raise SoapError(code, f"cannot write {type(value).__name__}: {e}") from None
    return _bytes(envelope)


def _payload(data: bytes, limits: XmlLimits, code: FaultCode) -> _E:
    """The one element in the Body of a SOAP 1.1 envelope."""
    try:
        root = parse_any(data, limits)
    except UnsafeXmlError as e:
        if "Text node too long" in str(e):
            raise SoapError(code, f"a text value is over {MAX_TEXT_BYTES} bytes") from None
        raise SoapError(code, str(e)) from None
    if root.tag == f"{{{SOAP12}}}Envelope":
        raise SoapError(
            FaultCode.VERSION_MISMATCH, "SOAP 1.2 envelope; this service speaks SOAP 1.1"
        )
    if root.tag != _ENVELOPE:
        raise SoapError(FaultCode.VERSION_MISMATCH, f"root is {root.tag}, not a SOAP 1.1 Envelope")
    parts = [c for c in root if isinstance(c.tag, str)]
    if parts and parts[0].tag == _HEADER:
        _check_header(parts.pop(0))
    if not parts or parts[0].tag != _BODY:
        raise SoapError(code, "SOAP envelope has no Body")
    if len(parts) > 1:
        raise SoapError(code, "SOAP envelope has elements after its Body")
    body = parts[0]
    if (body.text or "").strip() or any((c.tail or "").strip() for c in body):
        raise SoapError(code, "SOAP Body holds text outside its element")
    payload = [c for c in body if isinstance(c.tag, str)]
    if len(payload) != 1:
        raise SoapError(code, f"SOAP Body holds {len(payload)} elements; exactly one is expected")
    return payload[0]


def _check_header(header: _E) -> None:
    for block in header:
        if isinstance(block.tag, str) and block.get(_MUST_UNDERSTAND) in ("1", "true"):
            raise SoapError(
                FaultCode.MUST_UNDERSTAND, f"header {block.tag} must be understood; it is not"
            )


def _hub_fault(fault: _E) -> HubFault:
    code = (fault.findtext("faultcode") or "").strip()
    reason = (fault.findtext("faultstring") or "").strip()
    # The message is read wherever the detail puts it: hubs differ in qualifying it.
    message = None
    for el in fault.iterfind("detail/*/*"):
        if etree.QName(el).localname == "message":
            message = (el.text or "").strip() or None
    return HubFault(code.rpartition(":")[2], reason, message)


def _xml_safe(text: str) -> str:
    """`text` without the characters XML 1.0 cannot carry, so a fault can always be sent."""
    return "".join(
        c
        if c in "\t\n\r"
        or ("\x20" <= c <= "\ud7ff")
        or ("\ue000" <= c <= "\ufffd")
        or c >= "\U00010000"
        else "?"
        for c in text
    )


def _bytes(envelope: _E) -> bytes:
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
